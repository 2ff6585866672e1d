namespace EdgeUpdater.SquashFs.Metadata;

/// <summary>The metadata tables of an image.</summary>
public enum MetadataTableKind
{
    /// <summary>The compressor options block after the superblock.</summary>
    CompressorOptions,

    /// <summary>Inode table.</summary>
    Inodes,

    /// <summary>Directory table.</summary>
    Directories,

    /// <summary>Fragment table (16-byte entries, indexed).</summary>
    Fragments,

    /// <summary>Export (NFS lookup) table (8-byte inode references, indexed).</summary>
    Export,

    /// <summary>Id table (4-byte uids/gids, indexed).</summary>
    Ids,

    /// <summary>Xattr key/value pairs.</summary>
    XattrKeyValues,

    /// <summary>Xattr id table (16-byte entries, indexed, after an 16-byte header).</summary>
    XattrIds,
}

/// <summary>One metadata block as stored: a 2-byte header and its payload.</summary>
/// <param name="Offset">Image offset of the 2-byte header.</param>
/// <param name="StoredSize">Payload bytes on disk (without the header).</param>
/// <param name="IsCompressed">False when the header's bit 15 marks the payload as stored uncompressed.</param>
/// <param name="UncompressedSize">Payload bytes after decompression (at most 8192).</param>
public readonly record struct MetadataBlockInfo(long Offset, int StoredSize, bool IsCompressed, int UncompressedSize)
{
    /// <summary>Header plus payload.</summary>
    public int TotalSize => 2 + StoredSize;

    /// <summary>Image offset just past this block.</summary>
    public long End => Offset + TotalSize;
}

/// <summary>
/// A whole metadata table, decompressed: its blocks in order, the concatenated uncompressed bytes and,
/// for indexed tables (fragments, export, ids, xattr ids), where the index of block pointers lies.
/// </summary>
public sealed class MetadataTable
{
    internal MetadataTable(MetadataTableKind kind, IReadOnlyList<MetadataBlockInfo> blocks, byte[] data, long indexOffset, IReadOnlyList<long> index)
    {
        Kind = kind;
        Blocks = blocks;
        Data = data;
        IndexOffset = indexOffset;
        Index = index;
    }

    /// <summary>Which table.</summary>
    public MetadataTableKind Kind { get; }

    /// <summary>The metadata blocks in image order.</summary>
    public IReadOnlyList<MetadataBlockInfo> Blocks { get; }

    /// <summary>The uncompressed contents of all blocks, concatenated.</summary>
    public byte[] Data { get; }

    /// <summary>Image offset of the index (array of 64-bit block pointers), or -1 for unindexed tables.</summary>
    public long IndexOffset { get; }

    /// <summary>The index entries (image offsets of the blocks), empty for unindexed tables.</summary>
    public IReadOnlyList<long> Index { get; }

    /// <summary>Image offset of the first byte of the table (first block, or the index when there are no blocks).</summary>
    public long Start => Blocks.Count > 0 ? Blocks[0].Offset : IndexOffset;

    /// <summary>
    /// Position in <see cref="Data"/> of a (block start relative to <paramref name="tableStart"/>, offset)
    /// reference, or -1 when no block starts there.
    /// </summary>
    public long ToDataOffset(long tableStart, long relativeBlockStart, int offsetInBlock)
    {
        long position = 0;
        foreach (var block in Blocks)
        {
            if (block.Offset - tableStart == relativeBlockStart)
            {
                return position + offsetInBlock;
            }

            position += block.UncompressedSize;
        }

        return -1;
    }
}
