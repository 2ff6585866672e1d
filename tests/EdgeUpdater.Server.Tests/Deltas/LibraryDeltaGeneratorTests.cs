using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using EdgeUpdater.Delta;
using EdgeUpdater.Protocol;
using EdgeUpdater.Server.Deltas;
using EdgeUpdater.Server.Hosting;
using EdgeUpdater.Server.Tests.Support;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Server.Tests.Deltas;

/// <summary>
/// The server with the real delta library behind its generator seam, over HTTP on loopback, with
/// images from mksquashfs. Every delta received is applied with the device's code
/// (<see cref="DeltaApplier"/>) to the old image and must give the new image byte for byte.
/// </summary>
public sealed class LibraryDeltaGeneratorTests : IAsyncDisposable
{
    private static readonly TimeSpan BackgroundTimeout = TimeSpan.FromSeconds(60);
    private readonly TempDirectory _work = new("library-deltas");
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
    public async Task The_first_request_streams_a_fast_delta_that_rebuilds_the_image_then_best_is_served_from_cache_with_an_etag()
    {
        await StartAsync();

        // Asked exactly as the agent asks.
        var url = AgentDeltaUrl();
        using var first = await _server.Anonymous.GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal("fast", Level(first));
        Assert.Null(first.Headers.ETag);
        var fast = await first.Content.ReadAsByteArrayAsync();
        Assert.True(fast.Length < _v2.Size / 2, $"a fast delta of {fast.Length} bytes for a {_v2.Size}-byte image");
        Assert.Equal(DeltaFormatVersions.Newest, (await InspectAsync(fast)).Header.Version);
        await AssertRebuildsAsync(fast);

        var service = _server.Host.Services.GetRequiredServiceOf<DeltaService>();
        var cache = _server.Host.Services.GetRequiredServiceOf<DeltaCache>();
        await Eventually.TrueAsync(() => service.InFlight == 0 && cache.Count == 2, "best is generated in the background", BackgroundTimeout);

        using var second = await _server.Anonymous.GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal("best", Level(second));
        var best = await second.Content.ReadAsByteArrayAsync();
        Assert.Equal($"\"{Convert.ToHexStringLower(SHA256.HashData(best))}\"", second.Headers.ETag!.Tag);
        Assert.Equal("public, max-age=31536000, immutable", second.Headers.CacheControl!.ToString());
        Assert.True(best.Length < fast.Length, $"best {best.Length} bytes, fast {fast.Length} bytes");
        Assert.Equal(Delta.DeltaLevel.Best, (await InspectAsync(best)).Header.Level);
        await AssertRebuildsAsync(best);

        using var third = await _server.Anonymous.GetAsync(url);
        Assert.Equal(best, await third.Content.ReadAsByteArrayAsync());
        Assert.Equal(1, service.StreamedResponses); // Only the first request waited for a generation.
    }

    [Fact]
    public async Task Codecs_the_device_has_allow_recompression_and_an_unknown_codec_still_gets_a_correct_literal_delta()
    {
        await StartAsync(configure: o => o.Deltas.GenerateBest = false);

        var local = await ReadAsync(DeltaUrl("level=best&codecs=" + Uri.EscapeDataString(DeltaCodecs.LocalIdentitiesQuery())));
        var localInfo = await InspectAsync(local);
        Assert.True(localInfo.Header.UsesRecompression);
        Assert.True(localInfo.RecompressedBlocks > 0, "changed blocks are rebuilt by recompression");
        await AssertRebuildsAsync(local);

        // No codecs parameter: the server assumes its own codecs (same as the device's here).
        var unsaid = await ReadAsync(DeltaUrl("level=best"));
        Assert.True((await InspectAsync(unsaid)).Header.UsesRecompression);

        // A codec identity the server does not have, and a device that has no codecs at all.
        foreach (var codecs in new[] { "gzip/0.0.1-elsewhere,xz/0.0.1-elsewhere", "" })
        {
            var literal = await ReadAsync(DeltaUrl("level=best&codecs=" + Uri.EscapeDataString(codecs)));
            var info = await InspectAsync(literal);
            Assert.False(info.Header.UsesRecompression, $"codecs '{codecs}'");
            Assert.Equal(0, info.RecompressedBlocks);
            Assert.True(literal.Length > local.Length, $"codecs '{codecs}': literal delta {literal.Length} bytes, recompressing delta {local.Length} bytes");
            await AssertRebuildsAsync(literal);
        }

        // One cache entry per codec set: the device's list, "not said", the unknown list, "none".
        Assert.Equal(4, _server.Host.Services.GetRequiredServiceOf<DeltaCache>().Count);
    }

    [Fact]
    public async Task A_device_that_names_no_format_gets_a_version_2_delta_that_rebuilds_the_image()
    {
        await StartAsync(configure: o => o.Deltas.GenerateBest = false);
        foreach (var (query, version) in new[] { ("level=fast", 2), ("level=fast&format=2", 2), ("level=fast&format=3", 3), ("level=best", 2), ("level=best&format=3", 3) })
        {
            var delta = await ReadAsync(DeltaUrl(query));
            Assert.Equal(version, (await InspectAsync(delta)).Header.Version);
            await AssertRebuildsAsync(delta);
        }
    }

    [Fact]
    public async Task Two_unrelated_images_are_answered_not_worthwhile()
    {
        _server = await TestServer.StartAsync(o => o.Deltas.GenerateBest = false, libraryDeltas: true);
        _v1 = await TestImages.BuildAsync(_work, "demo", "1.0.0", seed: 1);
        _v2 = await TestImages.BuildAsync(_work, "demo", "2.0.0", seed: 2);
        await _server.PublishAsync(_v1);
        await _server.PublishAsync(_v2);

        // The first request follows the generation, which stops once the delta outgrows the image:
        // the transfer breaks off rather than ending like a complete delta.
        var error = await Record.ExceptionAsync(async () =>
        {
            using var response = await _server.Anonymous.GetAsync(DeltaUrl(), HttpCompletionOption.ResponseHeadersRead);
            await response.Content.ReadAsByteArrayAsync();
        });
        Assert.True(error is HttpRequestException or IOException, $"expected the transfer to break off, got {error?.GetType().Name ?? "a complete response"}");

        using var again = await _server.Anonymous.GetAsync(DeltaUrl());
        Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        Assert.Equal("not-worthwhile", (await again.Content.ReadFromJsonAsync(OperatorJsonContext.Default.ApiError))!.Reason);
        Assert.Empty(Directory.EnumerateFiles(_server.Data.Combine("deltas"), "*.delta", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task A_range_resume_of_a_cached_delta_gives_the_same_bytes_and_the_same_image()
    {
        await StartAsync(configure: o => o.Deltas.GenerateBest = false);
        var url = AgentDeltaUrl();
        await ReadAsync(url); // Generated, now cached.

        using var full = await _server.Anonymous.GetAsync(url);
        var etag = full.Headers.ETag!;
        var whole = await full.Content.ReadAsByteArrayAsync();

        // A device that had received a third when the connection dropped resumes, as the agent does.
        var cut = whole.Length / 3;
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Range = new RangeHeaderValue(cut, null);
        request.Headers.IfRange = new RangeConditionHeaderValue(etag);
        using var rest = await _server.Anonymous.SendAsync(request);
        Assert.Equal(HttpStatusCode.PartialContent, rest.StatusCode);
        Assert.Equal(cut, rest.Content.Headers.ContentRange!.From);
        var resumed = whole[..cut].Concat(await rest.Content.ReadAsByteArrayAsync()).ToArray();
        Assert.Equal(whole, resumed);
        await AssertRebuildsAsync(resumed);
    }

    [Fact]
    public async Task The_metadata_table_budget_reaches_the_generator()
    {
        // Deltas:MaxMetadataTables: at the default the demo images' tables go in a metadata section; at 0 their
        // region goes as patched stored bytes (no section), and the device still rebuilds v2.
        var (v1, v2) = await TestImages.BuildReleasePairAsync(_work, "demo");
        foreach (var (budget, section) in new[] { ("4MiB", true), ("0", false) })
        {
            var options = new ServerOptions { DataDirectory = _work.Path };
            options.Deltas.MaxMetadataTables = budget;
            options.Validate();
            var generator = new LibraryDeltaGenerator(options, new ReproductionRecords(_work.Combine($"reproduction-{budget}"), Microsoft.Extensions.Logging.Abstractions.NullLogger<ReproductionRecords>.Instance));
            using var output = new MemoryStream();
            await generator.GenerateAsync(new DeltaJob(v1.Path, v2.Path, v1.Sha256, v2.Sha256, Server.Deltas.DeltaLevel.Fast, null, DeltaFormatVersions.Newest), output);
            var delta = output.ToArray();
            var info = await InspectAsync(delta);
            Assert.Equal(section, info.MetadataBytes > 0);
            await TestImages.AssertDeltaRebuildsAsync(_work, v1, v2, delta);
        }
    }

    [Fact]
    public async Task A_cancelled_generation_stops_without_writing()
    {
        var (v1, v2) = await TestImages.BuildReleasePairAsync(_work, "demo");
        var generator = new LibraryDeltaGenerator(new ServerOptions { DataDirectory = _work.Path }, new ReproductionRecords(_work.Combine("reproduction"), Microsoft.Extensions.Logging.Abstractions.NullLogger<ReproductionRecords>.Instance));
        using var output = new MemoryStream();
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            generator.GenerateAsync(new DeltaJob(v1.Path, v2.Path, v1.Sha256, v2.Sha256, Server.Deltas.DeltaLevel.Fast, null, DeltaFormatVersions.Newest), output, cancelled.Token));
        Assert.Equal(0, output.Length);
    }

    private async Task StartAsync(Action<ServerOptions>? configure = null)
    {
        _server = await TestServer.StartAsync(configure, libraryDeltas: true);
        (_v1, _v2) = await TestImages.BuildReleasePairAsync(_work, "demo");
        await _server.PublishAsync(_v1);
        await _server.PublishAsync(_v2);
    }

    /// <summary>The URL the agent requests (UpdateCoordinator: the route plus its codec identities and newest format).</summary>
    private string AgentDeltaUrl() => HttpRoutes.DeltaForDevice(_v1.Sha256, _v2.Sha256, DeltaCodecs.LocalIdentitiesQuery(), DeltaFormatVersions.Newest);

    private string DeltaUrl(string? query = null) => HttpRoutes.Delta(_v1.Sha256, _v2.Sha256) + (query is null ? string.Empty : "?" + query);

    private async Task<byte[]> ReadAsync(string url)
    {
        using var response = await _server.Anonymous.GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsByteArrayAsync();
    }

    /// <summary>Applies <paramref name="delta"/> to v1 as the device does and compares the result with v2.</summary>
    private Task AssertRebuildsAsync(byte[] delta) => TestImages.AssertDeltaRebuildsAsync(_work, _v1, _v2, delta);

    private static async Task<DeltaInfo> InspectAsync(byte[] delta)
    {
        using var stream = new MemoryStream(delta);
        return await DeltaInspector.InspectAsync(stream);
    }

    private static string? Level(HttpResponseMessage response) =>
        response.Headers.TryGetValues(DeltaEndpoints.LevelHeader, out var values) ? values.Single() : null;
}
