using System.Text;

namespace EdgeUpdater.Trust.Keys;

/// <summary>
/// Public key files: PEM SubjectPublicKeyInfo (<c>-----BEGIN PUBLIC KEY-----</c>), the format openssl
/// reads and writes. Reading also accepts the DER form.
/// </summary>
public static class PublicKeyFile
{
    /// <summary>Parses PEM or DER SubjectPublicKeyInfo bytes.</summary>
    public static VerificationKey Parse(ReadOnlySpan<byte> contents)
        => contents.TrimStart(" \t\r\n"u8).StartsWith("-----BEGIN"u8)
            ? VerificationKey.FromPem(Encoding.ASCII.GetString(contents))
            : VerificationKey.FromSubjectPublicKeyInfo(contents);

    /// <summary>Reads the public key file at <paramref name="path"/>.</summary>
    public static async Task<VerificationKey> ReadAsync(string path, CancellationToken cancellationToken = default)
    {
        var contents = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        try
        {
            return Parse(contents);
        }
        catch (TrustException e)
        {
            throw new TrustException(e.Failure, $"public key file '{path}': {e.Message}", e);
        }
    }

    /// <summary>Writes <paramref name="key"/> as PEM to <paramref name="path"/> (replacing an existing file).</summary>
    public static Task WriteAsync(string path, VerificationKey key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        return File.WriteAllTextAsync(path, key.ToPem(), Encoding.ASCII, cancellationToken);
    }
}
