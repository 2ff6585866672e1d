using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using EdgeUpdater.Testing;
using EdgeUpdater.Trust.Keys;
using EdgeUpdater.Trust.KeySets;
using EdgeUpdater.Trust.Policy;
using Xunit;

namespace EdgeUpdater.Trust.Tests.Envelopes;

/// <summary>
/// The format is not NSec-specific: Debian's openssl (an independent Ed25519 implementation) verifies our
/// signatures from the documented bytes alone, and signatures openssl makes verify here.
/// </summary>
public sealed class OpenSslInteropTests : IDisposable
{
    private readonly TrustScenario _s = new();
    private readonly TempDirectory _dir = new("trust-openssl");

    public void Dispose()
    {
        _s.Dispose();
        _dir.Dispose();
    }

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>The signed bytes, built from the envelope JSON with nothing but the documented rule.</summary>
    private static byte[] SignedBytesPerSpec(string payloadType, byte[] payload)
        => [.. Encoding.UTF8.GetBytes($"EUv1 {Encoding.UTF8.GetByteCount(payloadType)} {payloadType} {payload.Length} "), .. payload];

    [Fact]
    public async Task Openssl_verifies_every_signature_of_a_manifest_and_a_key_set()
    {
        foreach (var (envelope, signer) in new[] { (_s.ManifestEnvelope(), _s.Release), (_s.KeySetEnvelope(), _s.Root) })
        {
            using var json = JsonDocument.Parse(envelope);
            var payloadType = json.RootElement.GetProperty("payloadType").GetString()!;
            var payload = json.RootElement.GetProperty("payload").GetBytesFromBase64();
            var signature = json.RootElement.GetProperty("signatures")[0];
            Assert.Equal(signer.KeyId, signature.GetProperty("keyId").GetString());

            var pem = _dir.Combine("signer.pub");
            await PublicKeyFile.WriteAsync(pem, signer.PublicKey, Token);
            var data = _dir.Combine("signed.bin");
            await File.WriteAllBytesAsync(data, SignedBytesPerSpec(payloadType, payload), Token);
            var sig = _dir.Combine("sig.bin");
            await File.WriteAllBytesAsync(sig, signature.GetProperty("sig").GetBytesFromBase64(), Token);

            var ok = await ExternalTool.RunAsync("openssl", ["pkeyutl", "-verify", "-pubin", "-inkey", pem, "-rawin", "-in", data, "-sigfile", sig], cancellationToken: Token);
            Assert.True(ok.ExitCode == 0, ok.StandardOutput + ok.StandardError);
            Assert.Contains("Signature Verified Successfully", ok.StandardOutput, StringComparison.Ordinal);

            // One changed payload byte: openssl refuses too.
            var tampered = SignedBytesPerSpec(payloadType, payload);
            tampered[^1] ^= 1;
            await File.WriteAllBytesAsync(data, tampered, Token);
            var bad = await ExternalTool.RunAsync("openssl", ["pkeyutl", "-verify", "-pubin", "-inkey", pem, "-rawin", "-in", data, "-sigfile", sig], cancellationToken: Token);
            Assert.NotEqual(0, bad.ExitCode);
        }
    }

    [Fact]
    public async Task Key_id_is_reproducible_from_the_openssl_der_public_key()
    {
        var pem = _dir.Combine("release.pub");
        await PublicKeyFile.WriteAsync(pem, _s.Release.PublicKey, Token);
        var der = _dir.Combine("release.der");
        await ExternalTool.RunCheckedAsync("openssl", ["pkey", "-pubin", "-in", pem, "-outform", "DER", "-out", der], cancellationToken: Token);

        var spki = await File.ReadAllBytesAsync(der, Token);
        Assert.Equal(44, spki.Length);
        Assert.Equal(_s.Release.KeyId, Convert.ToHexStringLower(SHA256.HashData(spki.AsSpan(12)))[..32]);
    }

    [Fact]
    public async Task Manifest_signed_by_openssl_is_accepted_by_the_verifier()
    {
        var key = _dir.Combine("openssl-release.pem");
        await ExternalTool.RunCheckedAsync("openssl", ["genpkey", "-algorithm", "ed25519", "-out", key], cancellationToken: Token);
        var pub = await ExternalTool.RunCheckedAsync("openssl", ["pkey", "-in", key, "-pubout"], cancellationToken: Token);
        var releaseKey = VerificationKey.FromPem(pub.StandardOutput);

        var keySet = TrustScenario.Sign(
            _s.KeySet(keys: [KeySetEntry.For(_s.Root.PublicKey, KeyRole.Root), KeySetEntry.For(releaseKey, KeyRole.Release, TrustScenario.Now.AddDays(10))]),
            _s.Root);
        var payload = TrustScenario.Manifest().ToPayloadBytes();
        const string type = "application/vnd.edgeupdater.release-manifest+json";
        var data = _dir.Combine("to-sign.bin");
        await File.WriteAllBytesAsync(data, SignedBytesPerSpec(type, payload), Token);
        var sig = _dir.Combine("openssl.sig");
        await ExternalTool.RunCheckedAsync("openssl", ["pkeyutl", "-sign", "-inkey", key, "-rawin", "-in", data, "-out", sig], cancellationToken: Token);

        var envelope = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["payloadType"] = type,
            ["payload"] = Convert.ToBase64String(payload),
            ["signatures"] = new[] { new Dictionary<string, string> { ["keyId"] = releaseKey.KeyId, ["sig"] = Convert.ToBase64String(await File.ReadAllBytesAsync(sig, Token)) } },
        });

        var verified = ReleaseVerifier.Verify(envelope, _s.Context(keySet));
        Assert.Equal([releaseKey.KeyId], verified.SignerKeyIds);
    }

    [Fact]
    public async Task Documented_shell_recipe_verifies_a_manifest_with_openssl()
    {
        var manifest = _dir.Combine("release.manifest");
        await File.WriteAllBytesAsync(manifest, _s.ManifestEnvelope(), Token);
        await PublicKeyFile.WriteAsync(_dir.Combine("release.pub"), _s.Release.PublicKey, Token);

        // Same recipe as docs/manifest-format.md ("Verifying with openssl").
        const string recipe = """
            set -eu
            jq -r .payloadType release.manifest | tr -d '\n' > type
            jq -r .payload release.manifest | base64 -d > payload
            printf 'EUv1 %d %s %d ' "$(wc -c < type)" "$(cat type)" "$(wc -c < payload)" > signed
            cat payload >> signed
            jq -r '.signatures[0].sig' release.manifest | base64 -d > sig
            openssl pkeyutl -verify -pubin -inkey release.pub -rawin -in signed -sigfile sig
            """;
        var result = await ExternalTool.RunAsync("bash", ["-c", recipe], workingDirectory: _dir.Path, cancellationToken: Token);
        Assert.True(result.ExitCode == 0, result.StandardOutput + result.StandardError);
        Assert.Contains("Signature Verified Successfully", result.StandardOutput, StringComparison.Ordinal);
    }
}
