namespace EdgeUpdater.Delta;

/// <summary>What a delta is made of: bytes of the new image by how they are produced, and delta bytes by section.</summary>
public sealed class DeltaStatistics
{
    /// <summary>New-image bytes copied from the base image.</summary>
    public long CopiedBytes { get; set; }

    /// <summary>New-image bytes given literally in the delta (including XOR-against-base bytes).</summary>
    public long LiteralBytes { get; set; }

    /// <summary>New-image bytes of zero runs.</summary>
    public long ZeroBytes { get; set; }

    /// <summary>New-image bytes of data/fragment blocks rebuilt from patched content (stored size).</summary>
    public long RebuiltBytes { get; set; }

    /// <summary>Data/fragment blocks rebuilt by recompression on the device.</summary>
    public long RecompressedBlocks { get; set; }

    /// <summary>
    /// Blocks of new files (nothing in the old image to patch against) rebuilt from LZMA2 content frames,
    /// recompressed on the device (included in <see cref="RecompressedBlocks"/>).
    /// </summary>
    public long NewFileBlocksRebuilt { get; set; }

    /// <summary>
    /// Blocks with nothing to patch against sent as their stored bytes in zstd frames of their own, because
    /// their compressor left short repeats in them (fast level, or a device that cannot recompress); the
    /// device only decodes the frame.
    /// </summary>
    public long PackedBlocks { get; set; }

    /// <summary>Changed data/fragment blocks that could not be reproduced by recompression (sent literally).</summary>
    public long IrreproducibleBlocks { get; set; }

    /// <summary>
    /// Blocks (data, fragment and metadata) whose recompression outcome came from
    /// <see cref="DeltaGeneratorOptions.Reproduction"/> instead of being tried again.
    /// </summary>
    public long ProofsRecalled { get; set; }

    /// <summary>New-image bytes of the metadata region rebuilt from the metadata section.</summary>
    public long MetadataBytes { get; set; }

    /// <summary>Metadata blocks rebuilt by recompression.</summary>
    public long MetadataBlocksRecompressed { get; set; }

    /// <summary>Metadata blocks the device replays from their LZMA decisions (format 4, xz).</summary>
    public long MetadataBlocksReplayed { get; set; }

    /// <summary>Metadata blocks sent literally.</summary>
    public long MetadataBlocksLiteral { get; set; }

    /// <summary>Metadata tables the device derives from other new tables (format 3: the export table).</summary>
    public long MetadataTablesDerived { get; set; }

    /// <summary>Delta bytes of the header.</summary>
    public long HeaderBytes { get; set; }

    /// <summary>Delta bytes of ops sections (copies, literals, block operations).</summary>
    public long OpsSectionBytes { get; set; }

    /// <summary>Delta bytes of content sections (patches of decompressed content).</summary>
    public long ContentSectionBytes { get; set; }

    /// <summary>Delta bytes of the metadata section.</summary>
    public long MetadataSectionBytes { get; set; }

    /// <summary>Delta bytes of the end section.</summary>
    public long EndSectionBytes { get; set; }

    /// <summary>Wall-clock milliseconds per generation phase (hash, index, ownership, metadata, encode).</summary>
    public Dictionary<string, double> PhaseMilliseconds { get; } = [];

    /// <summary>Total delta size.</summary>
    public long DeltaBytes => HeaderBytes + OpsSectionBytes + ContentSectionBytes + MetadataSectionBytes + EndSectionBytes;
}

/// <summary>Merging per-worker statistics.</summary>
internal static class DeltaStatisticsExtensions
{
    public static void Add(this DeltaStatistics total, DeltaStatistics part)
    {
        total.CopiedBytes += part.CopiedBytes;
        total.LiteralBytes += part.LiteralBytes;
        total.ZeroBytes += part.ZeroBytes;
        total.RebuiltBytes += part.RebuiltBytes;
        total.RecompressedBlocks += part.RecompressedBlocks;
        total.IrreproducibleBlocks += part.IrreproducibleBlocks;
        total.NewFileBlocksRebuilt += part.NewFileBlocksRebuilt;
        total.PackedBlocks += part.PackedBlocks;
        total.MetadataBytes += part.MetadataBytes;
        total.MetadataBlocksRecompressed += part.MetadataBlocksRecompressed;
        total.MetadataBlocksReplayed += part.MetadataBlocksReplayed;
        total.MetadataBlocksLiteral += part.MetadataBlocksLiteral;
        total.MetadataTablesDerived += part.MetadataTablesDerived;
        total.ProofsRecalled += part.ProofsRecalled;
        foreach (var (name, ms) in part.PhaseMilliseconds)
        {
            total.PhaseMilliseconds[name] = total.PhaseMilliseconds.GetValueOrDefault(name) + ms;
        }
    }
}
