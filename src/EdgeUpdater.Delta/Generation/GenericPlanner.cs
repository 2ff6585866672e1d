using System.IO.Hashing;
using EdgeUpdater.SquashFs.IO;

namespace EdgeUpdater.Delta.Generation;

/// <summary>
/// Plans a generic delta for any two byte strings: 4 KiB-aligned chunks of the new image found anywhere
/// (4 KiB-aligned) in the old image are copied; the rest is patched against a window of the old image
/// around where the last copy came from.
/// </summary>
internal static class GenericPlanner
{
    private const int Chunk = 4096;
    private const int ReferenceWindow = 8 << 20;

    public static List<Unit> Plan(IImageSource oldSource, IImageSource newSource, CancellationToken cancellationToken = default)
    {
        var index = new Dictionary<ulong, long>();
        var buffer = new byte[1 << 20];
        for (long p = 0; p + Chunk <= oldSource.Length; p += buffer.Length)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var n = (int)Math.Min(buffer.Length, (oldSource.Length - p) / Chunk * Chunk);
            oldSource.ReadAt(p, buffer.AsSpan(0, n));
            for (var i = 0; i + Chunk <= n; i += Chunk)
            {
                index.TryAdd(XxHash3.HashToUInt64(buffer.AsSpan(i, Chunk)), p + i);
            }
        }

        var units = new List<Unit>();
        var chunk = new byte[Chunk];
        var candidate = new byte[Chunk];
        long pendingStart = -1;
        long shift = 0;
        long lastCopyEnd = -1;
        void Flush(long end)
        {
            if (pendingStart < 0)
            {
                return;
            }

            var runShift = shift;
            AddPatchedRun(units, pendingStart, end, 0, oldSource.Length, s => s + runShift);
            pendingStart = -1;
        }

        for (long p = 0; p < newSource.Length; p += Chunk)
        {
            if ((p & ((1 << 20) - 1)) == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }

            var n = (int)Math.Min(Chunk, newSource.Length - p);
            if (n == Chunk)
            {
                newSource.ReadAt(p, chunk);
                long match = -1;
                if (lastCopyEnd >= 0 && lastCopyEnd + Chunk <= oldSource.Length)
                {
                    oldSource.ReadAt(lastCopyEnd, candidate);
                    if (candidate.AsSpan().SequenceEqual(chunk))
                    {
                        match = lastCopyEnd;
                    }
                }

                if (match < 0 && index.TryGetValue(XxHash3.HashToUInt64(chunk), out var found))
                {
                    oldSource.ReadAt(found, candidate);
                    if (candidate.AsSpan().SequenceEqual(chunk))
                    {
                        match = found;
                    }
                }

                if (match >= 0)
                {
                    Flush(p);
                    units.Add(new CopyUnit(match, Chunk));
                    shift = match - p;
                    lastCopyEnd = match + Chunk;
                    continue;
                }
            }

            lastCopyEnd = -1;
            if (pendingStart < 0)
            {
                pendingStart = p;
            }
        }

        Flush(newSource.Length);
        return units;
    }

    /// <summary>
    /// Adds new-image bytes [<paramref name="start"/>, <paramref name="end"/>) as chunks of 1 MiB, each patched
    /// against a window of the old image's [<paramref name="baseStart"/>, <paramref name="baseEnd"/>) around
    /// <paramref name="centerOf"/>(chunk start).
    /// </summary>
    internal static void AddPatchedRun(List<Unit> units, long start, long end, long baseStart, long baseEnd, Func<long, long> centerOf)
    {
        for (var s = start; s < end; s += 1 << 20)
        {
            var length = Math.Min(1 << 20, end - s);
            // Small runs get small windows; window starts are aligned so neighbouring runs share one reference.
            var window = (int)Math.Clamp(length * 8, 1 << 20, ReferenceWindow);
            var center = Math.Clamp(centerOf(s), baseStart, Math.Max(baseStart, baseEnd - 1));
            var wantedStart = Math.Max(baseStart, Math.Min(center - (window / 4), baseEnd - window));
            var refStart = Math.Max(baseStart, wantedStart & ~((1L << 20) - 1));
            // Aligning moved the window back: it is widened by the alignment (within the format's limit) so that
            // it still reaches past the run, where content shifted by an insertion is found.
            var widened = wantedStart > refStart ? Math.Min(window + (1 << 20), Format.DeltaFormat.MaxReferenceLength) : window;
            var refLength = (int)Math.Min(widened, baseEnd - refStart);
            units.Add(new ChunkUnit(s, length, refStart, refLength));
        }
    }
}
