using System.Net;
using System.Net.Http.Headers;
using EdgeUpdater.Protocol;
using EdgeUpdater.Server.Tests.Support;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Server.Tests.Content;

/// <summary>Images and manifests behave as immutable, cacheable, resumable HTTP content.</summary>
public sealed class ContentEndpointTests : IAsyncLifetime
{
    private readonly TempDirectory _work = new("content");
    private TestServer _server = null!;
    private TestImage _image = null!;

    public async ValueTask InitializeAsync()
    {
        _server = await TestServer.StartAsync();
        _image = await TestImages.BuildAsync(_work, "demo", "1.0.0");
        await _server.PublishAsync(_image);
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        _work.Dispose();
    }

    [Fact]
    public async Task Images_carry_a_strong_etag_and_immutable_caching()
    {
        using var response = await _server.Anonymous.GetAsync(HttpRoutes.Image(_image.Sha256));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal($"\"{_image.Sha256}\"", response.Headers.ETag!.Tag);
        Assert.False(response.Headers.ETag.IsWeak);
        Assert.Equal("public, max-age=31536000, immutable", response.Headers.CacheControl!.ToString());
        Assert.Equal("bytes", Assert.Single(response.Headers.AcceptRanges));
        Assert.Equal(_image.Size, response.Content.Headers.ContentLength);
    }

    [Fact]
    public async Task Head_answers_headers_without_a_body()
    {
        using var request = new HttpRequestMessage(HttpMethod.Head, HttpRoutes.Image(_image.Sha256));
        using var response = await _server.Anonymous.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(_image.Size, response.Content.Headers.ContentLength);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task A_range_returns_exactly_those_bytes()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, HttpRoutes.Image(_image.Sha256));
        request.Headers.Range = new RangeHeaderValue(1000, 1999);
        using var response = await _server.Anonymous.SendAsync(request);
        Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
        var expected = (await File.ReadAllBytesAsync(_image.Path))[1000..2000];
        Assert.Equal(expected, await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task If_none_match_with_the_hash_answers_304()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, HttpRoutes.Image(_image.Sha256));
        request.Headers.IfNoneMatch.Add(new EntityTagHeaderValue($"\"{_image.Sha256}\""));
        using var response = await _server.Anonymous.SendAsync(request);
        Assert.Equal(HttpStatusCode.NotModified, response.StatusCode);
    }

    [Fact]
    public async Task Unknown_and_malformed_hashes_are_refused()
    {
        using var unknown = await _server.Anonymous.GetAsync(HttpRoutes.Image(new string('0', 64)));
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        using var malformed = await _server.Anonymous.GetAsync("/v1/images/..%2Ffleet.db");
        Assert.Equal(HttpStatusCode.BadRequest, malformed.StatusCode);
    }
}
