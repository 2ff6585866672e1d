using EdgeUpdater.Delta.Format;

namespace EdgeUpdater.Delta.Generation;

/// <summary>Encodes and decodes the head of a content section: content length and reference items.</summary>
internal static class ContentFrame
{
    public const int MaxItems = 1 << 16;

    public static void WriteItems(ByteWriter writer, int contentLength, IReadOnlyList<ReferenceItem> items)
    {
        writer.VarU((ulong)contentLength);
        writer.VarU((ulong)items.Count);
        long previousEnd = 0;
        foreach (var item in items)
        {
            writer.U8((byte)(item.IsRaw ? ReferenceKind.Raw : ReferenceKind.Block));
            writer.VarS(item.Offset - previousEnd);
            if (item.IsRaw)
            {
                writer.VarU((ulong)item.Length);
                previousEnd = item.Offset + item.Length;
            }
            else
            {
                writer.VarU(((ulong)item.StoredSize << 1) | (item.Compressed ? 1UL : 0UL));
                writer.VarU((ulong)item.Start);
                writer.VarU((ulong)item.Length);
                previousEnd = item.Offset + item.StoredSize;
            }
        }
    }

    public static List<ReferenceItem> ReadItems(ref ByteReader reader, out int contentLength, long baseSize, uint maxBlock)
    {
        contentLength = reader.VarInt(DeltaFormat.MaxContentLength, "content length");
        var count = reader.VarInt(MaxItems, "reference item count");
        var items = new List<ReferenceItem>(count);
        long previousEnd = 0;
        long total = 0;
        for (var i = 0; i < count; i++)
        {
            var kind = (ReferenceKind)reader.U8();
            var offset = previousEnd + reader.VarS();
            ReferenceItem item;
            if (kind == ReferenceKind.Raw)
            {
                var length = reader.VarInt(DeltaFormat.MaxReferenceLength, "raw reference length");
                item = new ReferenceItem(offset, 0, false, 0, length);
                CheckRange(offset, length, baseSize, i);
                previousEnd = offset + length;
            }
            else if (kind == ReferenceKind.Block)
            {
                var sizeAndFlag = reader.VarLong((long)maxBlock << 1 | 1, "reference block size");
                var stored = (uint)(sizeAndFlag >> 1);
                var start = reader.VarInt(maxBlock, "reference slice start");
                var length = reader.VarInt(maxBlock, "reference slice length");
                if (stored == 0 || start + length > maxBlock)
                {
                    throw DeltaException.OutOfBounds($"Reference item {i}: block of {stored} stored bytes, slice {start}+{length}; slices must lie inside a block of at most {maxBlock} bytes.");
                }

                item = new ReferenceItem(offset, stored, (sizeAndFlag & 1) != 0, start, length);
                CheckRange(offset, stored, baseSize, i);
                previousEnd = offset + stored;
            }
            else
            {
                throw DeltaException.Corrupted($"Reference item {i}: kind {(byte)kind} is unknown (1-2).");
            }

            total += item.Length;
            if (total > DeltaFormat.MaxReferenceLength)
            {
                throw DeltaException.Overflow($"The reference of a content section adds up to more than {DeltaFormat.MaxReferenceLength} bytes.");
            }

            items.Add(item);
        }

        return items;
    }

    private static void CheckRange(long offset, long length, long baseSize, int index)
    {
        if (offset < 0 || length < 0 || offset > baseSize - length)
        {
            throw DeltaException.OutOfBounds($"Reference item {index}: {length} bytes at base offset {offset} lie outside the base image ({baseSize} bytes).");
        }
    }
}
