using EdgeUpdater.Protocol;
using EdgeUpdater.Server.Content;
using EdgeUpdater.Server.Deltas;
using EdgeUpdater.Server.Hosting;
using EdgeUpdater.Server.Storage;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace EdgeUpdater.Server.Releases;

/// <summary>
/// Publish: a multipart upload of a signed manifest (first part, <c>manifest</c>) and its image (second
/// part, <c>image</c>). The manifest is verified before a byte of the image is stored; the image is
/// streamed to a temp file and hashed, then checked against the manifest and validated as an image,
/// and only then are both committed and the release recorded. Any refusal leaves nothing behind.
/// </summary>
internal sealed class ReleaseService
{
    private readonly ContentStore _content;
    private readonly IFleetStore _store;
    private readonly IReleaseVerifier _verifier;
    private readonly IImageValidator _validator;
    private readonly ContentSettings _settings;
    private readonly TimeProvider _time;
    private readonly DeltaService _deltas;
    private readonly ILogger<ReleaseService> _logger;

    public ReleaseService(
        ContentStore content,
        IFleetStore store,
        IReleaseVerifier verifier,
        IImageValidator validator,
        ServerOptions options,
        TimeProvider time,
        DeltaService deltas,
        ILogger<ReleaseService> logger)
    {
        _deltas = deltas;
        _content = content;
        _store = store;
        _verifier = verifier;
        _validator = validator;
        _settings = options.Content;
        _time = time;
        _logger = logger;
    }

    /// <summary>Handles <c>POST /v1/releases</c>.</summary>
    public async Task<IResult> PublishAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var limit = request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>();
        if (limit is { IsReadOnly: false })
        {
            limit.MaxRequestBodySize = _settings.MaxImageBytes + _settings.MaxManifestBytes + (1 << 20);
        }

        try
        {
            var release = await ReceiveAsync(request, cancellationToken).ConfigureAwait(false);
            var created = await _store.AddReleaseAsync(release, cancellationToken).ConfigureAwait(false);
            if (!created)
            {
                release = await _store.GetReleaseAsync(release.ManifestSha256, cancellationToken).ConfigureAwait(false) ?? release;
                return Results.Json(release, OperatorJsonContext.Default.ReleaseInfo, statusCode: StatusCodes.Status200OK);
            }

            _logger.LogInformation("Published {Name} {Version}: manifest {Manifest}, image {Image} ({Size} bytes)", release.Name, release.Version, release.ManifestSha256, release.ImageSha256, release.ImageSize);
            _ = _deltas.PrepareTarget(release.ImageSha256);
            return Results.Json(release, OperatorJsonContext.Default.ReleaseInfo, statusCode: StatusCodes.Status201Created);
        }
        catch (ReleaseRejectedException e)
        {
            _logger.LogWarning("Publish refused ({Reason}): {Message}", e.Reason, e.Message);
            return ApiResults.Error(e.StatusCode, e.Reason, e.Message);
        }
    }

    private async Task<ReleaseInfo> ReceiveAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var contentType) || !contentType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase))
        {
            throw new ReleaseRejectedException("bad-request", $"expected multipart/form-data with parts 'manifest' and 'image', found content type '{request.ContentType}'", StatusCodes.Status400BadRequest);
        }

        var boundary = HeaderUtilities.RemoveQuotes(contentType.Boundary).Value;
        if (string.IsNullOrEmpty(boundary))
        {
            throw new ReleaseRejectedException("bad-request", "the multipart content type has no boundary", StatusCodes.Status400BadRequest);
        }

        var reader = new MultipartReader(boundary, request.Body) { BodyLengthLimit = _settings.MaxImageBytes + 1 };
        var manifestSection = await NextSectionAsync(reader, "manifest", cancellationToken).ConfigureAwait(false);
        using var manifest = await ReceivePartAsync(manifestSection, _settings.MaxManifestBytes, "manifest", cancellationToken).ConfigureAwait(false);
        var envelope = await File.ReadAllBytesAsync(manifest.TempPath, cancellationToken).ConfigureAwait(false);
        var verified = _verifier.Verify(envelope, _time.GetUtcNow());

        var imageSection = await NextSectionAsync(reader, "image", cancellationToken).ConfigureAwait(false);
        using var image = await ReceivePartAsync(imageSection, Math.Min(_settings.MaxImageBytes, verified.ImageSize), "image", cancellationToken, verified.ImageSize).ConfigureAwait(false);
        if (image.Size != verified.ImageSize)
        {
            throw new ReleaseRejectedException("size-mismatch", $"the manifest names an image of {verified.ImageSize} bytes; the upload has {image.Size}");
        }

        if (!string.Equals(image.Sha256, verified.ImageSha256, StringComparison.Ordinal))
        {
            throw new ReleaseRejectedException("hash-mismatch", $"the manifest names image SHA-256 {verified.ImageSha256}; the upload hashes to {image.Sha256}");
        }

        var facts = await _validator.ValidateAsync(image.TempPath, cancellationToken).ConfigureAwait(false);
        if (facts.Name is not null && facts.Name != verified.Name)
        {
            throw new ReleaseRejectedException("manifest-image-mismatch", $"the manifest names image '{verified.Name}'; the image's config.json says '{facts.Name}'");
        }

        if (facts.Version is not null && facts.Version != verified.Version)
        {
            throw new ReleaseRejectedException("manifest-image-mismatch", $"the manifest names version {verified.Version}; the image's config.json says {facts.Version}");
        }

        image.Commit(ContentKind.Image);
        manifest.Commit(ContentKind.Manifest);
        return new ReleaseInfo
        {
            ManifestSha256 = manifest.Sha256,
            ImageSha256 = image.Sha256,
            ImageSize = image.Size,
            Name = verified.Name,
            Version = verified.Version,
            TargetKind = verified.TargetKind,
            Hardware = verified.Hardware,
            Architectures = verified.Architectures,
            Target = verified.Target,
            ExpiresAt = verified.ExpiresAt,
            PublishedAt = _time.GetUtcNow(),
        };
    }

    private static async Task<MultipartSection> NextSectionAsync(MultipartReader reader, string expectedName, CancellationToken cancellationToken)
    {
        var section = await reader.ReadNextSectionAsync(cancellationToken).ConfigureAwait(false)
            ?? throw new ReleaseRejectedException("bad-request", $"the upload ended before the '{expectedName}' part (send 'manifest' first, then 'image')", StatusCodes.Status400BadRequest);
        if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition)
            || HeaderUtilities.RemoveQuotes(disposition.Name).Value != expectedName)
        {
            throw new ReleaseRejectedException("bad-request", $"expected the part named '{expectedName}' here (send 'manifest' first, then 'image'), found '{section.ContentDisposition}'", StatusCodes.Status400BadRequest);
        }

        return section;
    }

    private async Task<PendingContent> ReceivePartAsync(MultipartSection section, long maxBytes, string what, CancellationToken cancellationToken, long? declaredSize = null)
    {
        try
        {
            return await _content.ReceiveAsync(section.Body, maxBytes, cancellationToken).ConfigureAwait(false);
        }
        catch (ContentTooLargeException) when (declaredSize is not null && maxBytes == declaredSize)
        {
            throw new ReleaseRejectedException("size-mismatch", $"the manifest names an image of {declaredSize} bytes; the upload is longer");
        }
        catch (ContentTooLargeException e)
        {
            throw new ReleaseRejectedException("too-large", $"the {what} exceeds the server's limit of {e.Limit} bytes", StatusCodes.Status413PayloadTooLarge);
        }
    }
}
