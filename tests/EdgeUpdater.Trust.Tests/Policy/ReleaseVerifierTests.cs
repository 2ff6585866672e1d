using System.Text;
using EdgeUpdater.Trust.Envelopes;
using EdgeUpdater.Trust.Keys;
using EdgeUpdater.Trust.KeySets;
using EdgeUpdater.Trust.Manifests;
using EdgeUpdater.Trust.Policy;
using EdgeUpdater.Trust.Versioning;
using Xunit;

namespace EdgeUpdater.Trust.Tests.Policy;

public sealed class ReleaseVerifierTests : IDisposable
{
    private readonly TrustScenario _s = new();

    public void Dispose() => _s.Dispose();

    private static TrustException Refused(byte[] envelope, TrustContext context, TrustFailure expected)
    {
        var e = Assert.Throws<TrustException>(() => ReleaseVerifier.Verify(envelope, context));
        Assert.True(expected == e.Failure, $"expected {expected}, got {e.Failure}: {e.Message}");
        return e;
    }

    [Fact]
    public void Valid_manifest_is_accepted_with_its_signer_and_address()
    {
        var envelope = _s.ManifestEnvelope();

        var verified = ReleaseVerifier.Verify(envelope, _s.Context());

        Assert.Equal("sensor-app", verified.Manifest.Name);
        Assert.Equal(SemanticVersion.Parse("2.0.0"), verified.Manifest.Version);
        Assert.Equal([_s.Release.KeyId], verified.SignerKeyIds);
        Assert.Equal(1, verified.KeySet.Version);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(envelope)), verified.EnvelopeSha256);
    }

    [Fact]
    public void Server_context_without_device_or_installed_release_checks_signatures_and_expiry_only()
    {
        var context = _s.Context();
        var server = new TrustContext { PinnedRoots = context.PinnedRoots, KeySetChain = context.KeySetChain, Now = context.Now };
        var manifest = TrustScenario.Manifest("0.1.0") with { Hardware = ["other-board"] };

        Assert.Equal("0.1.0", ReleaseVerifier.Verify(_s.ManifestEnvelope(manifest), server).Manifest.Version.Text);
        Refused(_s.ManifestEnvelope(manifest with { Expires = TrustScenario.Now.AddSeconds(-1), Created = TrustScenario.Now.AddDays(-2) }), server, TrustFailure.ManifestExpired);
    }

    [Fact]
    public void Every_manifest_field_tampered_breaks_the_signature()
    {
        var envelope = _s.ManifestEnvelope();
        var cases = TrustScenario.EveryFieldTampered(TrustScenario.PayloadOf(envelope)).ToList();
        Assert.True(cases.Count >= 16, $"only {cases.Count} tamperings generated");
        foreach (var (label, payload) in cases)
        {
            var e = Assert.Throws<TrustException>(() => ReleaseVerifier.Verify(TrustScenario.WithPayload(envelope, payload), _s.Context()));
            Assert.True(e.Failure == TrustFailure.BadSignature, $"{label}: expected BadSignature, got {e.Failure}: {e.Message}");
        }
    }

    [Fact]
    public void Every_manifest_field_is_covered_by_the_tampering()
    {
        var labels = TrustScenario.EveryFieldTampered(TrustScenario.PayloadOf(_s.ManifestEnvelope(TrustScenario.Manifest() with { Target = "slot-app" }))).Select(c => c.Label).ToHashSet();
        string[] fields = ["schema", "name", "version", "targetKind", "target", "imageSha256", "imageSize", "hardware", "architectures", "created", "expires", "minAgentVersion", "allowDowngrade"];
        foreach (var field in fields)
        {
            Assert.Contains("/" + field, labels);
        }
    }

    [Fact]
    public void Changed_payload_type_is_refused()
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(_s.ManifestEnvelope())!;
        node["payloadType"] = PayloadTypes.KeySet;
        Refused(Encoding.UTF8.GetBytes(node.ToJsonString()), _s.Context(), TrustFailure.WrongPayloadType);
    }

    [Fact]
    public void Key_set_envelope_offered_as_manifest_is_refused()
        => Refused(_s.KeySetEnvelope(), _s.Context(), TrustFailure.WrongPayloadType);

    [Fact]
    public void Corrupt_signature_bytes_are_a_bad_signature()
    {
        var envelope = SignedEnvelope.Parse(_s.ManifestEnvelope());
        var sig = envelope.Signatures[0].Signature.ToArray();
        sig[10] ^= 0x01;
        var node = System.Text.Json.Nodes.JsonNode.Parse(_s.ManifestEnvelope())!;
        node["signatures"]![0]!["sig"] = Convert.ToBase64String(sig);
        Refused(Encoding.UTF8.GetBytes(node.ToJsonString()), _s.Context(), TrustFailure.BadSignature);
    }

    [Fact]
    public void Envelope_without_signatures_is_missing_a_signature()
    {
        var unsigned = SignedEnvelope.Create(PayloadTypes.ReleaseManifest, TrustScenario.Manifest().ToPayloadBytes(), []).ToJsonBytes();
        Refused(unsigned, _s.Context(), TrustFailure.MissingSignature);
    }

    [Fact]
    public void Signature_by_a_key_outside_the_key_set_is_an_unknown_key()
    {
        using var stranger = SigningKey.Generate();
        Refused(TrustScenario.Sign(TrustScenario.Manifest(), stranger), _s.Context(), TrustFailure.UnknownKey);
    }

    [Fact]
    public void Root_key_cannot_sign_a_manifest()
    {
        var e = Refused(TrustScenario.Sign(TrustScenario.Manifest(), _s.Root), _s.Context(), TrustFailure.UnknownKey);
        Assert.Contains(_s.Root.KeyId, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Expired_release_key_is_refused()
    {
        var keySet = _s.KeySet(keys: [KeySetEntry.For(_s.Root.PublicKey, KeyRole.Root), TrustScenario.ReleaseEntry(_s.Release, expires: TrustScenario.Now.AddSeconds(-1))]);
        Refused(_s.ManifestEnvelope(), _s.Context(TrustScenario.Sign(keySet, _s.Root)), TrustFailure.ExpiredKey);
    }

    [Fact]
    public void Revoked_release_key_stops_verifying_at_once_while_its_replacement_works()
    {
        using var replacement = SigningKey.Generate();
        var v1 = TrustScenario.Sign(_s.KeySet(), _s.Root);
        var v2 = TrustScenario.Sign(
            _s.KeySet(version: 2, keys: [KeySetEntry.For(_s.Root.PublicKey, KeyRole.Root), TrustScenario.ReleaseEntry(_s.Release, revoked: true), TrustScenario.ReleaseEntry(replacement)]),
            _s.Root);
        var signedByOld = _s.ManifestEnvelope();

        Assert.NotNull(ReleaseVerifier.Verify(signedByOld, _s.Context(v1)));
        var e = Refused(signedByOld, _s.Context(v1, v2), TrustFailure.RevokedKey);
        Assert.Contains(_s.Release.KeyId, e.Message, StringComparison.Ordinal);
        Assert.NotNull(ReleaseVerifier.Verify(TrustScenario.Sign(TrustScenario.Manifest(), replacement), _s.Context(v1, v2)));
    }

    [Fact]
    public void Release_threshold_counts_distinct_keys()
    {
        using var second = SigningKey.Generate();
        var keySet = TrustScenario.Sign(
            _s.KeySet(releaseThreshold: 2, keys: [KeySetEntry.For(_s.Root.PublicKey, KeyRole.Root), TrustScenario.ReleaseEntry(_s.Release), TrustScenario.ReleaseEntry(second)]),
            _s.Root);

        var one = _s.ManifestEnvelope();
        Refused(one, _s.Context(keySet), TrustFailure.ThresholdNotMet);

        // The same signature twice is still one key.
        var node = System.Text.Json.Nodes.JsonNode.Parse(one)!;
        var signatures = node["signatures"]!.AsArray();
        signatures.Add(System.Text.Json.Nodes.JsonNode.Parse(signatures[0]!.ToJsonString()));
        Refused(Encoding.UTF8.GetBytes(node.ToJsonString()), _s.Context(keySet), TrustFailure.ThresholdNotMet);

        var both = SignedEnvelope.Parse(one).AddSignature(second).ToJsonBytes();
        var verified = ReleaseVerifier.Verify(both, _s.Context(keySet));
        Assert.Equal(2, verified.SignerKeyIds.Count);
    }

    [Fact]
    public void Expired_manifest_is_refused()
        => Refused(_s.ManifestEnvelope(TrustScenario.Manifest() with { Expires = TrustScenario.Now }), _s.Context(), TrustFailure.ManifestExpired);

    [Fact]
    public void Other_hardware_is_refused()
        => Refused(_s.ManifestEnvelope(TrustScenario.Manifest() with { Hardware = ["imx8"] }), _s.Context(), TrustFailure.HardwareMismatch);

    [Fact]
    public void Other_architecture_is_refused()
        => Refused(_s.ManifestEnvelope(TrustScenario.Manifest() with { Architectures = ["x64", "arm"] }), _s.Context(), TrustFailure.ArchitectureMismatch);

    [Fact]
    public void Agent_older_than_the_minimum_is_refused()
        => Refused(_s.ManifestEnvelope(TrustScenario.Manifest() with { MinAgentVersion = SemanticVersion.Parse("1.3.0-rc.1") }), _s.Context(), TrustFailure.AgentTooOld);

    [Theory]
    [InlineData("1.5.0")]
    [InlineData("1.4.9")]
    [InlineData("1.5.0-rc.1")]
    [InlineData("1.5.0+other-build")]
    public void Version_not_newer_is_refused_without_allow_downgrade(string version)
        => Refused(_s.ManifestEnvelope(TrustScenario.Manifest(version)), _s.Context(), TrustFailure.NotNewer);

    [Fact]
    public void Downgrade_is_accepted_when_the_manifest_allows_it()
    {
        var verified = ReleaseVerifier.Verify(_s.ManifestEnvelope(TrustScenario.Manifest("1.4.0") with { AllowDowngrade = true }), _s.Context());
        Assert.True(verified.Manifest.AllowDowngrade);
    }

    [Fact]
    public void Manifest_older_than_the_installed_one_is_a_replay_even_when_newer_or_allowing_downgrade()
    {
        var old = TrustScenario.Manifest("3.0.0") with { Created = TrustScenario.Now.AddDays(-21), AllowDowngrade = true };
        Refused(_s.ManifestEnvelope(old), _s.Context(), TrustFailure.Replay);
    }

    [Fact]
    public void First_install_has_no_version_or_replay_check()
    {
        var context = _s.Context();
        var first = new TrustContext { PinnedRoots = context.PinnedRoots, KeySetChain = context.KeySetChain, Now = context.Now, Device = context.Device };
        Assert.NotNull(ReleaseVerifier.Verify(_s.ManifestEnvelope(TrustScenario.Manifest("0.0.1")), first));
    }

    [Fact]
    public void Unknown_manifest_schema_is_reported_as_such_after_the_signature_checks()
    {
        var payload = Encoding.UTF8.GetBytes("{\"schema\":2,\"name\":\"future\"}");
        var envelope = SignedEnvelope.Create(PayloadTypes.ReleaseManifest, payload, [_s.Release]).ToJsonBytes();
        Refused(envelope, _s.Context(), TrustFailure.UnknownSchema);
    }

    [Theory]
    [InlineData("{\"schema\":1}")]
    [InlineData("[1,2]")]
    [InlineData("{\"schema\":\"1\"}")]
    [InlineData("not json")]
    public void Signed_but_malformed_manifest_payload_is_malformed(string payload)
    {
        var envelope = SignedEnvelope.Create(PayloadTypes.ReleaseManifest, Encoding.UTF8.GetBytes(payload), [_s.Release]).ToJsonBytes();
        Refused(envelope, _s.Context(), TrustFailure.Malformed);
    }

    [Theory]
    [InlineData("")]
    [InlineData("{}")]
    [InlineData("{\"payloadType\":\"x\",\"payload\":\"AA==\"}")]
    [InlineData("{\"payloadType\":\"x\",\"payload\":\"not base64\",\"signatures\":[]}")]
    [InlineData("{\"payloadType\":\"x\",\"payload\":\"AA==\",\"signatures\":[{\"keyId\":\"abc\",\"sig\":\"AA==\"}]}")]
    [InlineData("{\"payloadType\":\"x\",\"payloadType\":\"y\",\"payload\":\"AA==\",\"signatures\":[]}")]
    [InlineData("{\"payloadType\":\"has space\",\"payload\":\"AA==\",\"signatures\":[]}")]
    public void Malformed_envelope_is_malformed(string json)
        => Refused(Encoding.UTF8.GetBytes(json), _s.Context(), TrustFailure.Malformed);

    [Fact]
    public void Key_set_failures_surface_through_the_manifest_verification()
    {
        using var stranger = SigningKey.Generate();
        Refused(_s.ManifestEnvelope(), _s.Context(TrustScenario.Sign(_s.KeySet(), stranger)), TrustFailure.KeySetNotChained);
        Refused(_s.ManifestEnvelope(), _s.Context(TrustScenario.Sign(_s.KeySet(expires: TrustScenario.Now), _s.Root)), TrustFailure.KeySetExpired);
        var context = _s.Context();
        Refused(
            _s.ManifestEnvelope(),
            new TrustContext { PinnedRoots = context.PinnedRoots, KeySetChain = context.KeySetChain, Now = context.Now, MinimumKeySetVersion = 2 },
            TrustFailure.KeySetRollback);
    }
}
