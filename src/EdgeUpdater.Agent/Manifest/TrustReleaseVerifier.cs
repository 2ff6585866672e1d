using EdgeUpdater.Trust;
using EdgeUpdater.Trust.Keys;
using EdgeUpdater.Trust.KeySets;
using EdgeUpdater.Trust.Manifests;
using EdgeUpdater.Trust.Policy;
using EdgeUpdater.Trust.Versioning;

namespace EdgeUpdater.Agent.Manifest;

/// <summary>
/// <see cref="IReleaseVerifier"/> on EdgeUpdater.Trust's <see cref="ReleaseVerifier.Verify"/>: the pinned
/// roots and the key set chain come from the agent configuration; the device facts and the installed
/// release from the agent's state. On top of the library's policy the agent checks what only it knows:
/// the manifest is for this target and this target kind.
/// </summary>
internal sealed class TrustReleaseVerifier : IReleaseVerifier
{
    private readonly TrustRoot _roots;
    private readonly IReadOnlyList<ReadOnlyMemory<byte>> _keySetChain;
    private readonly SemanticVersion _agentVersion;

    public TrustReleaseVerifier(TrustRoot roots, IReadOnlyList<ReadOnlyMemory<byte>> keySetChain, string agentVersion)
    {
        _roots = roots;
        _keySetChain = keySetChain;
        _agentVersion = SemanticVersion.Parse(agentVersion);
    }

    /// <summary>Reads the pinned root public keys (PEM files) and the key set chain (envelope files, oldest first).</summary>
    public static TrustReleaseVerifier Load(IReadOnlyList<string> rootKeyFiles, int rootThreshold, IReadOnlyList<string> keySetFiles, string agentVersion)
    {
        var roots = rootKeyFiles.Select(path => PublicKeyFile.Parse(File.ReadAllBytes(path))).ToList();
        var chain = keySetFiles.Select(path => (ReadOnlyMemory<byte>)File.ReadAllBytes(path)).ToList();
        return new TrustReleaseVerifier(new TrustRoot(roots, rootThreshold), chain, agentVersion);
    }

    /// <summary>The key set chain installed with the agent.</summary>
    public IReadOnlyList<ReadOnlyMemory<byte>> InstalledKeySetChain => _keySetChain;

    public VerifiedRelease Verify(ReadOnlySpan<byte> manifestEnvelope, ReleaseVerificationContext context)
    {
        Trust.Policy.VerifiedRelease verified;
        try
        {
            InstalledRelease? installed = null;
            if (context.InstalledVersion is { } version && SemanticVersion.TryParse(version, out var installedVersion))
            {
                installed = new InstalledRelease
                {
                    Version = installedVersion!,
                    ManifestCreated = context.InstalledManifestCreatedAt ?? DateTimeOffset.MinValue,
                };
            }

            verified = ReleaseVerifier.Verify(manifestEnvelope, new TrustContext
            {
                PinnedRoots = _roots,
                KeySetChain = context.KeySetChain ?? _keySetChain,
                MinimumKeySetVersion = context.MinimumKeySetVersion,
                Now = context.Now,
                Device = new DeviceFacts { Hardware = context.Hardware, Architecture = context.Architecture, AgentVersion = _agentVersion },
                Installed = installed,
            });
        }
        catch (TrustException e)
        {
            throw new ReleaseRejectedException(e.FailureName, e.Message, e);
        }

        var manifest = verified.Manifest;
        var kind = manifest.TargetKind == TargetKind.System ? "system" : "app";
        if (kind != context.TargetKind)
        {
            throw new ReleaseRejectedException("wrong-target-kind", $"manifest {manifest.Name} {manifest.Version} is for a '{kind}' target; target '{context.TargetName}' is '{context.TargetKind}'");
        }

        var target = manifest.Target ?? manifest.Name;
        if (target != context.TargetName)
        {
            throw new ReleaseRejectedException("wrong-target", $"manifest {manifest.Name} {manifest.Version} is for target '{target}', not '{context.TargetName}'");
        }

        return new VerifiedRelease
        {
            Name = manifest.Name,
            Version = manifest.Version.ToString(),
            ImageSha256 = manifest.ImageSha256,
            ImageSize = manifest.ImageSize,
            TargetKind = kind,
            CreatedAt = manifest.Created,
            KeySetVersion = verified.KeySet.Version,
        };
    }
}
