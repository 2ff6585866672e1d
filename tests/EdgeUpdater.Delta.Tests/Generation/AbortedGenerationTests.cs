using EdgeUpdater.SquashFs.IO;
using Xunit;

namespace EdgeUpdater.Delta.Tests.Generation;

/// <summary>
/// A generation aborted by its output or by cancellation (while planning or encoding) returns promptly and
/// only once none of its workers runs: nothing reads the images after it returns, and the next generation
/// works. Reads made after the abort are slowed down, so that a worker left running is caught reading.
/// </summary>
public sealed class AbortedGenerationTests : IAsyncLifetime
{
    private readonly Testing.TempDirectory _temp = new("delta-aborted");
    private byte[] _a = [];
    private byte[] _b = [];

    public async ValueTask InitializeAsync() => (_a, _b) = await NewContentFrameTests.MakePairAsync(_temp, "xz");

    public ValueTask DisposeAsync()
    {
        _temp.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>An image in memory that counts reads in flight and records any read after <see cref="Close"/>.</summary>
    private sealed class WatchedSource(byte[] bytes, Action<int>? onRead = null) : IImageSource
    {
        private readonly MemoryImageSource _inner = new(bytes);
        private readonly ManualResetEventSlim _never = new(false);
        private int _reads;
        private int _inFlight;
        private volatile bool _closed;
        private volatile bool _slow;

        public int InFlight => Volatile.Read(ref _inFlight);

        public int ReadsAfterClose { get; private set; }

        public long Length => _inner.Length;

        public void Close() => _closed = true;

        /// <summary>From now on every read takes a second: a worker still running when the generation returns is then still reading.</summary>
        public void SlowDown() => _slow = true;

        public void ReadAt(long offset, Span<byte> destination)
        {
            Interlocked.Increment(ref _inFlight);
            try
            {
                if (_closed)
                {
                    ReadsAfterClose++;
                }

                onRead?.Invoke(Interlocked.Increment(ref _reads));
                if (_slow)
                {
                    _never.Wait(TimeSpan.FromSeconds(1));
                }

                _inner.ReadAt(offset, destination);
            }
            finally
            {
                Interlocked.Decrement(ref _inFlight);
            }
        }

        public ValueTask ReadAtAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
        {
            ReadAt(offset, destination.Span);
            return ValueTask.CompletedTask;
        }

        public void Dispose()
        {
            _inner.Dispose();
            _never.Dispose();
        }
    }

    /// <summary>Accepts <c>limit</c> bytes, then fails every write like a dropped connection.</summary>
    private sealed class FailingOutput(long limit, Action onFailure) : MemoryStream
    {
        public override void Write(ReadOnlySpan<byte> buffer) => Write(buffer.ToArray(), 0, buffer.Length);

        public override void Write(byte[] buffer, int offset, int count)
        {
            if (Length + count > limit)
            {
                onFailure();
                throw new IOException("connection reset (test)");
            }

            base.Write(buffer, offset, count);
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Write(buffer.Span);
            return ValueTask.CompletedTask;
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }

    /// <summary>After an aborted generation: no read in flight now, none later while a full generation runs, and that one is exact.</summary>
    private async Task AssertNothingRunsAsync(WatchedSource oldSource, WatchedSource newSource)
    {
        var (a, b) = (_a, _b);
        oldSource.Close();
        newSource.Close();
        Assert.Equal(0, oldSource.InFlight);
        Assert.Equal(0, newSource.InFlight);
        var (delta, _) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { Level = DeltaLevel.Best, MaxParallelism = 2 }).WaitAsync(TimeSpan.FromMinutes(2));
        DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(a, delta));
        Assert.Equal(0, oldSource.ReadsAfterClose);
        Assert.Equal(0, newSource.ReadsAfterClose);
    }

    [Theory]
    [InlineData(200)]
    [InlineData(20_000)]
    public async Task A_failing_output_stops_every_worker_before_the_error_returns(int limit)
    {
        var (a, b) = (_a, _b);
        using var oldSource = new WatchedSource(a);
        using var newSource = new WatchedSource(b);
        using var output = new FailingOutput(limit, () =>
        {
            oldSource.SlowDown();
            newSource.SlowDown();
        });
        var options = new DeltaGeneratorOptions { Level = DeltaLevel.Best, MaxParallelism = 2 };
        await Assert.ThrowsAsync<IOException>(() => DeltaGenerator.GenerateAsync(oldSource, newSource, output, options).WaitAsync(TimeSpan.FromMinutes(1)));
        await AssertNothingRunsAsync(oldSource, newSource);
    }

    [Theory]
    [InlineData(0, true)]
    [InlineData(10, true)]
    [InlineData(50, false)]
    [InlineData(90, false)]
    public async Task Cancellation_while_planning_or_encoding_ends_promptly(int cancelAtPercent, bool knownHashes)
    {
        var (a, b) = (_a, _b);

        // How many reads of the new image a whole generation makes, to cancel at a share of them.
        var total = 0;
        using (var counted = new WatchedSource(b, read => total = read))
        using (var oldCopy = new WatchedSource(a))
        {
            await DeltaGenerator.GenerateAsync(oldCopy, counted, Stream.Null, new DeltaGeneratorOptions { Level = DeltaLevel.Best, MaxParallelism = 2 });
        }

        var cancelAtRead = Math.Max(1, total * cancelAtPercent / 100);
        using var cancel = new CancellationTokenSource();
        using var oldSource = new WatchedSource(a);
        WatchedSource? newSource = null;
        newSource = new WatchedSource(b, read =>
        {
            if (read == cancelAtRead)
            {
                cancel.Cancel();
                oldSource.SlowDown();
                newSource!.SlowDown();
            }
        });
        using var disposeNew = newSource;
        var options = new DeltaGeneratorOptions
        {
            Level = DeltaLevel.Best,
            MaxParallelism = 2,
            OldImageSha256 = knownHashes ? System.Security.Cryptography.SHA256.HashData(a) : null,
            NewImageSha256 = knownHashes ? System.Security.Cryptography.SHA256.HashData(b) : null,
        };
        using var output = new MemoryStream();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => DeltaGenerator.GenerateAsync(oldSource, newSource, output, options, cancel.Token).WaitAsync(TimeSpan.FromMinutes(1)));
        // Every read after the cancellation takes a second: a worker that reads on between its own token
        // checks shows here (the metadata encoding, reading tables block by block, took 6 to 22 s before
        // the generator's reads stopped at cancellation).
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"cancellation took {watch.Elapsed}");
        await AssertNothingRunsAsync(oldSource, newSource);
    }
}
