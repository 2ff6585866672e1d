using EdgeUpdater.Trust.Envelopes;
using EdgeUpdater.Trust.Keys;
using EdgeUpdater.Trust.KeySets;
using EdgeUpdater.Trust.Manifests;
using EdgeUpdater.Trust.Versioning;

namespace EdgeUpdater.Server.Tests.Support;

/// <summary>
/// A fleet's trust setup made with the real trust library: a root key (its public half is what the
/// server is configured with), a release key, key set v1 signed by the root, and manifests signed by
/// the release key.
/// </summary>
internal sealed class TestTrust : IDisposable
{
    public SigningKey Root { get; } = SigningKey.Generate();

    public SigningKey Release { get; } = SigningKey.Generate();

    public byte[] KeySetV1 { get; }

    /// <summary>Fixed at construction so that signing the same image twice gives the same bytes.</summary>
    private DateTimeOffset Now { get; } = DateTimeOffset.UtcNow;

    public TestTrust()
    {
        var keySet = new KeySet
        {
            Version = 1,
            Created = DateTimeOffset.UtcNow.AddDays(-1),
            Expires = DateTimeOffset.UtcNow.AddDays(365),
            RootThreshold = 1,
            ReleaseThreshold = 1,
            Keys = [KeySetEntry.For(Root.PublicKey, KeyRole.Root), KeySetEntry.For(Release.PublicKey, KeyRole.Release, DateTimeOffset.UtcNow.AddDays(180), false)],
        };
        KeySetV1 = SignedEnvelope.Create(PayloadTypes.KeySet, keySet.ToPayloadBytes(), [Root]).ToJsonBytes();
    }

    /// <summary>Writes the root public key where the server looks by default.</summary>
    public Task WriteRootAsync(string dataDirectory)
    {
        Directory.CreateDirectory(Path.Combine(dataDirectory, "trusted-roots"));
        return PublicKeyFile.WriteAsync(Path.Combine(dataDirectory, "trusted-roots", "root.pub"), Root.PublicKey);
    }

    /// <summary>A manifest envelope for <paramref name="image"/>; <paramref name="signer"/> null means unsigned.</summary>
    public byte[] Sign(TestImage image, bool signed = true, string? imageSha256 = null, long? imageSize = null, SigningKey? signer = null)
    {
        var manifest = new ReleaseManifest
        {
            Name = image.Name,
            Version = SemanticVersion.Parse(image.Version),
            TargetKind = TargetKind.App,
            Target = "app",
            ImageSha256 = imageSha256 ?? image.Sha256,
            ImageSize = imageSize ?? image.Size,
            Hardware = ["sim-board"],
            Architectures = ["x64"],
            Created = Now.AddMinutes(-5),
            Expires = Now.AddDays(30),
            AllowDowngrade = false,
        };
        return SignedEnvelope.Create(PayloadTypes.ReleaseManifest, manifest.ToPayloadBytes(), signed ? [signer ?? Release] : []).ToJsonBytes();
    }

    public void Dispose()
    {
        Root.Dispose();
        Release.Dispose();
    }
}
