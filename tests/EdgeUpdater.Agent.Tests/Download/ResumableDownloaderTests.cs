using EdgeUpdater.Agent.Download;
using EdgeUpdater.Agent.Tests.Fixtures;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Agent.Tests.Download;

/// <summary>Resuming deltas as docs/server.md serves them: cached (ETag, Range, If-Range) or streamed (no ETag).</summary>
public sealed class ResumableDownloaderTests : IAsyncLifetime
{
    private const string From = "aa";
    private const string To = "bb";
    private readonly TempDirectory _directory = new("agent-downloader");
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private RepositoryServer _server = null!;
    private byte[] _delta = [];

    private string Source => _directory.Combine("served.eud");

    private string Destination => _directory.Combine("download.delta");

    private Uri Url => new($"{_server.Url}/v1/deltas/{From}/{To}?codecs=zlib%2F1.2.13");

    private string ETag => $"\"{TestDeltas.Sha256(Source)}\"";

    public async ValueTask InitializeAsync()
    {
        _server = await RepositoryServer.StartAsync();
        _delta = new byte[300_000];
        new Random(7).NextBytes(_delta);
        await File.WriteAllBytesAsync(Source, _delta);
    }

    [Fact]
    public async Task Cached_delta_resumes_from_the_offset_with_if_range()
    {
        _server.AddDelta(From, To, Source, DeltaDelivery.Cached);
        await File.WriteAllBytesAsync(Destination, _delta.AsMemory(0, 100_000), TestContext.Current.CancellationToken);

        var length = await Download(offset: 100_000, etag: ETag);

        Assert.Equal(_delta.Length, length);
        Assert.Equal(_delta, await File.ReadAllBytesAsync(Destination, TestContext.Current.CancellationToken));
        Assert.EndsWith($"bytes=100000- if-range={ETag}", Assert.Single(_server.Requests), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cached_delta_that_had_fully_arrived_is_complete_without_another_byte()
    {
        _server.AddDelta(From, To, Source, DeltaDelivery.Cached);
        await File.WriteAllBytesAsync(Destination, _delta, TestContext.Current.CancellationToken);

        var wrote = false;

        // The server answers 416 with Content-Range "bytes */length": nothing is written again.
        var length = await Download(offset: _delta.Length, etag: ETag, _ => wrote = true);

        Assert.Equal(_delta.Length, length);
        Assert.False(wrote);
        Assert.Equal(_delta, await File.ReadAllBytesAsync(Destination, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task Streamed_delta_without_an_etag_is_downloaded_again_from_its_start()
    {
        _server.AddDelta(From, To, Source, DeltaDelivery.Streamed);
        await File.WriteAllBytesAsync(Destination, new byte[200_000], TestContext.Current.CancellationToken);
        long? total = 0;
        var restarted = false;

        // Known before the request (a reader of the file can start over with it), so not reported as a restart.
        Assert.Equal(0, ResumableDownloader.ResumeOffset(new DownloadRequest { Url = Url, Destination = Destination, Offset = 200_000 }));
        var length = await Download(new ResumableDownloaderOptions(), offset: 200_000, etag: null, progress => total = progress.Total, restarted: () => restarted = true);
        Assert.False(restarted);

        Assert.Equal(_delta.Length, length);
        Assert.Null(total);
        Assert.Equal(_delta, await File.ReadAllBytesAsync(Destination, TestContext.Current.CancellationToken));
        Assert.DoesNotContain("bytes=", Assert.Single(_server.Requests), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Body_that_stalls_fails_as_a_network_error_after_the_idle_timeout_and_resumes_byte_exact()
    {
        _server.AddDelta(From, To, Source, DeltaDelivery.Cached);
        _server.StallDeltaDownloads(1, 100_000);
        var options = new ResumableDownloaderOptions { IdleTimeout = TimeSpan.FromSeconds(1) };
        (long Offset, string? ETag) durable = (0, null);

        // Headers and 100000 bytes, then silence on an open connection. HttpClient.Timeout no longer
        // applies (headers read); without the idle timeout the read waits until this guard ends it.
        using var guard = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        guard.CancelAfter(TimeSpan.FromSeconds(20));
        var stalled = await Assert.ThrowsAsync<DownloadException>(() => Download(options, offset: 0, etag: null, checkpoint: (offset, etag) => durable = (offset, etag), cancellationToken: guard.Token));

        Assert.Equal(DownloadFailure.Network, stalled.Failure);
        Assert.Contains("no data for 1 s after 100000 bytes", stalled.Message, StringComparison.Ordinal);
        Assert.Equal((100_000L, ETag), durable);

        var length = await Download(options, durable.Offset, durable.ETag);

        Assert.Equal(_delta.Length, length);
        Assert.Equal(_delta, await File.ReadAllBytesAsync(Destination, TestContext.Current.CancellationToken));
        Assert.EndsWith($"bytes=100000- if-range={ETag}", _server.Requests.Last(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Full_body_without_an_etag_drops_the_old_etag_so_two_bodies_are_never_joined()
    {
        // 100000 bytes of the cached delta arrived under its ETag. Then the cache lost it: the server
        // regenerates and streams a different body (200, no ETag), and that download breaks off too.
        await File.WriteAllBytesAsync(Destination, _delta.AsMemory(0, 100_000), TestContext.Current.CancellationToken);
        var (regenerated, _) = await WriteAnotherDeltaAsync("regenerated.eud", 8);
        _server.AddDelta(From, To, regenerated, DeltaDelivery.Streamed);
        _server.DropDeltaDownloads(1, 150_000);
        (long Offset, string? ETag) durable = (100_000, ETag);

        await Assert.ThrowsAsync<DownloadException>(() => Download(new ResumableDownloaderOptions(), durable.Offset, durable.ETag, checkpoint: (offset, etag) => durable = (offset, etag)));

        // The bytes on disk now belong to a body that had no ETag; the old one no longer describes them.
        Assert.Null(durable.ETag);

        // The cached delta is back; resuming under the old ETag would append its tail to the streamed head.
        _server.AddDelta(From, To, Source, DeltaDelivery.Cached);
        var length = await Download(durable.Offset, durable.ETag);

        Assert.Equal(_delta.Length, length);
        Assert.Equal(_delta, await File.ReadAllBytesAsync(Destination, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task A_resume_answered_with_the_whole_body_is_reported_before_the_old_bytes_are_written_over()
    {
        // 100000 bytes of the cached delta arrived; then the server's delta changed (another ETag), so If-Range
        // does not match and the whole new one comes back with 200.
        await File.WriteAllBytesAsync(Destination, _delta.AsMemory(0, 100_000), TestContext.Current.CancellationToken);
        var (changed, other) = await WriteAnotherDeltaAsync("changed.eud", 9);
        _server.AddDelta(From, To, changed, DeltaDelivery.Cached);
        byte[]? onDiskAtRestart = null;
        var progressBeforeRestart = false;

        var length = await Download(
            new ResumableDownloaderOptions(),
            offset: 100_000,
            etag: ETag,
            _ => progressBeforeRestart |= onDiskAtRestart is null,
            restarted: () => onDiskAtRestart = File.ReadAllBytes(Destination));

        Assert.False(progressBeforeRestart);
        Assert.Equal(_delta.AsSpan(0, 100_000).ToArray(), onDiskAtRestart);
        Assert.Equal(other.Length, length);
        Assert.Equal(other, await File.ReadAllBytesAsync(Destination, TestContext.Current.CancellationToken));
    }

    [Fact]
    [Trait("requirement", "root")]
    public async Task Full_file_system_fails_as_no_room_without_a_checkpoint()
    {
        Privileges.RequireRoot("a tmpfs of a fixed size");
        _server.AddDelta(From, To, Source, DeltaDelivery.Cached);
        await using var small = await ScratchMount.TmpfsAsync(_directory.Combine("small"), 64 * 1024);
        var checkpoints = new List<long>();

        var full = await Assert.ThrowsAsync<DownloadException>(() => Download(new ResumableDownloaderOptions(), 0, null, checkpoint: (offset, _) => checkpoints.Add(offset), destination: small.Combine("download.delta")));

        // Not a network failure to retry and resume: the caller drops the file (a delta) or reports the lack of room.
        Assert.Equal(DownloadFailure.NoRoom, full.Failure);
        Assert.Matches(@"no room in .*/small/download\.delta after [1-9]\d* bytes: ", full.Message);
        Assert.True(full.InnerException is IOException { HResult: 28 }, full.InnerException?.ToString());
        Assert.Empty(checkpoints);
        Assert.Single(_server.Requests);
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        _http.Dispose();
        _directory.Dispose();
    }

    /// <summary>A body of the served delta's length but other bytes, as a regenerated or changed delta would be.</summary>
    private async Task<(string Path, byte[] Bytes)> WriteAnotherDeltaAsync(string name, int seed)
    {
        var path = _directory.Combine(name);
        var bytes = new byte[_delta.Length];
        new Random(seed).NextBytes(bytes);
        await File.WriteAllBytesAsync(path, bytes, TestContext.Current.CancellationToken);
        return (path, bytes);
    }

    private Task<long> Download(long offset, string? etag, Action<DownloadProgress>? progress = null) =>
        Download(new ResumableDownloaderOptions(), offset, etag, progress);

    private Task<long> Download(
        ResumableDownloaderOptions options,
        long offset,
        string? etag,
        Action<DownloadProgress>? progress = null,
        Action<long, string?>? checkpoint = null,
        CancellationToken? cancellationToken = null,
        string? destination = null,
        Action? restarted = null) =>
        new ResumableDownloader(_http, options).DownloadAsync(
            new DownloadRequest { Url = Url, Destination = destination ?? Destination, Offset = offset, ETag = etag, Truncate = true, Restarted = restarted },
            (durable, tag) =>
            {
                checkpoint?.Invoke(durable, tag);
                return Task.CompletedTask;
            },
            progress,
            cancellationToken ?? TestContext.Current.CancellationToken);
}
