using System.Security.Cryptography;
using EdgeUpdater.Trust.Keys;
using Xunit;

namespace EdgeUpdater.Trust.Tests.Keys;

public sealed class VerificationKeyTests
{
    [Fact]
    public void Key_id_is_the_first_16_bytes_of_sha256_of_the_raw_key_in_hex()
    {
        using var key = SigningKey.Generate();
        var expected = Convert.ToHexStringLower(SHA256.HashData(key.PublicKey.RawBytes.Span))[..32];
        Assert.Equal(expected, key.KeyId);
    }

    [Fact]
    public void Pem_der_and_raw_forms_round_trip()
    {
        using var key = SigningKey.Generate();
        var pem = key.PublicKey.ToPem();
        Assert.StartsWith("-----BEGIN PUBLIC KEY-----", pem, StringComparison.Ordinal);
        Assert.Equal(key.PublicKey, VerificationKey.FromPem(pem));
        Assert.Equal(44, key.PublicKey.ToSubjectPublicKeyInfo().Length);
        Assert.Equal(key.PublicKey, VerificationKey.FromSubjectPublicKeyInfo(key.PublicKey.ToSubjectPublicKeyInfo()));
        Assert.Equal(key.PublicKey, VerificationKey.FromRawBytes(key.PublicKey.RawBytes.Span));
        Assert.Equal(key.PublicKey, PublicKeyFile.Parse(System.Text.Encoding.ASCII.GetBytes(pem)));
    }

    [Fact]
    public void Wrong_length_or_garbage_is_malformed()
    {
        Assert.Equal(TrustFailure.Malformed, Assert.Throws<TrustException>(() => VerificationKey.FromRawBytes(new byte[31])).Failure);
        Assert.Equal(TrustFailure.Malformed, Assert.Throws<TrustException>(() => VerificationKey.FromPem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")).Failure);
    }

    [Fact]
    public void Signature_of_other_length_does_not_verify()
    {
        using var key = SigningKey.Generate();
        var sig = key.Sign("x"u8);
        Assert.True(key.PublicKey.Verify("x"u8, sig));
        Assert.False(key.PublicKey.Verify("x"u8, sig.AsSpan(0, 63)));
        Assert.False(key.PublicKey.Verify("y"u8, sig));
    }
}
