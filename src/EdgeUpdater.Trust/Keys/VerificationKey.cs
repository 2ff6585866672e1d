using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Serialization;
using EdgeUpdater.Trust.Serialization;
using NSec.Cryptography;

namespace EdgeUpdater.Trust.Keys;

/// <summary>
/// An Ed25519 public key with its key id. The key id is the lowercase hex of the first 16 bytes of the
/// SHA-256 of the 32 raw public-key bytes, so anyone can recompute it (docs/manifest-format.md).
/// </summary>
[JsonConverter(typeof(VerificationKeyJsonConverter))]
public sealed class VerificationKey : IEquatable<VerificationKey>
{
    /// <summary>Length of a raw Ed25519 public key in bytes.</summary>
    public const int RawSize = 32;

    /// <summary>Length of an Ed25519 signature in bytes.</summary>
    public const int SignatureSize = 64;

    /// <summary>Number of hex characters in a key id.</summary>
    public const int KeyIdLength = 32;

    private readonly byte[] _raw;
    private readonly PublicKey _key;

    private VerificationKey(byte[] raw, PublicKey key)
    {
        _raw = raw;
        _key = key;
        KeyId = ComputeKeyId(raw);
    }

    /// <summary>The key id: 32 lowercase hex characters.</summary>
    public string KeyId { get; }

    /// <summary>The 32 raw public-key bytes (RFC 8032 encoding).</summary>
    public ReadOnlyMemory<byte> RawBytes => _raw;

    /// <summary>Computes the key id of raw public-key bytes.</summary>
    public static string ComputeKeyId(ReadOnlySpan<byte> rawPublicKey)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(rawPublicKey, hash);
        return Convert.ToHexStringLower(hash[..(KeyIdLength / 2)]);
    }

    /// <summary>Imports 32 raw public-key bytes.</summary>
    /// <exception cref="TrustException"><see cref="TrustFailure.Malformed"/> when the bytes are not an Ed25519 public key.</exception>
    public static VerificationKey FromRawBytes(ReadOnlySpan<byte> raw)
    {
        if (raw.Length != RawSize)
        {
            throw new TrustException(TrustFailure.Malformed, $"an Ed25519 public key has {RawSize} bytes, found {raw.Length}");
        }

        if (!PublicKey.TryImport(SignatureAlgorithm.Ed25519, raw, KeyBlobFormat.RawPublicKey, out var key) || key is null)
        {
            throw new TrustException(TrustFailure.Malformed, "the 32 bytes are not a valid Ed25519 public key");
        }

        return new VerificationKey(raw.ToArray(), key);
    }

    /// <summary>Imports a DER-encoded SubjectPublicKeyInfo (RFC 8410, OID 1.3.101.112).</summary>
    public static VerificationKey FromSubjectPublicKeyInfo(ReadOnlySpan<byte> der)
    {
        if (!PublicKey.TryImport(SignatureAlgorithm.Ed25519, der, KeyBlobFormat.PkixPublicKey, out var key) || key is null)
        {
            throw new TrustException(TrustFailure.Malformed, "not a DER SubjectPublicKeyInfo holding an Ed25519 public key");
        }

        return new VerificationKey(key.Export(KeyBlobFormat.RawPublicKey), key);
    }

    /// <summary>Imports a PEM <c>-----BEGIN PUBLIC KEY-----</c> block (as written by openssl or <see cref="ToPem"/>).</summary>
    public static VerificationKey FromPem(string pem)
    {
        ArgumentNullException.ThrowIfNull(pem);
        if (!PublicKey.TryImport(SignatureAlgorithm.Ed25519, Encoding.ASCII.GetBytes(pem.Trim() + "\n"), KeyBlobFormat.PkixPublicKeyText, out var key) || key is null)
        {
            throw new TrustException(TrustFailure.Malformed, "not a PEM PUBLIC KEY block holding an Ed25519 public key");
        }

        return new VerificationKey(key.Export(KeyBlobFormat.RawPublicKey), key);
    }

    /// <summary>The DER SubjectPublicKeyInfo (44 bytes), readable by openssl.</summary>
    public byte[] ToSubjectPublicKeyInfo() => _key.Export(KeyBlobFormat.PkixPublicKey);

    /// <summary>The PEM <c>PUBLIC KEY</c> block, readable by openssl (<c>openssl pkey -pubin</c>).</summary>
    public string ToPem() => Encoding.ASCII.GetString(_key.Export(KeyBlobFormat.PkixPublicKeyText));

    /// <summary>Verifies an Ed25519 signature over exactly <paramref name="data"/>.</summary>
    public bool Verify(ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature)
        => signature.Length == SignatureSize && SignatureAlgorithm.Ed25519.Verify(_key, data, signature);

    /// <inheritdoc />
    public bool Equals(VerificationKey? other) => other is not null && _raw.AsSpan().SequenceEqual(other._raw);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is VerificationKey other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(KeyId);

    /// <summary>The key id.</summary>
    public override string ToString() => KeyId;
}
