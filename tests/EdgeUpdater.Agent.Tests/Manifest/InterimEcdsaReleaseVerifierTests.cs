using System.Security.Cryptography;
using EdgeUpdater.Agent.Manifest;
using EdgeUpdater.Agent.Tests.Fixtures;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Agent.Tests.Manifest;

public sealed class InterimEcdsaReleaseVerifierTests : IDisposable
{
    private readonly TempDirectory _directory = new();
    private readonly ReleaseSigner _signer = new();
    private readonly string _image;

    public InterimEcdsaReleaseVerifierTests()
    {
        _image = _directory.Combine("image.sqfs");
        File.WriteAllBytes(_image, [.. "hsqs"u8, 1, 2, 3]);
    }

    private static ReleaseVerificationContext Context(string? installed = "1.0.0", string hardware = "test-board") => new()
    {
        Hardware = hardware,
        Architecture = "x64",
        TargetKind = "app",
        InstalledVersion = installed,
    };

    [Fact]
    public void Accepts_a_newer_signed_release_and_returns_its_facts()
    {
        var manifest = _signer.Sign(_image, "1.1.0");
        var release = new InterimEcdsaReleaseVerifier([_signer.PublicKeyBase64]).Verify(manifest.Envelope, Context());
        Assert.Equal("1.1.0", release.Version);
        Assert.Equal(manifest.ImageSha256, release.ImageSha256);
        Assert.Equal(7, release.ImageSize);
    }

    [Fact]
    public void Refuses_a_signature_by_another_key()
    {
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var manifest = _signer.Sign(_image, "1.1.0", signWith: other);
        var e = Assert.Throws<ReleaseRejectedException>(() => new InterimEcdsaReleaseVerifier([_signer.PublicKeyBase64]).Verify(manifest.Envelope, Context()));
        Assert.Equal(ReleaseRejection.BadSignature, e.Reason);
    }

    [Theory]
    [InlineData("0.9.0")]
    [InlineData("1.0.0")]
    [InlineData("1.0.0-rc.1")]
    public void Refuses_versions_that_do_not_move_forward(string version)
    {
        var manifest = _signer.Sign(_image, version);
        var e = Assert.Throws<ReleaseRejectedException>(() => new InterimEcdsaReleaseVerifier([_signer.PublicKeyBase64]).Verify(manifest.Envelope, Context()));
        Assert.Equal(ReleaseRejection.NotNewer, e.Reason);
        Assert.Contains("not newer than installed 1.0.0", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Accepts_a_downgrade_the_manifest_allows()
    {
        var manifest = _signer.Sign(_image, "0.9.0", allowDowngrade: true);
        Assert.Equal("0.9.0", new InterimEcdsaReleaseVerifier([_signer.PublicKeyBase64]).Verify(manifest.Envelope, Context()).Version);
    }

    [Fact]
    public void Refuses_other_hardware()
    {
        var manifest = _signer.Sign(_image, "2.0.0", hardware: "other-board");
        var e = Assert.Throws<ReleaseRejectedException>(() => new InterimEcdsaReleaseVerifier([_signer.PublicKeyBase64]).Verify(manifest.Envelope, Context()));
        Assert.Equal(ReleaseRejection.HardwareMismatch, e.Reason);
    }

    [Fact]
    public void Refuses_a_tampered_payload()
    {
        var manifest = _signer.Sign(_image, "2.0.0");
        var text = System.Text.Encoding.UTF8.GetString(manifest.Envelope);
        var payload = System.Text.Json.Nodes.JsonNode.Parse(text)!["payload"]!.GetValue<string>();
        var tampered = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(payload)).Replace("2.0.0", "9.0.0", StringComparison.Ordinal)));
        var envelope = System.Text.Encoding.UTF8.GetBytes(text.Replace(payload, tampered, StringComparison.Ordinal));
        var e = Assert.Throws<ReleaseRejectedException>(() => new InterimEcdsaReleaseVerifier([_signer.PublicKeyBase64]).Verify(envelope, Context()));
        Assert.Equal(ReleaseRejection.BadSignature, e.Reason);
    }

    public void Dispose()
    {
        _signer.Dispose();
        _directory.Dispose();
    }
}
