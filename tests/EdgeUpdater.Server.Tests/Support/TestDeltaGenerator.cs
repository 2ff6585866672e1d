using EdgeUpdater.Server.Deltas;

namespace EdgeUpdater.Server.Tests.Support;

/// <summary>
/// Test stand-in behind the server's <see cref="IDeltaGenerator"/> seam: writes a deterministic
/// "delta" (a slice of the target image, transformed per level) in chunks, counts generations, and
/// can be held, slowed, made to fail midway or to outgrow the image.
/// </summary>
internal sealed class TestDeltaGenerator : IDeltaGenerator
{
    private int _fast;
    private int _best;

    public int FastGenerations => Volatile.Read(ref _fast);

    public int BestGenerations => Volatile.Read(ref _best);

    /// <summary>SHA-256 of the images <see cref="PrepareTargetAsync"/> was called for, in order.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string> PreparedTargets { get; } = new();

    /// <summary>Share of the target image a fast delta is long.</summary>
    public double FastRatio { get; set; } = 0.5;

    /// <summary>Share of the target image a best delta is long.</summary>
    public double BestRatio { get; set; } = 0.25;

    public int ChunkSize { get; set; } = 8 * 1024;

    public TimeSpan ChunkDelay { get; set; } = TimeSpan.Zero;

    /// <summary>When set, generation waits for it after writing the first chunk.</summary>
    public TaskCompletionSource? HoldAfterFirstChunk { get; set; }

    /// <summary>When set, fast generation throws after this many bytes.</summary>
    public long? FailFastAfterBytes { get; set; }

    /// <summary>Expected bytes of the delta for a job, for assertions.</summary>
    public byte[] Expected(string toImagePath, DeltaLevel level)
    {
        var image = File.ReadAllBytes(toImagePath);
        var length = (int)(image.Length * (level == DeltaLevel.Fast ? FastRatio : BestRatio));
        var result = new byte[length];
        var mask = level == DeltaLevel.Fast ? (byte)0x5a : (byte)0xa5;
        for (var i = 0; i < length; i++)
        {
            result[i] = (byte)(image[i] ^ mask);
        }

        return result;
    }

    public Task<TargetPreparation?> PrepareTargetAsync(string imagePath, string imageSha256, CancellationToken cancellationToken = default)
    {
        Xunit.Assert.True(File.Exists(imagePath), $"prepared image {imagePath} exists");
        PreparedTargets.Enqueue(imageSha256);
        return Task.FromResult<TargetPreparation?>(null);
    }

    public async Task GenerateAsync(DeltaJob job, Stream output, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref job.Level == DeltaLevel.Fast ? ref _fast : ref _best);
        var bytes = Expected(job.ToImagePath, job.Level);
        var written = 0;
        var first = true;
        while (written < bytes.Length)
        {
            if (job.Level == DeltaLevel.Fast && FailFastAfterBytes is { } failAt && written >= failAt)
            {
                throw new IOException("test generator failure");
            }

            var n = Math.Min(ChunkSize, bytes.Length - written);
            await output.WriteAsync(bytes.AsMemory(written, n), cancellationToken);
            await output.FlushAsync(cancellationToken);
            written += n;
            if (first && HoldAfterFirstChunk is { } hold)
            {
                await hold.Task.WaitAsync(cancellationToken);
            }

            first = false;
            if (ChunkDelay > TimeSpan.Zero)
            {
                await Task.Delay(ChunkDelay, cancellationToken);
            }
        }
    }
}
