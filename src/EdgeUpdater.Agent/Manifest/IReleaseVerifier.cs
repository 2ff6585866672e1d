namespace EdgeUpdater.Agent.Manifest;

/// <summary>What the device knows when it judges a manifest: who it is and what it runs.</summary>
internal sealed record ReleaseVerificationContext
{
    public required string Hardware { get; init; }

    public required string Architecture { get; init; }

    /// <summary>Name of the device target the update is for; the manifest's target (or name) must match it.</summary>
    public required string TargetName { get; init; }

    /// <summary>Target kind the manifest must be for: <c>app</c> or <c>system</c>.</summary>
    public required string TargetKind { get; init; }

    /// <summary>Version running in the target now; null when nothing verified was ever installed.</summary>
    public string? InstalledVersion { get; init; }

    /// <summary>Creation time of the installed release's manifest, against replay of older releases.</summary>
    public DateTimeOffset? InstalledManifestCreatedAt { get; init; }

    /// <summary>Highest key set version accepted before: an older newest key set is a rollback.</summary>
    public long MinimumKeySetVersion { get; init; }

    public DateTimeOffset Now { get; init; } = DateTimeOffset.UtcNow;

    /// <summary>Key set chain to verify with (from the server); null uses the chain installed with the agent.</summary>
    public IReadOnlyList<ReadOnlyMemory<byte>>? KeySetChain { get; init; }
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

    /// <summary>Version of the key set that vouched for the signers; persisted as the new minimum.</summary>
    public long KeySetVersion { get; init; }
}

/// <summary>A manifest failed verification; the update is abandoned (never retried: the bytes will not change).</summary>
internal sealed class ReleaseRejectedException : Exception
{
    public ReleaseRejectedException(string reason, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Reason = reason;
    }

    public ReleaseRejectedException()
    {
        Reason = "unknown";
    }

    public ReleaseRejectedException(string message)
        : base(message)
    {
        Reason = "unknown";
    }

    public ReleaseRejectedException(string message, Exception innerException)
        : base(message, innerException)
    {
        Reason = "unknown";
    }

    /// <summary>Kebab-case reason, as the trust library names its failures (<c>bad-signature</c>, <c>not-newer</c>, ...).</summary>
    public string Reason { get; }
}

/// <summary>
/// The agent's seam to the trust library's one verification policy function: signatures against the
/// pinned roots through the key set chain, expiry, hardware, architecture, target, version moving
/// forward. Everything downloaded is checked against the <see cref="VerifiedRelease"/> it returns.
/// </summary>
internal interface IReleaseVerifier
{
    VerifiedRelease Verify(ReadOnlySpan<byte> manifestEnvelope, ReleaseVerificationContext context);
}
