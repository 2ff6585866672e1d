using System.Text;
using EdgeUpdater.Trust.Envelopes;
using EdgeUpdater.Trust.Keys;
using Xunit;

namespace EdgeUpdater.Trust.Tests.Envelopes;

public sealed class SignedEnvelopeTests
{
    [Fact]
    public void Pre_authentication_encoding_is_exactly_as_documented()
    {
        var encoded = PreAuthenticationEncoding.Encode("t/x", "hello"u8);
        Assert.Equal("EUv1 3 t/x 5 hello", Encoding.UTF8.GetString(encoded));
        Assert.Equal("EUv1 1 a 0 ", Encoding.UTF8.GetString(PreAuthenticationEncoding.Encode("a", [])));
    }

    [Fact]
    public void Envelope_round_trips_and_keeps_the_exact_payload_bytes()
    {
        using var a = SigningKey.Generate();
        using var b = SigningKey.Generate();
        byte[] payload = [0, 1, 2, 255, (byte)'{', (byte)' '];
        var envelope = SignedEnvelope.Create("application/x-test", payload, [a]).AddSignature(b);

        var parsed = SignedEnvelope.Parse(envelope.ToJsonBytes());

        Assert.Equal("application/x-test", parsed.PayloadType);
        Assert.Equal(payload, parsed.Payload.ToArray());
        Assert.Equal([a.KeyId, b.KeyId], parsed.Signatures.Select(s => s.KeyId));
        Assert.True(a.PublicKey.Verify(parsed.GetSignedBytes(), parsed.Signatures[0].Signature.Span));
        Assert.True(b.PublicKey.Verify(parsed.GetSignedBytes(), parsed.Signatures[1].Signature.Span));
        Assert.Throws<InvalidOperationException>(() => parsed.AddSignature(a));
    }

    [Fact]
    public void Json_is_written_without_needless_escapes()
    {
        using var key = SigningKey.Generate();
        var manifest = TrustScenario.Manifest("1.0.0+build.7");
        var envelope = Encoding.UTF8.GetString(SignedEnvelope.Create(PayloadTypes.ReleaseManifest, manifest.ToPayloadBytes(), [key]).ToJsonBytes());
        Assert.Contains("\"payloadType\": \"application/vnd.edgeupdater.release-manifest+json\"", envelope, StringComparison.Ordinal);
        Assert.Contains("\"version\":\"1.0.0+build.7\"", Encoding.UTF8.GetString(manifest.ToPayloadBytes()), StringComparison.Ordinal);
    }

    [Fact]
    public void Oversized_envelope_is_refused_before_parsing()
    {
        var e = Assert.Throws<TrustException>(() => SignedEnvelope.Parse(new byte[SignedEnvelope.MaxEnvelopeSize + 1]));
        Assert.Equal(TrustFailure.Malformed, e.Failure);
    }

    [Fact]
    public void Unknown_envelope_field_is_refused()
    {
        var json = "{\"payloadType\":\"a\",\"payload\":\"AA==\",\"signatures\":[],\"keyHint\":1}"u8.ToArray();
        Assert.Equal(TrustFailure.Malformed, Assert.Throws<TrustException>(() => SignedEnvelope.Parse(json)).Failure);
    }

    [Fact]
    public void Failure_names_are_kebab_case()
    {
        Assert.Equal("bad-signature", new TrustException(TrustFailure.BadSignature, "x").FailureName);
        Assert.Equal("key-set-not-chained", TrustFailureNames.ToKebabCase(TrustFailure.KeySetNotChained));
    }
}
