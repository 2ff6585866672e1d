using EdgeUpdater.Trust.KeySets;
using EdgeUpdater.Trust.Manifests;

namespace EdgeUpdater.Trust.Policy;

/// <summary>A manifest that passed every check of <see cref="ReleaseVerifier.Verify"/>.</summary>
public sealed class VerifiedRelease
{
    internal VerifiedRelease(ReleaseManifest manifest, VerifiedKeySet keySet, IReadOnlyList<string> signerKeyIds, string envelopeSha256)
    {
        Manifest = manifest;
        KeySet = keySet;
        SignerKeyIds = signerKeyIds;
        EnvelopeSha256 = envelopeSha256;
    }

    /// <summary>The verified manifest.</summary>
    public ReleaseManifest Manifest { get; }

    /// <summary>The key set its signers were found in.</summary>
    public VerifiedKeySet KeySet { get; }

    /// <summary>Key ids of the release keys whose valid signatures counted.</summary>
    public IReadOnlyList<string> SignerKeyIds { get; }

    /// <summary>SHA-256 (lowercase hex) of the envelope bytes: the manifest's address on the server.</summary>
    public string EnvelopeSha256 { get; }
}
