namespace EdgeUpdater.Agent.Install;

/// <summary>
/// A delta that cannot be applied (corrupt, truncated, wrong base, builds another image): the agent
/// falls back to the full image. <see cref="Reason"/> is a short kebab-case word for the status message.
/// </summary>
internal sealed class DeltaApplyException : Exception
{
    public DeltaApplyException(string reason, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Reason = reason;
    }

    public DeltaApplyException()
    {
        Reason = "unusable";
    }

    public DeltaApplyException(string message)
        : this("unusable", message)
    {
    }

    public DeltaApplyException(string message, Exception innerException)
        : this("unusable", message, innerException)
    {
    }

    /// <summary><c>corrupted</c>, <c>truncated</c>, <c>wrong-base</c>, <c>wrong-target</c>, <c>codec-mismatch</c>, ...</summary>
    public string Reason { get; }
}

/// <summary>What one delta apply reads, writes and where it keeps its resume point.</summary>
internal sealed record DeltaApplyRequest
{
    /// <summary>The active slot: read only, never written.</summary>
    public required string BaseImagePath { get; init; }

    public required string DeltaPath { get; init; }

    /// <summary>
    /// When set, the delta is read from this stream instead of <see cref="DeltaPath"/> (the file while it is still
    /// downloading); the caller disposes it.
    /// </summary>
    public Stream? Delta { get; init; }

    /// <summary>The inactive slot (file or block device), written from its start.</summary>
    public required string OutputPath { get; init; }

    /// <summary>Resume checkpoint in the state directory: an apply finds it after a power cut and continues from it.</summary>
    public required string CheckpointPath { get; init; }

    /// <summary>
    /// The image the manifest names (SHA-256, lowercase hex, and size), or null: a delta that builds another
    /// is refused (<c>wrong-target</c>) from its header, before the inactive slot is touched.
    /// </summary>
    public (string Sha256, long Size)? ExpectedImage { get; init; }

    /// <summary>New-image bytes between two checkpoints.</summary>
    public long CheckpointIntervalBytes { get; init; } = 16 << 20;

    /// <summary>Called on the applying thread with (new-image bytes written, new-image size).</summary>
    public Action<long, long>? Progress { get; init; }
}

/// <summary>What an apply produced: the image the delta promised (already checked against the bytes written).</summary>
/// <param name="ImageSha256">SHA-256 of the rebuilt image, lowercase hex, as the delta's header names it.</param>
/// <param name="ImageSize">Its size in bytes.</param>
/// <param name="ResumedFrom">New-image offset the apply continued from (0 when it started fresh).</param>
internal sealed record DeltaApplyOutcome(string ImageSha256, long ImageSize, long ResumedFrom);

/// <summary>
/// Rebuilds the new image into the inactive slot from the active slot's image and a delta, streamed,
/// resumable from a checkpoint. Implemented with EdgeUpdater.Delta by <see cref="SlotDeltaApplier"/>.
/// </summary>
internal interface IDeltaApplier
{
    /// <summary>Codec identities for the delta request's <c>codecs</c> query (docs/protocol.md).</summary>
    string Codecs { get; }

    /// <summary>The newest delta format version this applier reads, for the delta request's <c>format</c> query.</summary>
    int FormatVersion { get; }

    /// <summary>Applies; throws <see cref="DeltaApplyException"/> for a delta that cannot give the image, <see cref="IOException"/> for the device's own I/O failures.</summary>
    Task<DeltaApplyOutcome> ApplyAsync(DeltaApplyRequest request, CancellationToken cancellationToken = default);
}
