namespace EdgeUpdater.Delta;

/// <summary>Knobs of <see cref="DeltaGenerator"/>.</summary>
public sealed record DeltaGeneratorOptions
{
    /// <summary><see cref="DeltaLevel.Fast"/> for inline generation, <see cref="DeltaLevel.Best"/> (default) in the background.</summary>
    public DeltaLevel Level { get; init; } = DeltaLevel.Best;

    /// <summary>
    /// Codec identities the device has (e.g. <c>xz/5.4.1</c>, from <see cref="DeltaCodecs.LocalIdentities"/>
    /// on the device, sent as <c>?codecs=</c>). Recompression is used only with a codec in this set; null
    /// means "the generator's own codecs" (same library versions as the device).
    /// </summary>
    public IReadOnlyCollection<string>? DeviceCodecs { get; init; }

    /// <summary>Worker threads for block work (default: processor count).</summary>
    public int MaxParallelism { get; init; } = Environment.ProcessorCount;

    /// <summary>zstd level of content frames (0: the level's default, 3 for fast and 9 for best).</summary>
    public int ContentCompressionLevel { get; init; }

    /// <summary>
    /// SHA-256 of the old image when the caller already knows it (a content-addressed store does):
    /// saves hashing it. Not checked here; a wrong value makes every device refuse the delta.
    /// </summary>
    public IReadOnlyList<byte>? OldImageSha256 { get; init; }

    /// <summary>SHA-256 of the new image when the caller already knows it (see <see cref="OldImageSha256"/>).</summary>
    public IReadOnlyList<byte>? NewImageSha256 { get; init; }

    /// <summary>
    /// What is known about the new image's blocks from earlier generations to it (null: nothing; every block
    /// recompressed is tried). Consulted and extended by this generation. It must be the record of this new
    /// image (key it by the image's SHA-256); a record of another codec version is emptied first.
    /// </summary>
    public ReproductionRecord? Reproduction { get; init; }

    /// <summary>
    /// Format version to write (default: the newest). A device in the field says the newest it reads, and gets
    /// a delta it can apply: version 2 lacks version 3's derived export table and costs about one byte per inode
    /// more when inodes are added. Versions 2 and 3 are written.
    /// </summary>
    public int FormatVersion { get; init; } = Format.DeltaFormat.Version;

    /// <summary>
    /// Most bytes of decompressed metadata tables, all of one image's together, for which the delta carries a
    /// metadata section (tables patched against their prediction from the old image's). The device holds the old
    /// tables, their prediction and the new tables while it decodes one, about 3 times their size; larger tables
    /// are sent as their stored bytes patched against the old image's instead, which the device streams. The
    /// default, 4 MiB, keeps the apply under 64 MiB (a Debian root file system's tables take about 0.5 MiB;
    /// 40,000 files about 3.4 MiB). Raise it for devices with memory to spare: the section is far smaller when
    /// files are added or edited ahead of many others.
    /// </summary>
    public long MaxMetadataTableBytes { get; init; } = 4 << 20;

    /// <summary>Force the generic mode even for two SquashFS images (tests, comparisons).</summary>
    public bool ForceGeneric { get; init; }
}

/// <summary>What <c>DeltaGenerator.GenerateAsync</c> produced.</summary>
/// <param name="Header">The header written.</param>
/// <param name="Statistics">Sizes by operation kind and by section.</param>
public sealed record DeltaGenerationResult(DeltaHeader Header, DeltaStatistics Statistics);
