namespace EdgeUpdater.Delta;

/// <summary>Knobs of <see cref="DeltaApplier"/>.</summary>
public sealed record DeltaApplyOptions
{
    /// <summary>
    /// Where to keep the resume checkpoint (written atomically, removed on success); null: no checkpoints.
    /// </summary>
    public string? CheckpointPath { get; init; }

    /// <summary>Continue from the checkpoint at <see cref="CheckpointPath"/> when there is one.</summary>
    public bool Resume { get; init; }

    /// <summary>Output bytes between two checkpoints (default 16 MiB); each checkpoint flushes the output.</summary>
    public long CheckpointInterval { get; init; } = 16 << 20;

    /// <summary>When and whether the base image is hashed and compared with the delta's header (default: only when the apply fails).</summary>
    public BaseVerification VerifyBase { get; init; } = BaseVerification.WhenFailed;

    /// <summary>
    /// The new image the caller expects (from a signed manifest), or null. A delta whose header names another
    /// size or SHA-256 is refused (<see cref="DeltaErrorCategory.WrongTarget"/>) before the output is touched,
    /// so that neither its writes nor its reservation of room depend on an unchecked header.
    /// </summary>
    public ExpectedImage? ExpectedTarget { get; init; }

    /// <summary>Worker threads for recompression (default: processor count).</summary>
    public int MaxParallelism { get; init; } = Environment.ProcessorCount;

    /// <summary>Progress: new-image bytes written so far and the total.</summary>
    public IProgress<DeltaApplyProgress>? Progress { get; init; }

    /// <summary>
    /// Decode the metadata section ahead, on another core, when the delta stream can seek (default). Turn it
    /// off for a delta read over a network: there each seek costs a request, and the section, which comes
    /// last, would be fetched twice.
    /// </summary>
    public bool ReadMetadataAhead { get; init; } = true;

    /// <summary>
    /// Most bytes of the new image's metadata region held when it is decoded ahead (a Debian root file
    /// system's: about 200 KB); a larger region is decoded in its turn instead.
    /// </summary>
    internal int MetadataAheadLimit { get; init; } = 8 << 20;
}

/// <summary>
/// When <see cref="DeltaApplier"/> hashes the base image. Whichever is chosen, success needs the new
/// image's SHA-256 right, so a wrong base never gives a wrong image.
/// </summary>
public enum BaseVerification
{
    /// <summary>
    /// Only when the apply fails, to tell a wrong base (<see cref="DeltaErrorCategory.WrongBase"/>) from a
    /// broken delta. The new image is made of the base's bytes, so a base that differs where the new image
    /// takes from it fails the final check and is then named; one that differs only where the new image
    /// takes nothing gives the right image. Saves reading and hashing the whole base on every apply.
    /// </summary>
    WhenFailed,

    /// <summary>
    /// On another core while the new image is written, awaited before success: a wrong base is always
    /// refused, even one the new image takes nothing from, but may leave a partly written output.
    /// </summary>
    Beside,

    /// <summary>Before anything is written (costs one read of the base up front).</summary>
    BeforeWriting,

    /// <summary>Never: the base is checked by size only, and a failure is reported as it is found.</summary>
    SizeOnly,
}

/// <summary>An image by its size and SHA-256.</summary>
/// <param name="Size">Its size in bytes.</param>
/// <param name="Sha256">Its SHA-256 (32 bytes).</param>
public sealed record ExpectedImage(long Size, byte[] Sha256);

/// <summary>Progress of an apply.</summary>
/// <param name="BytesWritten">New-image bytes written (and hashed) so far.</param>
/// <param name="TotalBytes">Size of the new image.</param>
public readonly record struct DeltaApplyProgress(long BytesWritten, long TotalBytes);

/// <summary>What <see cref="DeltaApplier"/> did.</summary>
/// <param name="Header">The delta's header.</param>
/// <param name="ResumedFrom">New-image offset the apply resumed from (0 when it started fresh).</param>
/// <param name="MetadataDecodedAhead">
/// The metadata section was decoded beside the data sections (the delta could be read ahead: a seekable
/// stream), rather than after them.
/// </param>
public sealed record DeltaApplyResult(DeltaHeader Header, long ResumedFrom, bool MetadataDecodedAhead);
