using EdgeUpdater.Agent.Manifest;
using EdgeUpdater.Agent.Tests.Fixtures;
using EdgeUpdater.Testing;
using EdgeUpdater.Trust.Keys;
using Xunit;

namespace EdgeUpdater.Agent.Tests.Manifest;

/// <summary>The agent's use of the trust library: device facts in, precise refusals out, and the agent's own target checks.</summary>
public sealed class TrustReleaseVerifierTests : IDisposable
{
    private readonly TempDirectory _directory = new();
    private readonly ReleaseSigner _signer = new();
    private readonly string _image;
    private readonly TrustReleaseVerifier _verifier;

    public TrustReleaseVerifierTests()
    {
        _image = _directory.Combine("image.sqfs");
        File.WriteAllBytes(_image, [.. "hsqs"u8, 1, 2, 3]);
        var (root, keySet) = _signer.WriteTrustFiles(_directory.Combine("trust"));
        _verifier = TrustReleaseVerifier.Load([root], 1, [keySet], "0.1.0");
    }

    private static ReleaseVerificationContext Context(string? installed = "1.0.0", string kind = "app", string target = "app") => new()
    {
        Hardware = "test-board",
        Architecture = AgentIdentity.Architecture,
        TargetName = target,
        TargetKind = kind,
        InstalledVersion = installed,
        InstalledManifestCreatedAt = DateTimeOffset.UtcNow.AddDays(-1),
    };

    [Fact]
    public void Accepts_a_newer_release_and_returns_its_facts()
    {
        var manifest = _signer.Sign(_image, "1.1.0");
        var release = _verifier.Verify(manifest.Envelope, Context());
        Assert.Equal("1.1.0", release.Version);
        Assert.Equal(manifest.ImageSha256, release.ImageSha256);
        Assert.Equal(7, release.ImageSize);
        Assert.Equal(1, release.KeySetVersion);
    }

    [Fact]
    public void Refuses_a_key_the_key_set_does_not_list()
    {
        using var stranger = SigningKey.Generate();
        var manifest = _signer.Sign(_image, "1.1.0", signWith: stranger);
        Assert.Equal("unknown-key", Assert.Throws<ReleaseRejectedException>(() => _verifier.Verify(manifest.Envelope, Context())).Reason);
    }

    [Theory]
    [InlineData("0.9.0")]
    [InlineData("1.0.0")]
    public void Refuses_versions_that_do_not_move_forward(string version)
    {
        var manifest = _signer.Sign(_image, version);
        var e = Assert.Throws<ReleaseRejectedException>(() => _verifier.Verify(manifest.Envelope, Context()));
        Assert.Equal("not-newer", e.Reason);
    }

    [Fact]
    public void Accepts_a_downgrade_the_manifest_allows()
    {
        var manifest = _signer.Sign(_image, "0.9.0", allowDowngrade: true);
        Assert.Equal("0.9.0", _verifier.Verify(manifest.Envelope, Context()).Version);
    }

    [Fact]
    public void Refuses_other_hardware()
    {
        var manifest = _signer.Sign(_image, "2.0.0", hardware: "other-board");
        Assert.Equal("hardware-mismatch", Assert.Throws<ReleaseRejectedException>(() => _verifier.Verify(manifest.Envelope, Context())).Reason);
    }

    [Fact]
    public void Refuses_a_manifest_for_another_target_or_kind()
    {
        var forOther = _signer.Sign(_image, "2.0.0", target: "other");
        Assert.Equal("wrong-target", Assert.Throws<ReleaseRejectedException>(() => _verifier.Verify(forOther.Envelope, Context())).Reason);
        var system = _signer.Sign(_image, "2.0.0", kind: "system");
        Assert.Equal("wrong-target-kind", Assert.Throws<ReleaseRejectedException>(() => _verifier.Verify(system.Envelope, Context())).Reason);
    }

    [Fact]
    public void Accepts_the_first_install_with_nothing_installed()
    {
        var manifest = _signer.Sign(_image, "0.0.1");
        Assert.Equal("0.0.1", _verifier.Verify(manifest.Envelope, Context(installed: null)).Version);
    }

    public void Dispose()
    {
        _signer.Dispose();
        _directory.Dispose();
    }
}
