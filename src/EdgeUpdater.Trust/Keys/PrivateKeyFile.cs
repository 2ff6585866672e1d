using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using EdgeUpdater.Trust.Serialization;
using Microsoft.Win32.SafeHandles;
using NSec.Cryptography;

namespace EdgeUpdater.Trust.Keys;

/// <summary>
/// Private key files: JSON holding the Ed25519 seed, in the clear or encrypted under a passphrase
/// (Argon2id, then XChaCha20-Poly1305, both from NSec/libsodium). Files are created with mode 0600 and a
/// file that group or others can access is refused. Reading also accepts an unencrypted PKCS#8 PEM
/// (<c>openssl genpkey -algorithm ed25519</c>). Layout in docs/keys.md.
/// </summary>
public static class PrivateKeyFile
{
    /// <summary>The <c>type</c> field of a key file.</summary>
    public const string FileType = "edgeupdater-private-key";

    private const int FormatVersion = 1;
    private const string AlgorithmName = "ed25519";
    private const string KdfName = "argon2id";
    private const string CipherName = "xchacha20-poly1305";
    private const int SaltSize = 16;
    private const int MaxFileSize = 64 * 1024;
    private const long MaxMemoryKiB = 4L * 1024 * 1024;
    private const long MaxPasses = 16;

    private static readonly UnixFileMode GroupOrOther =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    /// <summary>The file contents for <paramref name="key"/>; encrypted when <paramref name="passphrase"/> is not null.</summary>
    public static byte[] Serialize(SigningKey key, KeyRole role, string? passphrase = null, PrivateKeyFileOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        options ??= new PrivateKeyFileOptions();
        if (passphrase is { Length: 0 })
        {
            throw new ArgumentException("an empty passphrase protects nothing; pass null for an unencrypted key file", nameof(passphrase));
        }

        var seed = key.ExportRawBytes();
        try
        {
            var document = new PrivateKeyFileDocument
            {
                Type = FileType,
                Version = FormatVersion,
                Algorithm = AlgorithmName,
                Role = role,
                KeyId = key.KeyId,
                PublicKey = key.PublicKey.RawBytes.ToArray(),
                Created = (options.Created ?? DateTimeOffset.UtcNow).ToUniversalTime(),
                PrivateKey = passphrase is null ? seed : null,
                Encrypted = passphrase is null ? null : Encrypt(seed, passphrase, key.PublicKey, options),
            };
            return TrustJson.Serialize(document, TrustJsonContext.Default.PrivateKeyFileDocument, indented: true);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(seed);
        }
    }

    /// <summary>Reads the key from file contents; <paramref name="source"/> names the file in messages.</summary>
    /// <exception cref="TrustException">
    /// <see cref="TrustFailure.PassphraseRequired"/>, <see cref="TrustFailure.WrongPassphrase"/> or <see cref="TrustFailure.Malformed"/>.
    /// </exception>
    public static SigningKey Deserialize(ReadOnlySpan<byte> contents, string? passphrase, string source = "private key file")
    {
        if (IsPem(contents))
        {
            return SigningKey.FromPkcs8Pem(Encoding.ASCII.GetString(contents));
        }

        var document = Parse(contents, source);
        var publicKey = VerificationKey.FromRawBytes(document.PublicKey);
        byte[] seed;
        if (document.Encrypted is { } encrypted)
        {
            if (passphrase is null)
            {
                throw new TrustException(TrustFailure.PassphraseRequired, $"{source} is protected by a passphrase; none was given");
            }

            seed = Decrypt(encrypted, passphrase, publicKey, source);
        }
        else
        {
            seed = document.PrivateKey!;
        }

        try
        {
            var key = SigningKey.FromRawBytes(seed);
            if (!key.PublicKey.Equals(publicKey))
            {
                key.Dispose();
                throw new TrustException(TrustFailure.Malformed, $"{source}: the private key does not belong to the public key {publicKey.KeyId} stored beside it");
            }

            return key;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(seed);
        }
    }

    /// <summary>What the file contents say about the key, without decrypting it.</summary>
    public static PrivateKeyFileInfo Inspect(ReadOnlySpan<byte> contents, string source = "private key file")
    {
        if (IsPem(contents))
        {
            using var key = SigningKey.FromPkcs8Pem(Encoding.ASCII.GetString(contents));
            return new PrivateKeyFileInfo(key.PublicKey, null, false, null);
        }

        var document = Parse(contents, source);
        return new PrivateKeyFileInfo(VerificationKey.FromRawBytes(document.PublicKey), document.Role, document.Encrypted is not null, document.Created);
    }

    /// <summary>True when <paramref name="contents"/> look like a private key file of either accepted kind.</summary>
    public static bool LooksLikePrivateKey(ReadOnlySpan<byte> contents)
        => IsPem(contents) || (contents.IndexOf("\"type\""u8) >= 0 && contents.IndexOf(Encoding.ASCII.GetBytes(FileType)) >= 0);

    /// <summary>
    /// Writes a new key file with mode 0600 from the moment it exists (never a wider mode in between).
    /// Refuses to overwrite an existing file.
    /// </summary>
    public static async Task WriteAsync(string path, SigningKey key, KeyRole role, string? passphrase = null, PrivateKeyFileOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        var contents = Serialize(key, role, passphrase, options);
        try
        {
            var stream = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                Share = FileShare.None,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
            await using (stream.ConfigureAwait(false))
            {
                await stream.WriteAsync(contents, cancellationToken).ConfigureAwait(false);
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(contents);
        }
    }

    /// <summary>Reads the key at <paramref name="path"/>, refusing a file that group or others can access.</summary>
    /// <exception cref="TrustException"><see cref="TrustFailure.InsecureKeyFile"/> among the others of <see cref="Deserialize"/>.</exception>
    public static async Task<SigningKey> ReadAsync(string path, string? passphrase = null, CancellationToken cancellationToken = default)
    {
        var contents = await ReadSecureAsync(path, cancellationToken).ConfigureAwait(false);
        try
        {
            return Deserialize(contents, passphrase, $"private key file '{path}'");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(contents);
        }
    }

    /// <summary>What the key file at <paramref name="path"/> says about itself (same permission rule as <see cref="ReadAsync"/>).</summary>
    public static async Task<PrivateKeyFileInfo> InspectAsync(string path, CancellationToken cancellationToken = default)
    {
        var contents = await ReadSecureAsync(path, cancellationToken).ConfigureAwait(false);
        try
        {
            return Inspect(contents, $"private key file '{path}'");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(contents);
        }
    }

    private static async Task<byte[]> ReadSecureAsync(string path, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(path);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, useAsync: true);
        await using (stream.ConfigureAwait(false))
        {
            // Checked on the open handle, so the file judged is the file read.
            CheckMode(stream.SafeFileHandle, path);
            if (stream.Length > MaxFileSize)
            {
                throw new TrustException(TrustFailure.Malformed, $"private key file '{path}' is {stream.Length} bytes; a key file is under {MaxFileSize}");
            }

            var contents = new byte[stream.Length];
            await stream.ReadExactlyAsync(contents, cancellationToken).ConfigureAwait(false);
            return contents;
        }
    }

    private static void CheckMode(SafeFileHandle handle, string path)
    {
        var mode = File.GetUnixFileMode(handle);
        if ((mode & GroupOrOther) != 0)
        {
            var octal = Convert.ToString((int)mode & 0x1FF, 8).PadLeft(4, '0');
            throw new TrustException(
                TrustFailure.InsecureKeyFile,
                $"private key file '{path}' has mode {octal}, so group or others can access it; a private key must be readable by its owner only. Fix it with: chmod 600 '{path}'");
        }
    }

    private static bool IsPem(ReadOnlySpan<byte> contents) => contents.TrimStart(" \t\r\n"u8).StartsWith("-----BEGIN PRIVATE KEY-----"u8);

    private static PrivateKeyFileDocument Parse(ReadOnlySpan<byte> contents, string source)
    {
        PrivateKeyFileDocument? document;
        try
        {
            document = JsonSerializer.Deserialize(contents, TrustJsonContext.Default.PrivateKeyFileDocument);
        }
        catch (JsonException e)
        {
            throw new TrustException(TrustFailure.Malformed, $"{source} is not an EdgeUpdater key file or a PEM PRIVATE KEY: {e.Message}", e);
        }

        if (document is null || document.Type != FileType || document.Version != FormatVersion || document.Algorithm != AlgorithmName)
        {
            throw new TrustException(TrustFailure.Malformed, $"{source}: expected type '{FileType}', version {FormatVersion}, algorithm '{AlgorithmName}'");
        }

        if ((document.PrivateKey is null) == (document.Encrypted is null))
        {
            throw new TrustException(TrustFailure.Malformed, $"{source} must hold exactly one of privateKey and encrypted");
        }

        if (document.PublicKey.Length != VerificationKey.RawSize || VerificationKey.ComputeKeyId(document.PublicKey) != document.KeyId)
        {
            throw new TrustException(TrustFailure.Malformed, $"{source}: keyId '{document.KeyId}' does not match its public key");
        }

        if (document.Encrypted is { } e2 && (e2.Kdf != KdfName || e2.Cipher != CipherName || e2.Parallelism != 1
            || e2.MemoryKiB < 8 || e2.MemoryKiB > MaxMemoryKiB || e2.Passes < 1 || e2.Passes > MaxPasses
            || e2.Salt.Length != SaltSize || e2.Nonce.Length != AeadAlgorithm.XChaCha20Poly1305.NonceSize
            || e2.Ciphertext.Length != SigningKey.RawSize + AeadAlgorithm.XChaCha20Poly1305.TagSize))
        {
            throw new TrustException(
                TrustFailure.Malformed,
                $"{source}: unsupported encryption (expected kdf '{KdfName}' with parallelism 1, 8..{MaxMemoryKiB} KiB, 1..{MaxPasses} passes, a {SaltSize}-byte salt; cipher '{CipherName}')");
        }

        return document;
    }

    private static byte[] AssociatedData(VerificationKey publicKey)
        => [.. Encoding.ASCII.GetBytes(FileType + " v1\0"), .. publicKey.RawBytes.Span];

    private static EncryptedPrivateKeyDocument Encrypt(byte[] seed, string passphrase, VerificationKey publicKey, PrivateKeyFileOptions options)
    {
        var salt = RandomNumberGenerator.GetBytes(SaltSize);
        var nonce = RandomNumberGenerator.GetBytes(AeadAlgorithm.XChaCha20Poly1305.NonceSize);
        using var key = DeriveKey(passphrase, salt, options.Argon2MemoryKiB, options.Argon2Passes);
        return new EncryptedPrivateKeyDocument
        {
            Kdf = KdfName,
            MemoryKiB = options.Argon2MemoryKiB,
            Passes = options.Argon2Passes,
            Parallelism = 1,
            Salt = salt,
            Cipher = CipherName,
            Nonce = nonce,
            Ciphertext = AeadAlgorithm.XChaCha20Poly1305.Encrypt(key, nonce, AssociatedData(publicKey), seed),
        };
    }

    private static byte[] Decrypt(EncryptedPrivateKeyDocument encrypted, string passphrase, VerificationKey publicKey, string source)
    {
        using var key = DeriveKey(passphrase, encrypted.Salt, encrypted.MemoryKiB, encrypted.Passes);
        var seed = new byte[SigningKey.RawSize];
        if (!AeadAlgorithm.XChaCha20Poly1305.Decrypt(key, encrypted.Nonce, AssociatedData(publicKey), encrypted.Ciphertext, seed))
        {
            throw new TrustException(TrustFailure.WrongPassphrase, $"the passphrase does not open {source} (or the file was altered)");
        }

        return seed;
    }

    private static Key DeriveKey(string passphrase, byte[] salt, long memoryKiB, long passes)
    {
        var parameters = new Argon2Parameters { DegreeOfParallelism = 1, MemorySize = memoryKiB, NumberOfPasses = passes };
        var password = Encoding.UTF8.GetBytes(passphrase);
        try
        {
            var creation = default(KeyCreationParameters);
            return PasswordBasedKeyDerivationAlgorithm.Argon2id(parameters)
                .DeriveKey(password, salt, AeadAlgorithm.XChaCha20Poly1305, in creation);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(password);
        }
    }
}
