namespace EdgeUpdater.SquashFs.Reader;

/// <summary>One data block of a file.</summary>
/// <param name="Offset">Image offset (for a sparse block: where it would be; nothing is stored).</param>
/// <param name="StoredSize">Bytes on disk (0 for sparse).</param>
/// <param name="IsCompressed">False when stored uncompressed (or sparse).</param>
/// <param name="IsSparse">True for a hole: the block is all zeros and not stored.</param>
/// <param name="UncompressedSize">Bytes of file data in this block.</param>
public readonly record struct DataBlockLocation(long Offset, uint StoredSize, bool IsCompressed, bool IsSparse, int UncompressedSize);

/// <summary>Where a file's tail lies in a fragment block.</summary>
/// <param name="Index">Fragment table index.</param>
/// <param name="BlockOffset">Image offset of the fragment block.</param>
/// <param name="StoredSize">Bytes of the fragment block on disk.</param>
/// <param name="IsCompressed">False when the fragment block is stored uncompressed.</param>
/// <param name="OffsetInFragment">Offset of the tail inside the uncompressed fragment block.</param>
/// <param name="Length">Length of the tail.</param>
public readonly record struct FragmentLocation(uint Index, long BlockOffset, uint StoredSize, bool IsCompressed, uint OffsetInFragment, int Length);

/// <summary>Every stored piece of one regular file.</summary>
/// <param name="Blocks">Full blocks (and the last block when there is no fragment), in file order.</param>
/// <param name="Fragment">The tail in a fragment block, or null.</param>
/// <param name="FileSize">File size in bytes.</param>
public sealed record FileBlockMap(IReadOnlyList<DataBlockLocation> Blocks, FragmentLocation? Fragment, ulong FileSize);

/// <summary>Data block or fragment block.</summary>
public enum StoredBlockKind
{
    /// <summary>A file data block.</summary>
    Data,

    /// <summary>A fragment block (packed file tails).</summary>
    Fragment,
}

/// <summary>A block stored in the data area of the image.</summary>
/// <param name="Kind">Data or fragment block.</param>
/// <param name="Offset">Image offset.</param>
/// <param name="StoredSize">Bytes on disk.</param>
/// <param name="IsCompressed">False when stored uncompressed.</param>
/// <param name="UncompressedSize">Uncompressed bytes: exact for data blocks; for fragment blocks the end of the last tail that uses it.</param>
/// <param name="FragmentIndex">Fragment table index for fragment blocks, otherwise -1.</param>
public readonly record struct StoredBlock(StoredBlockKind Kind, long Offset, uint StoredSize, bool IsCompressed, int UncompressedSize, long FragmentIndex);
