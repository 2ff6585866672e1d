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
    DateTimeOffset? ExpiresAt)
{
    /// <summary>Device target name the manifest names; null means the image name.</summary>
    public string? Target { get; init; }

    /// <summary>Compatible CPU architectures.</summary>
    public IReadOnlyList<string> Architectures { get; init; } = [];
}

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
