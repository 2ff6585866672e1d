using EdgeUpdater.Agent.Download;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Agent.Tests.Download;

/// <summary>The reader of a delta that is still downloading: it sees what arrived, waits for more, and stops with the download.</summary>
public sealed class GrowingFileStreamTests : IDisposable
{
    private readonly TempDirectory _directory = new("agent-growing");

    private string FilePath => _directory.Combine("download.delta");

    [Fact]
    public async Task A_read_at_the_end_of_what_arrived_waits_for_more_then_the_end_of_the_stream()
    {
        await using var writer = new FileStream(FilePath, FileMode.Create, FileAccess.Write, FileShare.Read);
        using var growing = new GrowingFileStream(FilePath, 0);
        var buffer = new byte[16];

        var first = growing.ReadAsync(buffer, TestContext.Current.CancellationToken).AsTask();
        await Task.Delay(100, TestContext.Current.CancellationToken);
        Assert.False(first.IsCompleted);

        await writer.WriteAsync(new byte[] { 1, 2, 3, 4, 5 }, TestContext.Current.CancellationToken);
        await writer.FlushAsync(TestContext.Current.CancellationToken);
        growing.Advance(3);
        Assert.Equal(3, await first);
        Assert.Equal([1, 2, 3], buffer[..3]);

        // Bytes written but not yet said to have arrived are not read; the end comes with Complete.
        var second = growing.ReadAsync(buffer, TestContext.Current.CancellationToken).AsTask();
        await Task.Delay(100, TestContext.Current.CancellationToken);
        Assert.False(second.IsCompleted);
        growing.Complete(5);
        Assert.Equal(2, await second);
        Assert.Equal([4, 5], buffer[..2]);
        Assert.Equal(0, await growing.ReadAsync(buffer, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task A_resumed_download_starts_with_what_had_arrived_before()
    {
        await File.WriteAllBytesAsync(FilePath, [9, 8, 7, 6], TestContext.Current.CancellationToken);
        using var growing = new GrowingFileStream(FilePath, 2);
        var buffer = new byte[16];

        Assert.Equal(2, await growing.ReadAsync(buffer, TestContext.Current.CancellationToken));
        Assert.Equal([9, 8], buffer[..2]);
        var waiting = growing.ReadAsync(buffer, TestContext.Current.CancellationToken).AsTask();
        await Task.Delay(100, TestContext.Current.CancellationToken);
        Assert.False(waiting.IsCompleted);
        growing.Complete(2);
        Assert.Equal(0, await waiting);
    }

    [Fact]
    public async Task A_stopped_download_fails_the_waiting_read_and_every_later_one()
    {
        await File.WriteAllBytesAsync(FilePath, [1, 2, 3], TestContext.Current.CancellationToken);
        using var growing = new GrowingFileStream(FilePath, 3);
        var buffer = new byte[16];
        Assert.Equal(3, await growing.ReadAsync(buffer, TestContext.Current.CancellationToken));

        var waiting = growing.ReadAsync(buffer, TestContext.Current.CancellationToken).AsTask();
        growing.Stop(new IOException("connection reset"));

        var stopped = await Assert.ThrowsAsync<DownloadStoppedException>(() => waiting);
        Assert.Equal("the download stopped after 3 bytes: connection reset", stopped.Message);
        Assert.IsType<IOException>(stopped.InnerException);
        await Assert.ThrowsAsync<DownloadStoppedException>(() => growing.ReadAsync(buffer, TestContext.Current.CancellationToken).AsTask());
    }

    [Fact]
    public async Task A_waiting_read_is_cancelled_by_its_token()
    {
        using var growing = new GrowingFileStream(FilePath, 0);
        using var cancel = new CancellationTokenSource();
        var waiting = growing.ReadAsync(new byte[16], cancel.Token).AsTask();

        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
    }

    public void Dispose() => _directory.Dispose();
}
