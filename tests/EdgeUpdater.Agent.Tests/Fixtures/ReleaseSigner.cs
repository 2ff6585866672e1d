using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace EdgeUpdater.Agent.Tests.Fixtures;

/// <summary>A signed manifest: its envelope bytes and their SHA-256 (its address).</summary>
internal sealed record SignedManifest(byte[] Envelope, string Sha256, string ImageSha256, long ImageSize, string Version);

/// <summary>
/// Signs manifests in the interim verifier's format (ECDSA P-256) until EdgeUpdater.Trust lands;
/// then the tests switch to the trust library's signer and nothing else changes.
/// </summary>
internal sealed class ReleaseSigner : IDisposable
{
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public string PublicKeyBase64 => Convert.ToBase64String(_key.ExportSubjectPublicKeyInfo());

    public SignedManifest Sign(string imagePath, string version, string kind = "app", string hardware = "test-board", bool allowDowngrade = false, string name = "demo", ECDsa? signWith = null)
    {
        var bytes = File.ReadAllBytes(imagePath);
        var imageSha = Convert.ToHexStringLower(SHA256.HashData(bytes));
        var payload = new JsonObject
        {
            ["name"] = name,
            ["version"] = version,
            ["imageSha256"] = imageSha,
            ["imageSize"] = bytes.Length,
            ["kind"] = kind,
            ["hardware"] = new JsonArray(hardware),
            ["createdAt"] = DateTimeOffset.UtcNow.ToString("O"),
            ["expiresAt"] = DateTimeOffset.UtcNow.AddDays(30).ToString("O"),
            ["allowDowngrade"] = allowDowngrade,
        };
        var payloadBytes = System.Text.Encoding.UTF8.GetBytes(payload.ToJsonString());
        var signature = (signWith ?? _key).SignData(payloadBytes, HashAlgorithmName.SHA256);
        var envelope = new JsonObject
        {
            ["payload"] = Convert.ToBase64String(payloadBytes),
            ["signatures"] = new JsonArray(Convert.ToBase64String(signature)),
        };
        var envelopeBytes = System.Text.Encoding.UTF8.GetBytes(envelope.ToJsonString());
        return new SignedManifest(envelopeBytes, Convert.ToHexStringLower(SHA256.HashData(envelopeBytes)), imageSha, bytes.Length, version);
    }

    public void Dispose() => _key.Dispose();
}
