using EdgeUpdater.Delta.Format;

namespace EdgeUpdater.Delta.Generation;

/// <summary>Encodes and decodes the head of a content section: content length and reference items.</summary>
internal static class ContentFrame
{
    public const int MaxItems = 1 << 16;

    /// <summary>Head of a zstd frame (format 2): content length, coder, the reference items.</summary>
    public static void WriteZstdHead(ByteWriter writer, int contentLength, IReadOnlyList<ReferenceItem> items)
    {
        writer.VarU((ulong)contentLength);
        writer.U8((byte)FrameCoder.Zstd);
        WriteItems(writer, items);
    }

    /// <summary>Head of an LZMA2 frame (format 2): content length, coder, BCJ filter, dictionary size.</summary>
    public static void WriteLzmaHead(ByteWriter writer, int contentLength, byte filter, int dictionarySize)
    {
        writer.VarU((ulong)contentLength);
        writer.U8((byte)FrameCoder.Lzma2);
        writer.U8(filter);
        writer.VarU((ulong)dictionarySize);
    }

    private static void WriteItems(ByteWriter writer, IReadOnlyList<ReferenceItem> items)
    {
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

    /// <summary>
    /// Reads a content section's head up to its frame blob: format 1 has content length and reference
    /// items (zstd implied); format 2 adds the coder after the length, and LZMA2 frames carry a BCJ filter and
    /// a dictionary size instead of items.
    /// </summary>
    public static ContentFrameHead ReadHead(ref ByteReader reader, ushort version, long baseSize, uint maxBlock)
    {
        var contentLength = reader.VarInt(version == 1 ? DeltaFormat.MaxContentLengthVersion1 : DeltaFormat.MaxContentLength, "content length");
        var coder = version == 1 ? FrameCoder.Zstd : (FrameCoder)reader.U8();
        switch (coder)
        {
            case FrameCoder.Zstd:
                return new ContentFrameHead(coder, contentLength, ReadItems(ref reader, baseSize, maxBlock), 0, 0);
            case FrameCoder.Lzma2:
                var filter = reader.U8();
                if (!Patching.LzmaCoder.IsKnownFilter(filter))
                {
                    throw DeltaException.Corrupted($"{reader.Where}: LZMA2 frame with BCJ filter 0x{filter:x2}; 0 (none) or a liblzma BCJ filter id 0x04-0x0B expected.");
                }

                // The decoder allocates the dictionary: never more than the frame decodes to or the format's
                // maximum (the generator writes exactly that, or liblzma's minimum).
                var dictionary = reader.VarInt(Patching.LzmaCoder.DictionaryFor(contentLength), "LZMA2 dictionary size");
                if (dictionary < Patching.LzmaCoder.MinDictionary)
                {
                    throw DeltaException.Corrupted($"{reader.Where}: LZMA2 dictionary of {dictionary} bytes; at least {Patching.LzmaCoder.MinDictionary} expected.");
                }

                return new ContentFrameHead(coder, contentLength, [], filter, dictionary);
            default:
                throw DeltaException.Corrupted($"{reader.Where}: frame coder {(byte)coder}; 1 (zstd) or 2 (LZMA2) expected.");
        }
    }

    private static List<ReferenceItem> ReadItems(ref ByteReader reader, long baseSize, uint maxBlock)
    {
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

/// <summary>A content section's head: how its frame is coded and what it decodes to.</summary>
/// <param name="Coder">zstd (with reference) or LZMA2.</param>
/// <param name="ContentLength">Bytes the frame decodes to.</param>
/// <param name="Items">The reference (zstd frames; empty otherwise).</param>
/// <param name="Filter">BCJ filter id of an LZMA2 frame (0: none).</param>
/// <param name="Dictionary">Dictionary size of an LZMA2 frame.</param>
internal readonly record struct ContentFrameHead(FrameCoder Coder, int ContentLength, List<ReferenceItem> Items, byte Filter, int Dictionary);
