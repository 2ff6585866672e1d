using System.Security.Cryptography;
using EdgeUpdater.Trust.Manifests;
using EdgeUpdater.Trust.Serialization;

namespace EdgeUpdater.Trust.Policy;

/// <summary>
/// Checks a payload as it streams past (download, delta apply): feed every byte to <see cref="Append"/>,
/// then call <see cref="Complete"/>. A payload longer than promised is refused as soon as it overruns.
/// </summary>
public sealed class IncrementalPayloadVerifier : IDisposable
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly string _expectedSha256;
    private readonly long _expectedSize;
    private bool _completed;

    /// <summary>Expects the image hash and size of <paramref name="manifest"/>.</summary>
    public IncrementalPayloadVerifier(ReleaseManifest manifest)
        : this((manifest ?? throw new ArgumentNullException(nameof(manifest))).ImageSha256, manifest.ImageSize)
    {
    }

    /// <summary>Expects <paramref name="expectedSha256"/> (64 lowercase hex) and <paramref name="expectedSize"/> bytes.</summary>
    public IncrementalPayloadVerifier(string expectedSha256, long expectedSize)
    {
        FieldRules.RequireSha256("expected SHA-256", expectedSha256);
        ArgumentOutOfRangeException.ThrowIfNegative(expectedSize);
        _expectedSha256 = expectedSha256;
        _expectedSize = expectedSize;
    }

    /// <summary>Bytes seen so far.</summary>
    public long BytesSeen { get; private set; }

    /// <summary>Adds the next bytes of the payload.</summary>
    /// <exception cref="TrustException"><see cref="TrustFailure.PayloadSizeMismatch"/> once more bytes than expected arrived.</exception>
    public void Append(ReadOnlySpan<byte> data)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        if (data.Length > _expectedSize - BytesSeen)
        {
            throw new TrustException(
                TrustFailure.PayloadSizeMismatch,
                $"payload is larger than the manifest's {_expectedSize} bytes (at least {BytesSeen + data.Length} bytes)");
        }

        _hash.AppendData(data);
        BytesSeen += data.Length;
    }

    /// <summary>Checks the size and the SHA-256 of everything appended.</summary>
    /// <exception cref="TrustException"><see cref="TrustFailure.PayloadSizeMismatch"/> or <see cref="TrustFailure.PayloadHashMismatch"/>.</exception>
    public void Complete()
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        _completed = true;
        if (BytesSeen != _expectedSize)
        {
            throw new TrustException(TrustFailure.PayloadSizeMismatch, $"payload has {BytesSeen} bytes; the manifest says {_expectedSize}");
        }

        var actual = Convert.ToHexStringLower(_hash.GetHashAndReset());
        if (!CryptographicOperations.FixedTimeEquals(System.Text.Encoding.ASCII.GetBytes(actual), System.Text.Encoding.ASCII.GetBytes(_expectedSha256)))
        {
            throw new TrustException(TrustFailure.PayloadHashMismatch, $"payload SHA-256 is {actual}; the manifest says {_expectedSha256}");
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _completed = true;
        _hash.Dispose();
    }
}
