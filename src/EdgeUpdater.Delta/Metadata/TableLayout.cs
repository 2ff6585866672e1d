namespace EdgeUpdater.Delta.Metadata;

/// <summary>Where the metadata blocks of one table start, relative to the table start, and where it ends.</summary>
internal sealed class TableLayout
{
    public TableLayout(IReadOnlyList<long> relativeStarts, long totalSize, long absoluteStart)
    {
        RelativeStarts = relativeStarts;
        TotalSize = totalSize;
        AbsoluteStart = absoluteStart;
    }

    public IReadOnlyList<long> RelativeStarts { get; }

    public long TotalSize { get; }

    public long AbsoluteStart { get; }

    public static TableLayout FromBlockSizes(IReadOnlyList<int> totalBlockSizes, long absoluteStart)
    {
        var starts = new long[totalBlockSizes.Count];
        long position = 0;
        for (var i = 0; i < starts.Length; i++)
        {
            starts[i] = position;
            position += totalBlockSizes[i];
        }

        return new TableLayout(starts, position, absoluteStart);
    }

    /// <summary>
    /// Moves a block start of the old table (<paramref name="from"/>) to the start of the block with the same
    /// index in this (new) table; the old end maps to the new end; anything else is kept.
    /// </summary>
    public static ulong Relocate(ulong value, TableLayout? from, TableLayout? to)
    {
        if (from is null || to is null)
        {
            return value;
        }

        if (value == (ulong)from.TotalSize)
        {
            return (ulong)to.TotalSize;
        }

        var starts = from.RelativeStarts;
        var lo = 0;
        var hi = starts.Count - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            var v = (ulong)starts[mid];
            if (v == value)
            {
                return mid < to.RelativeStarts.Count ? (ulong)to.RelativeStarts[mid] : value;
            }

            if (v < value)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return value;
    }
}
