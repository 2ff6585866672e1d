namespace EdgeUpdater.Server.Releases;

/// <summary>
/// Checks a signed manifest envelope against the server's trusted roots (signature, key chain, key
/// expiry and revocation, manifest expiry) and says what it names. The seam to the trust library.
/// </summary>
internal interface IReleaseVerifier
{
    /// <summary>Throws <see cref="ReleaseRejectedException"/> with a precise reason when the envelope is not acceptable.</summary>
    VerifiedManifest Verify(ReadOnlySpan<byte> envelope, DateTimeOffset now);
}

/// <summary>What a verified manifest promises about its image.</summary>
internal sealed record VerifiedManifest(
    string ImageSha256,
    long ImageSize,
    string Name,
    string Version,
    string? TargetKind,
    IReadOnlyList<string> Hardware,
    DateTimeOffset? ExpiresAt);

/// <summary>
/// Checks that an uploaded file is an EdgeUpdater image (SquashFS with <c>config.json</c> and
/// <c>root/</c>). The seam to the image library.
/// </summary>
internal interface IImageValidator
{
    /// <summary>Throws <see cref="ReleaseRejectedException"/> (<c>not-an-image</c>) when it is not.</summary>
    Task<ImageFacts> ValidateAsync(string imagePath, CancellationToken cancellationToken = default);
}

/// <summary>What the image's own <c>config.json</c> says; null where the validator cannot tell.</summary>
internal sealed record ImageFacts(string? Name, string? Version);

/// <summary>A publish the server refuses; <see cref="Reason"/> goes into the <c>{"reason": ...}</c> body.</summary>
internal sealed class ReleaseRejectedException : Exception
{
    public ReleaseRejectedException(string reason, string message, int statusCode = StatusCodes.Status422UnprocessableEntity)
        : base(message)
    {
        Reason = reason;
        StatusCode = statusCode;
    }

    public ReleaseRejectedException(string reason, string message, Exception innerException, int statusCode = StatusCodes.Status422UnprocessableEntity)
        : base(message, innerException)
    {
        Reason = reason;
        StatusCode = statusCode;
    }

    public ReleaseRejectedException()
    {
        Reason = "rejected";
        StatusCode = StatusCodes.Status422UnprocessableEntity;
    }

    public ReleaseRejectedException(string message, Exception innerException)
        : base(message, innerException)
    {
        Reason = "rejected";
        StatusCode = StatusCodes.Status422UnprocessableEntity;
    }

    public string Reason { get; }

    public int StatusCode { get; }
}

/// <summary>
/// Stand-in until the trust library is wired: refuses every publish with 503, so that nothing
/// unverified is ever accepted.
/// </summary>
internal sealed class UnavailableReleaseVerifier : IReleaseVerifier
{
    public VerifiedManifest Verify(ReadOnlySpan<byte> envelope, DateTimeOffset now) =>
        throw new ReleaseRejectedException(
            "trust-unavailable",
            "this server build cannot verify manifests yet (trust library not wired); nothing is accepted unverified",
            StatusCodes.Status503ServiceUnavailable);
}

/// <summary>
/// Stand-in until the image library is wired: checks the SquashFS 4.0 superblock (magic and version)
/// only. It cannot see config.json, so it reports no facts.
/// </summary>
internal sealed class SuperblockImageValidator : IImageValidator
{
    public async Task<ImageFacts> ValidateAsync(string imagePath, CancellationToken cancellationToken = default)
    {
        var header = new byte[96];
        await using var file = File.OpenRead(imagePath);
        var read = await file.ReadAtLeastAsync(header, header.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        if (read < header.Length)
        {
            throw new ReleaseRejectedException("not-an-image", $"the image is {read} bytes long; a SquashFS superblock alone takes 96");
        }

        var magic = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(header);
        var major = System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(28));
        if (magic != 0x73717368)
        {
            throw new ReleaseRejectedException("not-an-image", $"the image does not start with the SquashFS magic 'hsqs' (found 0x{magic:x8} at offset 0)");
        }

        if (major != 4)
        {
            throw new ReleaseRejectedException("not-an-image", $"the image is SquashFS {major}.x; EdgeUpdater images are SquashFS 4.0");
        }

        return new ImageFacts(null, null);
    }
}
