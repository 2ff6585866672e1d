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

    /// <summary>
    /// Hash the base image and compare with the delta's header (default). The hash runs on another core
    /// while the new image is written and is awaited before success, so a wrong base is always refused
    /// (<see cref="DeltaErrorCategory.WrongBase"/>) but may leave a partly written output; set
    /// <see cref="VerifyBaseBeforeWriting"/> to check it before the first write instead. When false the
    /// base is only checked by size; the final SHA-256 check of the new image still refuses any wrong result.
    /// </summary>
    public bool VerifyBase { get; init; } = true;

    /// <summary>Finish hashing the base image before anything is written (costs one read of the base up front).</summary>
    public bool VerifyBaseBeforeWriting { get; init; }

    /// <summary>Worker threads for recompression (default: processor count).</summary>
    public int MaxParallelism { get; init; } = Environment.ProcessorCount;

    /// <summary>Progress: new-image bytes written so far and the total.</summary>
    public IProgress<DeltaApplyProgress>? Progress { get; init; }

    /// <summary>
    /// Most bytes of the new image's metadata region held when it is decoded ahead (a Debian root file
    /// system's: about 200 KB); a larger region is decoded in its turn instead.
    /// </summary>
    internal int MetadataAheadLimit { get; init; } = 8 << 20;
}

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
