using System.Security.Cryptography;
using EdgeUpdater.Trust.Envelopes;
using EdgeUpdater.Trust.Keys;
using EdgeUpdater.Trust.KeySets;
using EdgeUpdater.Trust.Manifests;
using EdgeUpdater.Trust.Versioning;

namespace EdgeUpdater.Agent.Tests.Fixtures;

/// <summary>A signed manifest: its envelope bytes and their SHA-256 (its address).</summary>
internal sealed record SignedManifest(byte[] Envelope, string Sha256, string ImageSha256, long ImageSize, string Version);

/// <summary>
/// A fleet's keys for tests, with EdgeUpdater.Trust: a root key (pinned on the device), a release key
/// listed in key set v1, and manifests signed by the release key.
/// </summary>
internal sealed class ReleaseSigner : IDisposable
{
    private readonly SigningKey _root = SigningKey.Generate();
    private readonly SigningKey _release = SigningKey.Generate();

    public ReleaseSigner()
    {
        var keySet = new KeySet
        {
            Version = 1,
            Created = DateTimeOffset.UtcNow.AddDays(-1),
            Expires = DateTimeOffset.UtcNow.AddDays(365),
            RootThreshold = 1,
            ReleaseThreshold = 1,
            Keys = [KeySetEntry.For(_root.PublicKey, KeyRole.Root), KeySetEntry.For(_release.PublicKey, KeyRole.Release, DateTimeOffset.UtcNow.AddDays(180))],
        };
        KeySetEnvelope = SignedEnvelope.Create(PayloadTypes.KeySet, keySet.ToPayloadBytes(), [_root]).ToJsonBytes();
    }

    /// <summary>The pinned root, as the PEM file installed with the agent.</summary>
    public string RootPublicKeyPem => _root.PublicKey.ToPem();

    /// <summary>Key set v1, signed by the root.</summary>
    public byte[] KeySetEnvelope { get; }

    /// <summary>Writes root.pub and keyset-v1.json into <paramref name="directory"/>; returns their paths.</summary>
    public (string RootKey, string KeySet) WriteTrustFiles(string directory)
    {
        Directory.CreateDirectory(directory);
        var root = Path.Combine(directory, "root.pub");
        var keySet = Path.Combine(directory, "keyset-v1.json");
        File.WriteAllText(root, RootPublicKeyPem);
        File.WriteAllBytes(keySet, KeySetEnvelope);
        return (root, keySet);
    }

    /// <param name="signWith">A key to sign with instead of the listed release key (for unknown-key tests).</param>
    public SignedManifest Sign(
        string imagePath,
        string version,
        string kind = "app",
        string hardware = "test-board",
        bool allowDowngrade = false,
        string name = "demo",
        string target = "app",
        SigningKey? signWith = null,
        DateTimeOffset? created = null)
    {
        var bytes = File.ReadAllBytes(imagePath);
        var imageSha = Convert.ToHexStringLower(SHA256.HashData(bytes));
        var manifest = new ReleaseManifest
        {
            Name = name,
            Target = target == name ? null : target,
            Version = SemanticVersion.Parse(version),
            TargetKind = kind == "system" ? TargetKind.System : TargetKind.App,
            ImageSha256 = imageSha,
            ImageSize = bytes.Length,
            Hardware = [hardware],
            Architectures = [AgentIdentity.Architecture],
            Created = created ?? DateTimeOffset.UtcNow,
            Expires = DateTimeOffset.UtcNow.AddDays(30),
            AllowDowngrade = allowDowngrade,
        };
        var envelope = SignedEnvelope.Create(PayloadTypes.ReleaseManifest, manifest.ToPayloadBytes(), [signWith ?? _release]).ToJsonBytes();
        return new SignedManifest(envelope, Convert.ToHexStringLower(SHA256.HashData(envelope)), imageSha, bytes.Length, version);
    }

    public void Dispose()
    {
        _root.Dispose();
        _release.Dispose();
    }
}
