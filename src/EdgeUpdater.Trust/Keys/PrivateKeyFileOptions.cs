namespace EdgeUpdater.Trust.Keys;

/// <summary>How a passphrase-protected private key file is written.</summary>
public sealed record PrivateKeyFileOptions
{
    /// <summary>Argon2id memory in KiB (default 65536 = 64 MiB, RFC 9106's second recommendation with one lane).</summary>
    public long Argon2MemoryKiB { get; init; } = 64 * 1024;

    /// <summary>Argon2id passes (default 3).</summary>
    public long Argon2Passes { get; init; } = 3;

    /// <summary>Recorded creation time; null means now.</summary>
    public DateTimeOffset? Created { get; init; }
}

/// <summary>What a private key file says about itself, readable without the passphrase.</summary>
/// <param name="PublicKey">The public half.</param>
/// <param name="Role">The role recorded at generation; null for a PKCS#8 PEM file, which records none.</param>
/// <param name="IsEncrypted">True when a passphrase is needed.</param>
/// <param name="Created">When the key was generated, when recorded.</param>
public sealed record PrivateKeyFileInfo(VerificationKey PublicKey, KeyRole? Role, bool IsEncrypted, DateTimeOffset? Created)
{
    /// <summary>The key id.</summary>
    public string KeyId => PublicKey.KeyId;
}
