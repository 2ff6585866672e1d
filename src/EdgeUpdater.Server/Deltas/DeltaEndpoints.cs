using EdgeUpdater.Protocol;
using EdgeUpdater.Server.Content;
using EdgeUpdater.Server.Hosting;
using Microsoft.Net.Http.Headers;

namespace EdgeUpdater.Server.Deltas;

/// <summary>
/// <c>GET|HEAD /v1/deltas/{from}/{to}?codecs=...&amp;format=N&amp;level=fast|best</c>. A cached delta is served like any
/// immutable content (ETag = its SHA-256, Range, If-Range). A delta being generated is streamed as it
/// grows, chunked, without ETag or length; if generation fails the connection is aborted so the client
/// sees a truncated body, never a complete-looking wrong one.
/// </summary>
internal static class DeltaEndpoints
{
    public const string ContentType = "application/vnd.edgeupdater.delta";
    public const string LevelHeader = "X-EdgeUpdater-Delta-Level";
    public const string Sha256Trailer = "X-EdgeUpdater-Delta-Sha256";

    /// <summary>Cache policy for a delta this URL may later replace with a better one.</summary>
    private const string ProvisionalCacheControl = "public, max-age=60";

    public static void Map(IEndpointRouteBuilder app) =>
        app.MapMethods("/v1/deltas/{from}/{to}", [HttpMethods.Get, HttpMethods.Head], HandleAsync);

    /// <summary>
    /// The delta format version to write for a <c>format</c> query value: the newest the device reads, capped at
    /// the newest this server writes; version 2 when the request names none (devices released before version
    /// 3 do not). False when malformed or older than any version the server writes.
    /// </summary>
    internal static bool TryParseFormat(string? text, out int format)
    {
        format = DeltaKey.UnnamedFormat;
        if (text is null)
        {
            return true;
        }

        if (text.Length is 0 or > 5 || !int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var newest)
            || newest < Delta.DeltaFormatVersions.OldestWritten)
        {
            return false;
        }

        format = Math.Min(newest, Delta.DeltaFormatVersions.Newest);
        return true;
    }

    /// <summary>
    /// Sorts and de-duplicates a <c>codecs</c> query value. <paramref name="codecs"/> null (no parameter)
    /// gives null: "not said", the server's own codecs. Present but empty gives "": the device has none.
    /// False when malformed.
    /// </summary>
    internal static bool TryNormalizeCodecs(string? codecs, out string? normalized)
    {
        normalized = null;
        if (codecs is null)
        {
            return true;
        }

        if (codecs.Length > 1024)
        {
            return false;
        }

        var items = codecs.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var item in items)
        {
            foreach (var c in item)
            {
                if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':' or '+' or '=' or '/'))
                {
                    return false;
                }
            }
        }

        normalized = string.Join(',', items.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal));
        return true;
    }

    private static async Task HandleAsync(HttpContext context, string from, string to, DeltaService deltas)
    {
        if (!HttpRoutes.IsSha256(from) || !HttpRoutes.IsSha256(to))
        {
            await ApiResults.Error(400, "bad-hash", "both path segments must be lowercase hex SHA-256 image hashes").ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        var levelText = context.Request.Query["level"].ToString();
        DeltaLevel? level = levelText switch
        {
            "fast" => DeltaLevel.Fast,
            "best" => DeltaLevel.Best,
            _ => null,
        };
        if (level is null && levelText.Length > 0)
        {
            await ApiResults.Error(400, "bad-level", $"level must be 'fast' or 'best', found '{levelText}'").ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        var codecsQuery = context.Request.Query.TryGetValue("codecs", out var codecsValues) ? codecsValues.ToString() : null;
        if (!TryNormalizeCodecs(codecsQuery, out var codecs))
        {
            await ApiResults.Error(400, "bad-codecs", "codecs must be a comma-separated list of codec identities").ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        var formatQuery = context.Request.Query.TryGetValue("format", out var formatValues) ? formatValues.ToString() : null;
        if (!TryParseFormat(formatQuery, out var format))
        {
            await ApiResults.Error(400, "bad-format", $"format must be the newest delta format version the device reads, a number of at least {Delta.DeltaFormatVersions.OldestWritten} (this server writes {Delta.DeltaFormatVersions.OldestWritten} to {Delta.DeltaFormatVersions.Newest}), found '{formatQuery}'").ExecuteAsync(context).ConfigureAwait(false);
            return;
        }

        var pinned = PinnedSha256(context.Request);
        for (var attempt = 0; ; attempt++)
        {
            switch (deltas.Lookup(from, to, codecs, format, level, pinned))
            {
                case DeltaLookup.Refused refused:
                    await ApiResults.Error(refused.StatusCode, refused.Reason, refused.Message).ExecuteAsync(context).ConfigureAwait(false);
                    return;

                case DeltaLookup.Cached cached:
                    FileStream stream;
                    try
                    {
                        stream = new FileStream(cached.Entry.Path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1, FileOptions.Asynchronous);
                    }
                    catch (FileNotFoundException) when (attempt == 0)
                    {
                        deltas.Forget(cached.Entry); // Evicted between lookup and open.
                        continue;
                    }

                    context.Response.Headers[LevelHeader] = cached.Entry.Key.LevelName;
                    var cacheControl = cached.Final ? ContentEndpoints.ImmutableCacheControl : ProvisionalCacheControl;
                    await ContentEndpoints.ImmutableFile(context, stream, cached.Entry.Sha256, ContentType, cacheControl).ExecuteAsync(context).ConfigureAwait(false);
                    return;

                case DeltaLookup.Streaming streaming:
                    deltas.CountStreamedResponse();
                    await StreamAsync(context, streaming.Generation).ConfigureAwait(false);
                    return;
            }
        }
    }

    /// <summary>The delta a resuming client holds, from <c>If-Range: "sha256"</c>.</summary>
    private static string? PinnedSha256(HttpRequest request)
    {
        var ifRange = request.Headers.IfRange.ToString();
        if (ifRange.Length == 66 && ifRange[0] == '"' && ifRange[^1] == '"' && HttpRoutes.IsSha256(ifRange[1..^1]))
        {
            return ifRange[1..^1];
        }

        return null;
    }

    private static async Task StreamAsync(HttpContext context, DeltaGeneration generation)
    {
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = ContentType;
        response.Headers[LevelHeader] = generation.Key.LevelName;

        // Not cacheable: this URL will serve the committed (or a better) delta, with an ETag, from now on.
        response.Headers.CacheControl = "no-store";
        if (HttpMethods.IsHead(context.Request.Method))
        {
            return;
        }

        var trailers = response.SupportsTrailers();
        if (trailers)
        {
            response.DeclareTrailer(Sha256Trailer);
        }

        var aborted = context.RequestAborted;
        await response.StartAsync(aborted).ConfigureAwait(false);
        using var handle = generation.OpenRead();
        var buffer = new byte[64 * 1024];
        long position = 0;
        try
        {
            while (true)
            {
                var available = generation.BytesWritten;
                if (position < available)
                {
                    var read = await RandomAccess.ReadAsync(handle, buffer.AsMemory(0, (int)Math.Min(buffer.Length, available - position)), position, aborted).ConfigureAwait(false);
                    if (read == 0)
                    {
                        throw new IOException($"the delta file ended at {position} bytes; {available} were written");
                    }

                    await response.Body.WriteAsync(buffer.AsMemory(0, read), aborted).ConfigureAwait(false);
                    position += read;
                    continue;
                }

                if (generation.Completion.IsCompleted)
                {
                    if (generation.Succeeded && position == generation.BytesWritten)
                    {
                        break;
                    }

                    if (!generation.Succeeded)
                    {
                        // Never let a client take a partial delta for a whole one.
                        context.Abort();
                        return;
                    }

                    continue;
                }

                await response.Body.FlushAsync(aborted).ConfigureAwait(false);
                await generation.WaitForProgressAsync(position, aborted).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            return; // The client went away; the generation goes on for the others and the cache.
        }

        if (trailers && generation.Sha256 is not null)
        {
            response.AppendTrailer(Sha256Trailer, generation.Sha256);
        }
    }
}
