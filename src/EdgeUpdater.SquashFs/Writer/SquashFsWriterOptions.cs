using EdgeUpdater.SquashFs.Compression;

namespace EdgeUpdater.SquashFs.Writer;

/// <summary>Knobs of <see cref="SquashFsWriter"/>. Defaults match mksquashfs's (gzip 9, 128 KiB blocks, fragments, duplicate detection, export table).</summary>
public sealed record SquashFsWriterOptions
{
    /// <summary>Compressor and its options (gzip, xz, lz4 or zstd).</summary>
    public CompressorOptions Compressor { get; init; } = CompressorOptions.Default(Format.CompressorId.Gzip);

    /// <summary>Data block size: a power of two from 4096 to 1048576 (default 131072).</summary>
    public int BlockSize { get; init; } = 131072;

    /// <summary>Pack files smaller than a block into shared fragment blocks (default true).</summary>
    public bool Fragments { get; init; } = true;

    /// <summary>Also pack the tails of files larger than a block into fragments (default false, as mksquashfs).</summary>
    public bool AlwaysFragments { get; init; }

    /// <summary>Store files with identical content once (default true).</summary>
    public bool DeduplicateFiles { get; init; } = true;

    /// <summary>Write the export (NFS) table (default true).</summary>
    public bool Exportable { get; init; } = true;

    /// <summary>Store xattrs (default true).</summary>
    public bool Xattrs { get; init; } = true;

    /// <summary>
    /// When set, every inode gets this mtime and the image this creation time. When null and
    /// <see cref="HonourSourceDateEpoch"/> is true, <c>SOURCE_DATE_EPOCH</c> from the environment is used.
    /// </summary>
    public long? FixedTimestamp { get; init; }

    /// <summary>Read <c>SOURCE_DATE_EPOCH</c> when <see cref="FixedTimestamp"/> is null (default true).</summary>
    public bool HonourSourceDateEpoch { get; init; } = true;

    /// <summary>When set, every inode is owned by this uid/gid (like mksquashfs -all-root for 0/0).</summary>
    public (uint Uid, uint Gid)? OwnerOverride { get; init; }

    /// <summary>Compression threads (default: the processor count). The output does not depend on it.</summary>
    public int Parallelism { get; init; } = Environment.ProcessorCount;
}

/// <summary>What a build produced.</summary>
/// <param name="BytesUsed">Image bytes before the 4 KiB padding.</param>
/// <param name="ImageLength">File length including padding.</param>
/// <param name="InodeCount">Inodes written.</param>
/// <param name="DataBlocks">Data blocks stored (not counting sparse blocks).</param>
/// <param name="FragmentBlocks">Fragment blocks stored.</param>
/// <param name="DuplicateFiles">Files stored as references to an identical earlier file.</param>
public sealed record SquashFsWriteResult(long BytesUsed, long ImageLength, uint InodeCount, long DataBlocks, long FragmentBlocks, long DuplicateFiles);
