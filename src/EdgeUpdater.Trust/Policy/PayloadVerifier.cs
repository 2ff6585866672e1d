using System.Buffers;
using System.Security.Cryptography;
using EdgeUpdater.Trust.Manifests;

namespace EdgeUpdater.Trust.Policy;

/// <summary>SHA-256 and size of a payload.</summary>
/// <param name="Sha256">Lowercase hex SHA-256.</param>
/// <param name="Size">Size in bytes.</param>
public sealed record PayloadDigest(string Sha256, long Size);

/// <summary>Checks an image (stream or file) against the hash and size its manifest promises.</summary>
public static class PayloadVerifier
{
    private const int BufferSize = 1024 * 1024;

    /// <summary>Reads <paramref name="payload"/> to its end and checks it against <paramref name="manifest"/>.</summary>
    /// <exception cref="TrustException"><see cref="TrustFailure.PayloadSizeMismatch"/> or <see cref="TrustFailure.PayloadHashMismatch"/>.</exception>
    public static async Task VerifyAsync(Stream payload, ReleaseManifest manifest, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(payload);
        ArgumentNullException.ThrowIfNull(manifest);
        using var verifier = new IncrementalPayloadVerifier(manifest);
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            int read;
            while ((read = await payload.ReadAsync(buffer.AsMemory(0, BufferSize), cancellationToken).ConfigureAwait(false)) > 0)
            {
                verifier.Append(buffer.AsSpan(0, read));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        verifier.Complete();
    }

    /// <summary>Checks the file at <paramref name="path"/> against <paramref name="manifest"/>.</summary>
    public static async Task VerifyFileAsync(string path, ReleaseManifest manifest, CancellationToken cancellationToken = default)
    {
        var stream = OpenSequential(path);
        await using (stream.ConfigureAwait(false))
        {
            await VerifyAsync(stream, manifest, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Computes the SHA-256 and size of <paramref name="payload"/> (for signing).</summary>
    public static async Task<PayloadDigest> ComputeAsync(Stream payload, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(payload);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        long size = 0;
        try
        {
            int read;
            while ((read = await payload.ReadAsync(buffer.AsMemory(0, BufferSize), cancellationToken).ConfigureAwait(false)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                size += read;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return new PayloadDigest(Convert.ToHexStringLower(hash.GetHashAndReset()), size);
    }

    /// <summary>Computes the SHA-256 and size of the file at <paramref name="path"/>.</summary>
    public static async Task<PayloadDigest> ComputeFileAsync(string path, CancellationToken cancellationToken = default)
    {
        var stream = OpenSequential(path);
        await using (stream.ConfigureAwait(false))
        {
            return await ComputeAsync(stream, cancellationToken).ConfigureAwait(false);
        }
    }

    private static FileStream OpenSequential(string path)
        => new(path, new FileStreamOptions { Mode = FileMode.Open, Access = FileAccess.Read, Share = FileShare.Read, Options = FileOptions.SequentialScan | FileOptions.Asynchronous, BufferSize = 0 });
}
