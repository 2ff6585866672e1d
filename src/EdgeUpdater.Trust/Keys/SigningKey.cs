using System.Text;
using NSec.Cryptography;

namespace EdgeUpdater.Trust.Keys;

/// <summary>An Ed25519 private key that signs envelopes. Dispose it to wipe the key from memory.</summary>
public sealed class SigningKey : IDisposable
{
    /// <summary>Length of the raw private key (the RFC 8032 seed) in bytes.</summary>
    public const int RawSize = 32;

    private readonly Key _key;

    private SigningKey(Key key)
    {
        _key = key;
        PublicKey = VerificationKey.FromRawBytes(key.PublicKey.Export(KeyBlobFormat.RawPublicKey));
    }

    /// <summary>The public half.</summary>
    public VerificationKey PublicKey { get; }

    /// <summary>The key id of the public half.</summary>
    public string KeyId => PublicKey.KeyId;

    /// <summary>Creates a new random key.</summary>
    public static SigningKey Generate()
        => new(Key.Create(SignatureAlgorithm.Ed25519, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport }));

    /// <summary>Imports the 32-byte RFC 8032 private key (seed).</summary>
    public static SigningKey FromRawBytes(ReadOnlySpan<byte> seed)
    {
        if (seed.Length != RawSize)
        {
            throw new TrustException(TrustFailure.Malformed, $"an Ed25519 private key has {RawSize} bytes, found {seed.Length}");
        }

        return new(Key.Import(SignatureAlgorithm.Ed25519, seed, KeyBlobFormat.RawPrivateKey, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport }));
    }

    /// <summary>Imports a PEM <c>-----BEGIN PRIVATE KEY-----</c> (unencrypted PKCS#8, as <c>openssl genpkey -algorithm ed25519</c> writes).</summary>
    public static SigningKey FromPkcs8Pem(string pem)
    {
        ArgumentNullException.ThrowIfNull(pem);
        var parameters = new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport };
        if (!Key.TryImport(SignatureAlgorithm.Ed25519, Encoding.ASCII.GetBytes(pem.Trim() + "\n"), KeyBlobFormat.PkixPrivateKeyText, out var key, in parameters) || key is null)
        {
            throw new TrustException(TrustFailure.Malformed, "not a PEM PRIVATE KEY block (unencrypted PKCS#8) holding an Ed25519 key");
        }

        return new(key);
    }

    /// <summary>Signs exactly <paramref name="data"/> (pure Ed25519, RFC 8032), giving 64 bytes.</summary>
    public byte[] Sign(ReadOnlySpan<byte> data) => SignatureAlgorithm.Ed25519.Sign(_key, data);

    /// <summary>The 32-byte seed, for writing a key file. The caller wipes it.</summary>
    internal byte[] ExportRawBytes() => _key.Export(KeyBlobFormat.RawPrivateKey);

    /// <summary>The unencrypted PKCS#8 PEM, readable by openssl.</summary>
    public string ToPkcs8Pem() => Encoding.ASCII.GetString(_key.Export(KeyBlobFormat.PkixPrivateKeyText));

    /// <inheritdoc />
    public void Dispose() => _key.Dispose();
}
