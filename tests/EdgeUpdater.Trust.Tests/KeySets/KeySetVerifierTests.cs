using EdgeUpdater.Trust.Envelopes;
using EdgeUpdater.Trust.Keys;
using EdgeUpdater.Trust.KeySets;
using Xunit;

namespace EdgeUpdater.Trust.Tests.KeySets;

public sealed class KeySetVerifierTests : IDisposable
{
    private static readonly DateTimeOffset Now = TrustScenario.Now;
    private readonly TrustScenario _s = new();
    private readonly List<SigningKey> _keys = [];

    public void Dispose()
    {
        _s.Dispose();
        foreach (var key in _keys)
        {
            key.Dispose();
        }
    }

    private SigningKey NewKey()
    {
        var key = SigningKey.Generate();
        _keys.Add(key);
        return key;
    }

    private KeySet Generation(long version, IEnumerable<SigningKey> roots, int rootThreshold = 1)
        => _s.KeySet(version, [.. roots.Select(r => KeySetEntry.For(r.PublicKey, KeyRole.Root)), TrustScenario.ReleaseEntry(_s.Release)], rootThreshold);

    private static TrustException Refused(Func<object> action, TrustFailure expected)
    {
        var e = Assert.Throws<TrustException>(action);
        Assert.True(expected == e.Failure, $"expected {expected}, got {e.Failure}: {e.Message}");
        return e;
    }

    private static ReadOnlyMemory<byte>[] Chain(params byte[][] envelopes) => [.. envelopes.Select(e => (ReadOnlyMemory<byte>)e)];

    [Fact]
    public void Root_rotation_chain_of_three_generations_verifies_from_the_pinned_root()
    {
        var root1 = _s.Root;
        var root2 = NewKey();
        var root3a = NewKey();
        var root3b = NewKey();
        var v1 = TrustScenario.Sign(Generation(1, [root1]), root1);
        var v2 = TrustScenario.Sign(Generation(2, [root2]), root1, root2);
        var v3 = TrustScenario.Sign(Generation(3, [root3a, root3b], rootThreshold: 2), root2, root3a, root3b);

        var verified = KeySetVerifier.VerifyChain(_s.PinnedRoots, Chain(v1, v2, v3), Now);

        Assert.Equal(3, verified.Version);
        Assert.Equal(2, verified.Roots.Threshold);
        Assert.Equal([root3a.KeyId, root3b.KeyId], verified.Roots.Keys.Select(k => k.KeyId));
        Assert.Equal(v3, verified.Envelope.ToArray());

        // A device that adopted the v3 roots verifies v3 on its own (it carries its own roots' signatures).
        Assert.Equal(3, KeySetVerifier.VerifyChain(verified.Roots, Chain(v3), Now, minimumVersion: 3).Version);

        // Skipping the middle generation breaks the chain: v3 is not signed by root1.
        Refused(() => KeySetVerifier.VerifyChain(_s.PinnedRoots, Chain(v1, v3), Now), TrustFailure.KeySetNotChained);
    }

    [Fact]
    public void Intermediate_key_sets_may_have_expired_but_the_newest_may_not()
    {
        var root2 = NewKey();
        var v1 = TrustScenario.Sign(_s.KeySet(expires: Now.AddDays(-1)), _s.Root);
        var v2 = TrustScenario.Sign(Generation(2, [root2]), _s.Root, root2);

        Assert.Equal(2, KeySetVerifier.VerifyChain(_s.PinnedRoots, Chain(v1, v2), Now).Version);
        var e = Refused(() => KeySetVerifier.VerifyChain(_s.PinnedRoots, Chain(v1), Now), TrustFailure.KeySetExpired);
        Assert.Contains("v1", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void New_root_set_not_signed_by_the_current_root_is_not_chained()
    {
        var root2 = NewKey();
        var v1 = TrustScenario.Sign(Generation(1, [_s.Root]), _s.Root);
        var v2 = TrustScenario.Sign(Generation(2, [root2]), root2);
        Refused(() => KeySetVerifier.VerifyChain(_s.PinnedRoots, Chain(v1, v2), Now), TrustFailure.KeySetNotChained);
    }

    [Fact]
    public void New_root_must_prove_possession()
    {
        var root2 = NewKey();
        var v1 = TrustScenario.Sign(Generation(1, [_s.Root]), _s.Root);
        var v2 = TrustScenario.Sign(Generation(2, [root2]), _s.Root);
        Refused(() => KeySetVerifier.VerifyChain(_s.PinnedRoots, Chain(v1, v2), Now), TrustFailure.MissingSignature);

        // Adding a second root with threshold 1: the new root must still sign.
        var v2b = TrustScenario.Sign(Generation(2, [_s.Root, root2]), _s.Root);
        var e = Refused(() => KeySetVerifier.VerifyChain(_s.PinnedRoots, Chain(v1, v2b), Now), TrustFailure.MissingSignature);
        Assert.Contains(root2.KeyId, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Root_threshold_of_the_previous_set_must_be_met()
    {
        var a = NewKey();
        var b = NewKey();
        var c = NewKey();
        var pinned = new TrustRoot([a.PublicKey, b.PublicKey, c.PublicKey], threshold: 2);
        var keySet = Generation(1, [a, b, c], rootThreshold: 2);

        Refused(() => KeySetVerifier.VerifyChain(pinned, Chain(TrustScenario.Sign(keySet, a)), Now), TrustFailure.ThresholdNotMet);
        Assert.Equal(1, KeySetVerifier.VerifyChain(pinned, Chain(TrustScenario.Sign(keySet, a, c)), Now).Version);
    }

    [Fact]
    public void Key_set_versions_must_grow_along_the_chain_and_past_the_accepted_one()
    {
        var v1 = TrustScenario.Sign(_s.KeySet(version: 5), _s.Root);
        var again = TrustScenario.Sign(_s.KeySet(version: 5), _s.Root);
        var older = TrustScenario.Sign(_s.KeySet(version: 4), _s.Root);

        Refused(() => KeySetVerifier.VerifyChain(_s.PinnedRoots, Chain(v1, again), Now), TrustFailure.KeySetRollback);
        Refused(() => KeySetVerifier.VerifyChain(_s.PinnedRoots, Chain(v1, older), Now), TrustFailure.KeySetRollback);
        Refused(() => KeySetVerifier.VerifyChain(_s.PinnedRoots, Chain(older), Now, minimumVersion: 5), TrustFailure.KeySetRollback);
        Assert.Equal(5, KeySetVerifier.VerifyChain(_s.PinnedRoots, Chain(v1), Now, minimumVersion: 5).Version);
    }

    [Fact]
    public void Empty_chain_is_not_chained()
        => Refused(() => KeySetVerifier.VerifyChain(_s.PinnedRoots, [], Now), TrustFailure.KeySetNotChained);

    [Fact]
    public void Key_set_signed_by_a_release_key_is_not_chained()
        => Refused(() => KeySetVerifier.VerifyChain(_s.PinnedRoots, Chain(TrustScenario.Sign(_s.KeySet(), _s.Release)), Now), TrustFailure.KeySetNotChained);

    [Fact]
    public void Manifest_envelope_offered_as_key_set_is_refused()
        => Refused(() => KeySetVerifier.VerifyChain(_s.PinnedRoots, Chain(_s.ManifestEnvelope()), Now), TrustFailure.WrongPayloadType);

    [Fact]
    public void Every_key_set_field_tampered_breaks_the_signature()
    {
        var release2 = NewKey();
        var keySet = _s.KeySet(keys: [KeySetEntry.For(_s.Root.PublicKey, KeyRole.Root), TrustScenario.ReleaseEntry(_s.Release), TrustScenario.ReleaseEntry(release2, revoked: true)]);
        var envelope = TrustScenario.Sign(keySet, _s.Root);
        var cases = TrustScenario.EveryFieldTampered(TrustScenario.PayloadOf(envelope)).ToList();
        var labels = cases.Select(c => c.Label).ToHashSet();
        foreach (var field in new[] { "/schema", "/version", "/created", "/expires", "/rootThreshold", "/releaseThreshold", "/keys", "/keys/1/keyId", "/keys/1/publicKey", "/keys/1/role", "/keys/1/expires", "/keys/2/revoked" })
        {
            Assert.Contains(field, labels);
        }

        foreach (var (label, payload) in cases)
        {
            var e = Assert.Throws<TrustException>(() => KeySetVerifier.VerifyChain(_s.PinnedRoots, Chain(TrustScenario.WithPayload(envelope, payload)), Now));
            Assert.True(e.Failure == TrustFailure.BadSignature, $"{label}: expected BadSignature, got {e.Failure}: {e.Message}");
        }
    }

    [Fact]
    public void Key_set_signature_cannot_be_replayed_as_a_manifest_signature()
    {
        // Same bytes, other payloadType: the pre-authentication encoding differs, so the signature does not carry over.
        var keySetEnvelope = SignedEnvelope.Parse(_s.KeySetEnvelope());
        var asManifest = PreAuthenticationEncoding.Encode(PayloadTypes.ReleaseManifest, keySetEnvelope.Payload.Span);
        Assert.True(_s.Root.PublicKey.Verify(keySetEnvelope.GetSignedBytes(), keySetEnvelope.Signatures[0].Signature.Span));
        Assert.False(_s.Root.PublicKey.Verify(asManifest, keySetEnvelope.Signatures[0].Signature.Span));
    }

    [Theory]
    [InlineData("version 0")]
    [InlineData("expires before created")]
    [InlineData("no root")]
    [InlineData("root threshold above roots")]
    [InlineData("release threshold 0")]
    [InlineData("duplicate key")]
    [InlineData("release key without expiry")]
    [InlineData("root key with expiry")]
    [InlineData("key id mismatch")]
    public void Key_set_rules_are_enforced_when_signing(string rule)
    {
        var root = KeySetEntry.For(_s.Root.PublicKey, KeyRole.Root);
        var release = TrustScenario.ReleaseEntry(_s.Release);
        var keySet = rule switch
        {
            "version 0" => _s.KeySet(version: 0),
            "expires before created" => _s.KeySet(expires: Now.AddDays(-11)),
            "no root" => _s.KeySet(keys: [release]),
            "root threshold above roots" => _s.KeySet(rootThreshold: 2),
            "release threshold 0" => _s.KeySet(releaseThreshold: 0),
            "duplicate key" => _s.KeySet(keys: [root, release, release]),
            "release key without expiry" => _s.KeySet(keys: [root, release with { Expires = null }]),
            "root key with expiry" => _s.KeySet(keys: [root with { Expires = Now.AddDays(1) }, release]),
            _ => _s.KeySet(keys: [root, release with { KeyId = root.KeyId }]),
        };
        Refused(() => keySet.ToPayloadBytes(), TrustFailure.Malformed);
    }

    [Fact]
    public void Key_set_round_trips_through_its_payload_bytes()
    {
        var keySet = _s.KeySet(keys: [KeySetEntry.For(_s.Root.PublicKey, KeyRole.Root), TrustScenario.ReleaseEntry(_s.Release, revoked: true)]);
        var parsed = KeySet.Parse(keySet.ToPayloadBytes());
        Assert.Equal(keySet.Version, parsed.Version);
        Assert.Equal(keySet.Expires, parsed.Expires);
        Assert.Equal(keySet.Keys, parsed.Keys);
        Assert.Contains("\"revoked\":true", System.Text.Encoding.UTF8.GetString(keySet.ToPayloadBytes()), StringComparison.Ordinal);
    }
}
