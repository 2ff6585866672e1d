namespace EdgeUpdater.Agent.Manifest;

/// <summary>What the device knows when it judges a manifest: who it is and what it runs.</summary>
internal sealed record ReleaseVerificationContext
{
    public required string Hardware { get; init; }

    public required string Architecture { get; init; }

    /// <summary>Target kind the manifest must be for: <c>app</c> or <c>system</c>.</summary>
    public required string TargetKind { get; init; }

    /// <summary>Version running in the target now; null when nothing was ever installed.</summary>
    public string? InstalledVersion { get; init; }

    /// <summary>Creation time of the installed manifest, against replay of older releases.</summary>
    public DateTimeOffset? InstalledManifestCreatedAt { get; init; }

    public DateTimeOffset Now { get; init; } = DateTimeOffset.UtcNow;

    /// <summary>Skip the version-must-move-forward rule (technician rollback to a verified older image is not this: it never re-verifies).</summary>
    public bool AllowSameVersion { get; init; }
}

/// <summary>The facts of a manifest that passed every check, used to fetch and check the image.</summary>
internal sealed record VerifiedRelease
{
    public required string Name { get; init; }

    public required string Version { get; init; }

    public required string ImageSha256 { get; init; }

    public required long ImageSize { get; init; }

    public required string TargetKind { get; init; }

    public DateTimeOffset? CreatedAt { get; init; }
}

/// <summary>Why a manifest was refused.</summary>
internal enum ReleaseRejection
{
    Malformed,
    BadSignature,
    UnknownKey,
    Expired,
    HardwareMismatch,
    WrongTargetKind,
    NotNewer,
}

/// <summary>A manifest failed verification; the update is abandoned (never retried: the bytes will not change).</summary>
internal sealed class ReleaseRejectedException : Exception
{
    public ReleaseRejectedException(ReleaseRejection reason, string message)
        : base(message)
    {
        Reason = reason;
    }

    public ReleaseRejectedException(ReleaseRejection reason, string message, Exception innerException)
        : base(message, innerException)
    {
        Reason = reason;
    }

    public ReleaseRejectedException()
    {
    }

    public ReleaseRejectedException(string message)
        : base(message)
    {
    }

    public ReleaseRejectedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public ReleaseRejection Reason { get; }
}

/// <summary>
/// The agent's seam to the trust library's one verification policy function: signature against the
/// pinned roots, expiry, hardware, target kind, version moving forward. Everything downloaded is
/// checked against the <see cref="VerifiedRelease"/> it returns.
/// </summary>
internal interface IReleaseVerifier
{
    VerifiedRelease Verify(ReadOnlySpan<byte> manifestEnvelope, ReleaseVerificationContext context);
}
