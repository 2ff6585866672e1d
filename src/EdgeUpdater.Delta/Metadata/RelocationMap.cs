using EdgeUpdater.Delta.Format;

namespace EdgeUpdater.Delta.Metadata;

/// <summary>
/// A piecewise shift over a 64-bit position space: each run says "from this position on, add this
/// shift" (until the next run). Built by the generator from (old position, new position) pairs, sent in
/// the delta, used by both sides to predict where things moved.
/// </summary>
internal sealed class RelocationMap
{
    private readonly List<(ulong Start, long Shift)> _runs;

    public RelocationMap(List<(ulong Start, long Shift)> runs)
    {
        _runs = runs;
    }

    public static RelocationMap Empty => new([]);

    public int Count => _runs.Count;

    /// <summary>Runs from pairs: sorted by old position, a new run whenever the shift changes (implicit shift 0 before the first).</summary>
    public static RelocationMap FromPairs(IEnumerable<(ulong From, ulong To)> pairs)
    {
        var runs = new List<(ulong, long)>();
        long current = 0;
        ulong? last = null;
        foreach (var (from, to) in pairs.OrderBy(p => p.From).ThenBy(p => p.To))
        {
            if (last == from)
            {
                continue;
            }

            last = from;
            var shift = (long)(to - from);
            if (shift != current)
            {
                runs.Add((from, shift));
                current = shift;
            }
        }

        return new RelocationMap(runs);
    }

    public ulong Map(ulong position)
    {
        var lo = 0;
        var hi = _runs.Count - 1;
        var found = -1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_runs[mid].Start <= position)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return found < 0 ? position : (ulong)((long)position + _runs[found].Shift);
    }

    public void Write(ByteWriter writer)
    {
        writer.VarU((ulong)_runs.Count);
        ulong previousStart = 0;
        long previousShift = 0;
        foreach (var (start, shift) in _runs)
        {
            writer.VarU(start - previousStart);
            writer.VarS(shift - previousShift);
            previousStart = start;
            previousShift = shift;
        }
    }

    public static RelocationMap Read(ref ByteReader reader, int maxRuns, string what)
    {
        var count = reader.VarInt(maxRuns, what + " run count");
        var runs = new List<(ulong, long)>(Math.Min(count, 1 << 16));
        ulong start = 0;
        long shift = 0;
        for (var i = 0; i < count; i++)
        {
            var step = reader.VarU();
            if (i > 0 && step == 0 || start + step < start)
            {
                throw DeltaException.Corrupted($"{what}: run {i} does not start after the previous one.");
            }

            start += step;
            shift += reader.VarS();
            runs.Add((start, shift));
        }

        return new RelocationMap(runs);
    }
}
