using EdgeUpdater.Trust.KeySets;
using EdgeUpdater.Trust.Versioning;

namespace EdgeUpdater.Trust.Policy;

/// <summary>Everything <see cref="ReleaseVerifier.Verify"/> judges a manifest against.</summary>
public sealed class TrustContext
{
    /// <summary>The pinned root keys (on a device: installed with the agent, or adopted from a persisted key set).</summary>
    public required TrustRoot PinnedRoots { get; init; }

    /// <summary>Key set envelopes, oldest first; the first is signed by <see cref="PinnedRoots"/>.</summary>
    public required IReadOnlyList<ReadOnlyMemory<byte>> KeySetChain { get; init; }

    /// <summary>Highest key set version accepted before (0 when none): an older newest key set is a rollback.</summary>
    public long MinimumKeySetVersion { get; init; }

    /// <summary>The verifier's clock.</summary>
    public required DateTimeOffset Now { get; init; }

    /// <summary>The device the release is for. Null only on the server, which checks signatures and expiry but not compatibility.</summary>
    public DeviceFacts? Device { get; init; }

    /// <summary>What the target runs now. Null when nothing is installed (first install) or on the server.</summary>
    public InstalledRelease? Installed { get; init; }
}

/// <summary>Facts about the device that a manifest must be compatible with.</summary>
public sealed record DeviceFacts
{
    /// <summary>The device's hardware id (compared ordinally with <c>manifest.hardware</c>).</summary>
    public required string Hardware { get; init; }

    /// <summary>The device's architecture (compared ordinally with <c>manifest.architectures</c>), e.g. <c>arm64</c>.</summary>
    public required string Architecture { get; init; }

    /// <summary>
    /// The running agent's version (compared with <c>manifest.minAgentVersion</c>). The agent always sets
    /// it; null skips the check (the CLI checking a manifest for a device without knowing its agent).
    /// </summary>
    public SemanticVersion? AgentVersion { get; init; }
}

/// <summary>The release a target runs now, from the manifest that installed it.</summary>
public sealed record InstalledRelease
{
    /// <summary>Installed image version.</summary>
    public required SemanticVersion Version { get; init; }

    /// <summary><c>created</c> of the manifest that installed it: an older manifest is a replay.</summary>
    public required DateTimeOffset ManifestCreated { get; init; }
}
