namespace EdgeUpdater.Trust.Serialization;

/// <summary>Wire shape of a signed envelope.</summary>
internal sealed class EnvelopeDocument
{
    public required string PayloadType { get; init; }

    public required byte[] Payload { get; init; }

    public required List<EnvelopeSignatureDocument> Signatures { get; init; }
}

/// <summary>Wire shape of one envelope signature.</summary>
internal sealed class EnvelopeSignatureDocument
{
    public required string KeyId { get; init; }

    public required byte[] Sig { get; init; }
}

/// <summary>On-disk shape of a private key file (docs/keys.md).</summary>
internal sealed class PrivateKeyFileDocument
{
    public required string Type { get; init; }

    public required int Version { get; init; }

    public required string Algorithm { get; init; }

    public required Keys.KeyRole Role { get; init; }

    public required string KeyId { get; init; }

    public required byte[] PublicKey { get; init; }

    public DateTimeOffset? Created { get; init; }

    /// <summary>The 32-byte seed when the file is not encrypted.</summary>
    public byte[]? PrivateKey { get; init; }

    /// <summary>The encrypted seed when the file is passphrase-protected.</summary>
    public EncryptedPrivateKeyDocument? Encrypted { get; init; }
}

/// <summary>Passphrase encryption of a private key: Argon2id, then XChaCha20-Poly1305.</summary>
internal sealed class EncryptedPrivateKeyDocument
{
    public required string Kdf { get; init; }

    public required long MemoryKiB { get; init; }

    public required long Passes { get; init; }

    public required int Parallelism { get; init; }

    public required byte[] Salt { get; init; }

    public required string Cipher { get; init; }

    public required byte[] Nonce { get; init; }

    public required byte[] Ciphertext { get; init; }
}
