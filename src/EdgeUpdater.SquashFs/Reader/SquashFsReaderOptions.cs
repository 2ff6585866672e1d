namespace EdgeUpdater.SquashFs.Reader;

/// <summary>Limits and caches of an open image. The defaults fit any real image; lower them for untrusted input.</summary>
public sealed record SquashFsReaderOptions
{
    /// <summary>Most metadata bytes decompressed over the image's lifetime before giving up (default 4 GiB).</summary>
    public long MaxMetadataBytes { get; init; } = 4L << 30;

    /// <summary>Deepest directory nesting a walk or lookup follows (default 256).</summary>
    public int MaxDepth { get; init; } = 256;

    /// <summary>Most directory entries one walk visits (default 64 million).</summary>
    public long MaxEntries { get; init; } = 64L << 20;

    /// <summary>Most entries of one file's block list (default 32 Mi entries, a 4 TiB file at 128 KiB blocks).</summary>
    public long MaxBlockListEntries { get; init; } = DefaultMaxBlockListEntries;

    /// <summary>The default of <see cref="MaxBlockListEntries"/>.</summary>
    public const long DefaultMaxBlockListEntries = 32L << 20;

    /// <summary>Decompressed metadata blocks kept in memory (default 128, 1 MiB).</summary>
    public int MetadataCacheBlocks { get; init; } = 128;

    /// <summary>Memory for decompressed fragment blocks, least recently used dropped first (default 16 MiB: 128 blocks of 128 KiB).</summary>
    public long FragmentCacheBytes { get; init; } = 16L << 20;
}
