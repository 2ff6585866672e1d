using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using EdgeUpdater.Protocol;
using EdgeUpdater.Server.Deltas;
using EdgeUpdater.Server.Tests.Support;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Server.Tests.Deltas;

/// <summary>The delta endpoint over real HTTP, with generations counted through the generator seam.</summary>
public sealed class DeltaEndpointTests : IAsyncDisposable
{
    private readonly TempDirectory _work = new("deltas");
    private TestServer _server = null!;
    private TestImage _v1 = null!;
    private TestImage _v2 = null!;

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        _work.Dispose();
    }

    [Fact]
    public async Task The_first_request_streams_fast_then_best_is_made_in_the_background_and_served_from_cache()
    {
        await StartAsync();
        using var first = await GetAsync(DeltaUrl());
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal("fast", Level(first));
        Assert.Null(first.Headers.ETag);
        Assert.Equal("no-store", first.Headers.CacheControl!.ToString());
        Assert.Equal(_server.Deltas.Expected(_v2.Path, DeltaLevel.Fast), await first.Content.ReadAsByteArrayAsync());

        await Eventually.TrueAsync(() => _server.Deltas.BestGenerations == 1 && _server.Host.Services.GetRequiredServiceOf<DeltaService>().InFlight == 0, "best is generated");
        using var later = await GetAsync(DeltaUrl());
        Assert.Equal("best", Level(later));
        Assert.NotNull(later.Headers.ETag);
        Assert.Equal("public, max-age=31536000, immutable", later.Headers.CacheControl!.ToString());
        Assert.Equal(_server.Deltas.Expected(_v2.Path, DeltaLevel.Best), await later.Content.ReadAsByteArrayAsync());

        using var explicitFast = await GetAsync(DeltaUrl("level=fast"));
        Assert.Equal("fast", Level(explicitFast));
        Assert.Equal(_server.Deltas.Expected(_v2.Path, DeltaLevel.Fast), await explicitFast.Content.ReadAsByteArrayAsync());
        Assert.Equal(1, _server.Deltas.FastGenerations);
        Assert.Equal(1, _server.Deltas.BestGenerations);
    }

    [Fact]
    public async Task Fifty_concurrent_requests_for_a_new_pair_cause_exactly_one_generation()
    {
        await StartAsync(configure: o => o.Deltas.GenerateBest = false);
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _server.Deltas.HoldAfterFirstChunk = hold;
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64 }) { BaseAddress = _server.Host.HttpUrl };
        var requests = Enumerable.Range(0, 50).Select(async _ =>
        {
            using var response = await http.GetAsync(DeltaUrl(), HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return await response.Content.ReadAsByteArrayAsync();
        }).ToList();

        // Let every request arrive while the one generation is held after its first chunk.
        var service = _server.Host.Services.GetRequiredServiceOf<DeltaService>();
        await Eventually.TrueAsync(() => service.StreamedResponses == 50, "all 50 requests follow the generation in progress");
        hold.SetResult();
        var bodies = await Task.WhenAll(requests);

        var expected = _server.Deltas.Expected(_v2.Path, DeltaLevel.Fast);
        Assert.All(bodies, body => Assert.Equal(expected, body));
        Assert.Equal(1, _server.Deltas.FastGenerations);
        Assert.Equal(0, _server.Deltas.BestGenerations);
    }

    [Fact]
    public async Task A_range_request_pinned_with_if_range_resumes_with_the_same_bytes()
    {
        await StartAsync(configure: o => o.Deltas.GenerateBest = false);
        using (var warm = await GetAsync(DeltaUrl()))
        {
            await warm.Content.ReadAsByteArrayAsync();
        }

        using var full = await GetAsync(DeltaUrl());
        var etag = full.Headers.ETag!;
        var whole = await full.Content.ReadAsByteArrayAsync();
        using var request = new HttpRequestMessage(HttpMethod.Get, DeltaUrl());
        request.Headers.Range = new RangeHeaderValue(whole.Length / 3, null);
        request.Headers.IfRange = new RangeConditionHeaderValue(etag);
        using var rest = await _server.Anonymous.SendAsync(request);
        Assert.Equal(HttpStatusCode.PartialContent, rest.StatusCode);
        var resumed = whole[..(whole.Length / 3)].Concat(await rest.Content.ReadAsByteArrayAsync()).ToArray();
        Assert.Equal(whole, resumed);
    }

    [Fact]
    public async Task A_resume_pinned_to_fast_still_gets_fast_after_best_replaced_it()
    {
        await StartAsync();
        using (var first = await GetAsync(DeltaUrl()))
        {
            await first.Content.ReadAsByteArrayAsync();
        }

        using var fast = await GetAsync(DeltaUrl("level=fast"));
        var fastBytes = await fast.Content.ReadAsByteArrayAsync();
        await Eventually.TrueAsync(() => _server.Deltas.BestGenerations == 1 && _server.Host.Services.GetRequiredServiceOf<DeltaService>().InFlight == 0, "best is generated");

        using var request = new HttpRequestMessage(HttpMethod.Get, DeltaUrl());
        request.Headers.Range = new RangeHeaderValue(100, null);
        request.Headers.IfRange = new RangeConditionHeaderValue(fast.Headers.ETag!);
        using var rest = await _server.Anonymous.SendAsync(request);
        Assert.Equal(HttpStatusCode.PartialContent, rest.StatusCode);
        Assert.Equal("fast", Level(rest));
        Assert.Equal(fastBytes[100..], await rest.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Under_a_tiny_budget_the_least_recently_used_delta_is_evicted()
    {
        await StartAsync(configure: o =>
        {
            o.Deltas.GenerateBest = false;
            o.Deltas.CacheBudget = "200KiB";
        });
        var v3 = await TestImages.BuildAsync(_work, "demo", "3.0.0", seed: 3);
        await _server.PublishAsync(v3);
        var cache = _server.Host.Services.GetRequiredServiceOf<DeltaCache>();

        await ReadAsync(DeltaUrl()); // v1 -> v2, about 130 KiB
        Assert.Equal(1, cache.Count);
        await ReadAsync(HttpRoutes.Delta(_v1.Sha256, v3.Sha256)); // v1 -> v3 pushes the total past 200 KiB
        Assert.Equal(1, cache.Count);
        Assert.True(cache.TotalBytes <= cache.BudgetBytes);
        Assert.Single(Directory.EnumerateFiles(_server.Data.Combine("deltas"), "*.delta", SearchOption.AllDirectories));

        await ReadAsync(DeltaUrl()); // evicted, so generated again
        Assert.Equal(3, _server.Deltas.FastGenerations);
        await ReadAsync(DeltaUrl()); // now a cache hit
        Assert.Equal(3, _server.Deltas.FastGenerations);
    }

    [Fact]
    public async Task A_failed_generation_truncates_the_response_and_is_not_cached()
    {
        await StartAsync(configure: o => o.Deltas.GenerateBest = false);
        _server.Deltas.FailFastAfterBytes = 32 * 1024;
        // The connection is reset: depending on timing the client fails reading the headers or the body,
        // but it never receives a complete response.
        await AssertTruncatedAsync(DeltaUrl());

        Assert.Empty(Directory.EnumerateFiles(_server.Data.Combine("deltas"), "*", SearchOption.AllDirectories));

        // A request right after a failure starts a generation of its own; it never joins the failed one
        // (which would break off its response too).
        for (var retry = 2; retry <= 20; retry++)
        {
            await AssertTruncatedAsync(DeltaUrl());
            Assert.Equal(retry, _server.Deltas.FastGenerations);
        }

        _server.Deltas.FailFastAfterBytes = null;
        var body = await ReadAsync(DeltaUrl());
        Assert.Equal(_server.Deltas.Expected(_v2.Path, DeltaLevel.Fast), body);
        Assert.Equal(21, _server.Deltas.FastGenerations);
    }

    [Fact]
    public async Task A_delta_not_smaller_than_the_image_is_refused_from_then_on()
    {
        await StartAsync(configure: o => o.Deltas.GenerateBest = false);
        _server.Deltas.FastRatio = 1.0;
        // The connection is reset: depending on timing the client fails reading the headers or the body,
        // but it never receives a complete response.
        await AssertTruncatedAsync(DeltaUrl());

        using var again = await GetAsync(DeltaUrl());
        Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        Assert.Equal("not-worthwhile", (await again.Content.ReadFromJsonAsync(OperatorJsonContext.Default.ApiError))!.Reason);
        Assert.Equal(1, _server.Deltas.FastGenerations);
    }

    [Fact]
    public async Task An_unknown_base_is_answered_with_a_reason_so_the_device_fetches_the_image()
    {
        await StartAsync();
        using var response = await GetAsync(HttpRoutes.Delta(new string('0', 64), _v2.Sha256));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("unknown-base", (await response.Content.ReadFromJsonAsync(OperatorJsonContext.Default.ApiError))!.Reason);
        using var badLevel = await GetAsync(DeltaUrl("level=huge"));
        Assert.Equal(HttpStatusCode.BadRequest, badLevel.StatusCode);
        Assert.Equal(0, _server.Deltas.FastGenerations);
    }

    [Fact]
    public async Task The_cache_survives_a_restart()
    {
        await StartAsync(configure: o => o.Deltas.GenerateBest = false);
        var body = await ReadAsync(DeltaUrl());
        await _server.RestartAsync();
        using var response = await GetAsync(DeltaUrl());
        Assert.NotNull(response.Headers.ETag);
        Assert.Equal(body, await response.Content.ReadAsByteArrayAsync());
        Assert.Equal(1, _server.Deltas.FastGenerations);
    }

    [Fact]
    public async Task Each_format_a_device_names_is_cached_apart_and_a_format_too_old_or_malformed_is_refused()
    {
        await StartAsync(configure: o => o.Deltas.GenerateBest = false);
        var unnamed = await ReadAsync(DeltaUrl());
        var two = await ReadAsync(DeltaUrl("format=2"));
        await ReadAsync(DeltaUrl("format=3"));
        var four = await ReadAsync(DeltaUrl("format=4"));
        var newer = await ReadAsync(DeltaUrl("format=9"));
        Assert.Equal(unnamed, two);
        Assert.Equal(four, newer);

        // A device that names no format gets version 2 (devices released before version 3 name none); one that
        // reads a newer version than the server writes gets the server's newest.
        Assert.Equal(3, _server.Deltas.FastGenerations);
        var cache = _server.Host.Services.GetRequiredServiceOf<DeltaCache>();
        Assert.Equal(3, cache.Count);
        var names = Directory.EnumerateFiles(Path.Combine(cache.Directory, _v1.Sha256)).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Collection(
            names,
            name => Assert.StartsWith($"{_v2.Sha256}.any.f2.fast.", name, StringComparison.Ordinal),
            name => Assert.StartsWith($"{_v2.Sha256}.any.f3.fast.", name, StringComparison.Ordinal),
            name => Assert.StartsWith($"{_v2.Sha256}.any.f4.fast.", name, StringComparison.Ordinal));

        foreach (var bad in new[] { "1", "0", "-3", "abc", "", "3.0", "99999999" })
        {
            using var response = await GetAsync(DeltaUrl("format=" + bad));
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("bad-format", (await response.Content.ReadFromJsonAsync(OperatorJsonContext.Default.ApiError))!.Reason);
        }

        Assert.Equal(3, _server.Deltas.FastGenerations);
    }

    [Fact]
    public async Task A_delta_cached_before_formats_were_named_is_served_as_version_2()
    {
        await StartAsync(configure: o => o.Deltas.GenerateBest = false);
        var body = await ReadAsync(DeltaUrl());
        var cache = _server.Host.Services.GetRequiredServiceOf<DeltaCache>();
        var file = Directory.EnumerateFiles(Path.Combine(cache.Directory, _v1.Sha256)).Single();
        File.Move(file, file.Replace(".any.f2.fast.", ".any.fast.", StringComparison.Ordinal));
        await _server.RestartAsync();

        using var response = await GetAsync(DeltaUrl("format=2"));
        Assert.NotNull(response.Headers.ETag);
        Assert.Equal(body, await response.Content.ReadAsByteArrayAsync());
        Assert.Equal(1, _server.Deltas.FastGenerations);
        await ReadAsync(DeltaUrl("format=3"));
        Assert.Equal(2, _server.Deltas.FastGenerations);
    }

    private async Task StartAsync(Action<EdgeUpdater.Server.Hosting.ServerOptions>? configure = null)
    {
        _server = await TestServer.StartAsync(configure);
        _v1 = await TestImages.BuildAsync(_work, "demo", "1.0.0", seed: 1);
        _v2 = await TestImages.BuildAsync(_work, "demo", "2.0.0", seed: 2);
        await _server.PublishAsync(_v1);
        await _server.PublishAsync(_v2);
    }

    private string DeltaUrl(string? query = null) => HttpRoutes.Delta(_v1.Sha256, _v2.Sha256) + (query is null ? string.Empty : "?" + query);

    private Task<HttpResponseMessage> GetAsync(string url, HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead) =>
        _server.Anonymous.GetAsync(url, completion);

    private async Task<byte[]> ReadAsync(string url)
    {
        using var response = await _server.Anonymous.GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsByteArrayAsync();
    }

    private async Task AssertTruncatedAsync(string url)
    {
        var error = await Record.ExceptionAsync(async () =>
        {
            using var response = await GetAsync(url, HttpCompletionOption.ResponseHeadersRead);
            await response.Content.ReadAsByteArrayAsync();
        });
        Assert.True(error is HttpRequestException or IOException, $"expected the transfer to break off, got {error?.GetType().Name ?? "a complete response"}");
    }

    private static string? Level(HttpResponseMessage response) =>
        response.Headers.TryGetValues(DeltaEndpoints.LevelHeader, out var values) ? values.Single() : null;
}
