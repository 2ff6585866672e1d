using EdgeUpdater.Protocol;
using EdgeUpdater.Server.Hosting;
using Microsoft.Net.Http.Headers;

namespace EdgeUpdater.Server.Content;

/// <summary>
/// Device-facing reads of manifests and images: public, content-addressed and immutable (strong ETag =
/// SHA-256, <c>Cache-Control: immutable</c>, HEAD, Range, If-None-Match), so any HTTP cache can hold them.
/// </summary>
internal static class ContentEndpoints
{
    public const string ImmutableCacheControl = "public, max-age=31536000, immutable";

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapMethods("/v1/manifests/{sha256}", [HttpMethods.Get, HttpMethods.Head], (string sha256, HttpContext context, ContentStore store) =>
            Serve(context, store, ContentKind.Manifest, sha256, "application/octet-stream"));
        app.MapMethods("/v1/images/{sha256}", [HttpMethods.Get, HttpMethods.Head], (string sha256, HttpContext context, ContentStore store) =>
            Serve(context, store, ContentKind.Image, sha256, "application/vnd.squashfs"));
    }

    /// <summary>A file result with range processing and a strong ETag.</summary>
    public static IResult ImmutableFile(HttpContext context, Stream stream, string sha256, string contentType, string cacheControl = ImmutableCacheControl)
    {
        context.Response.Headers.CacheControl = cacheControl;
        return Results.File(stream, contentType, entityTag: new EntityTagHeaderValue($"\"{sha256}\""), enableRangeProcessing: true);
    }

    private static IResult Serve(HttpContext context, ContentStore store, ContentKind kind, string sha256, string contentType)
    {
        if (!HttpRoutes.IsSha256(sha256))
        {
            return ApiResults.Error(StatusCodes.Status400BadRequest, "bad-hash", $"'{sha256}' is not a lowercase hex SHA-256");
        }

        var path = store.Find(kind, sha256);
        if (path is null)
        {
            return ApiResults.Error(StatusCodes.Status404NotFound, "not-found", $"no {kind.ToString().ToLowerInvariant()} with SHA-256 {sha256}");
        }

        return ImmutableFile(context, new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.Asynchronous), sha256, contentType);
    }
}
