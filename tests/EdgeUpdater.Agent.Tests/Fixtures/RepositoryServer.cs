using System.Collections.Concurrent;
using System.Net;
using EdgeUpdater.Delta;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;

namespace EdgeUpdater.Agent.Tests.Fixtures;

/// <summary>How the repository hands out a delta (docs/server.md, "Deltas").</summary>
internal enum DeltaDelivery
{
    /// <summary>From the cache: Content-Length, strong ETag (the delta's SHA-256), Range and If-Range.</summary>
    Cached,

    /// <summary>As while it is being generated: chunked, no Content-Length, no ETag, cannot be resumed.</summary>
    Streamed,

    /// <summary>
    /// A faulty or hostile server: chunked, no length, bytes until the client hangs up (or
    /// <see cref="RepositoryServer.EndlessDeltaBound"/>). With a delta file: that delta's header, then a content
    /// section that says 8 MiB and never ends, which an apply waits for (only a cap on the download stops it);
    /// without one: filler bytes from the start.
    /// </summary>
    Endless,
}

/// <summary>
/// A static repository on 127.0.0.1 serving the device-facing routes of docs/protocol.md (manifests
/// and images by SHA-256, Range and If-Range honoured; deltas that a test added, cached or streamed,
/// else 404 "unknown-base"), with fault knobs: drop an image or delta download after some bytes, or
/// answer 503. The real server is used by EndToEnd/RealServerTests.
/// </summary>
internal sealed class RepositoryServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, string> _images = new();
    private readonly ConcurrentDictionary<string, byte[]> _manifests = new();
    private readonly ConcurrentDictionary<string, (string Path, DeltaDelivery Delivery)> _deltas = new();
    private readonly ConcurrentQueue<string> _requests = new();
    private int _dropsLeft;
    private long _dropAfterBytes;
    private int _unavailableLeft;
    private int _deltaDropsLeft;
    private long _deltaDropAfterBytes;
    private int _manifestStallsLeft;
    private int _wrongManifestsLeft;
    private int _deltaStallsLeft;
    private long _deltaStallAfterBytes;

    private RepositoryServer(WebApplication app, int port)
    {
        _app = app;
        Port = port;
        Url = $"http://127.0.0.1:{port}";
    }

    public int Port { get; }

    public string Url { get; }

    /// <summary>Where an endless delta stops after all, so that a client without a limit cannot fill the test machine's disk.</summary>
    public const long EndlessDeltaBound = 64L << 20;

    /// <summary>Request lines seen ("GET /v1/images/... bytes=100-", "GET /v1/deltas/A/B?codecs=... bytes=0- if-range=\"...\"").</summary>
    public IReadOnlyCollection<string> Requests => _requests;

    public static async Task<RepositoryServer> StartAsync(int port = 0)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, port));
        var app = builder.Build();
        RepositoryServer? server = null;
        app.Use(async (context, next) =>
        {
            var ifRange = context.Request.Headers.IfRange.Count > 0 ? $" if-range={context.Request.Headers.IfRange}" : string.Empty;
            server!._requests.Enqueue($"{context.Request.Method} {context.Request.Path}{context.Request.QueryString} {context.Request.Headers.Range}{ifRange}");
            if (Interlocked.Decrement(ref server._unavailableLeft) >= 0)
            {
                context.Response.StatusCode = 503;
                return;
            }

            await next(context);
        });
        app.MapGet("/v1/manifests/{sha}", async (string sha, HttpContext context) =>
        {
            if (Interlocked.Decrement(ref server!._manifestStallsLeft) >= 0)
            {
                // Accepted and read, never answered: a half-open link or a hung proxy.
                await StallAsync(context);
                return Results.Empty;
            }

            if (Interlocked.Decrement(ref server._wrongManifestsLeft) >= 0)
            {
                // 200 with someone else's body: a captive portal's login page or a misbehaving proxy.
                return Results.Content("<html><body>Please log in to the guest network</body></html>", "text/html");
            }

            return server._manifests.TryGetValue(sha, out var bytes)
                ? Results.Bytes(bytes, "application/json", entityTag: new EntityTagHeaderValue($"\"{sha}\""))
                : Results.NotFound();
        });
        app.MapGet("/v1/images/{sha}", (string sha, HttpContext context) => server!.ServeImageAsync(sha, context));
        app.MapGet("/v1/deltas/{from}/{to}", (string from, string to, HttpContext context) => server!.ServeDeltaAsync(from, to, context));
        await app.StartAsync();
        var address = app.Urls.First();
        server = new RepositoryServer(app, new Uri(address).Port);
        return server;
    }

    public void AddRelease(SignedManifest manifest, string imagePath)
    {
        _manifests[manifest.Sha256] = manifest.Envelope;
        _images[manifest.ImageSha256] = imagePath;
    }

    /// <summary>Serves <paramref name="deltaPath"/> for GET /v1/deltas/{from}/{to}.</summary>
    public void AddDelta(string fromSha256, string toSha256, string deltaPath, DeltaDelivery delivery = DeltaDelivery.Cached) =>
        _deltas[$"{fromSha256}/{toSha256}"] = (deltaPath, delivery);

    /// <summary>The next <paramref name="count"/> delta downloads break off after <paramref name="bytes"/> bytes.</summary>
    public void DropDeltaDownloads(int count, long bytes)
    {
        Interlocked.Exchange(ref _deltaDropAfterBytes, bytes);
        Interlocked.Exchange(ref _deltaDropsLeft, count);
    }

    /// <summary>The next <paramref name="count"/> image downloads break off after <paramref name="bytes"/> bytes.</summary>
    public void DropImageDownloads(int count, long bytes)
    {
        Interlocked.Exchange(ref _dropAfterBytes, bytes);
        Interlocked.Exchange(ref _dropsLeft, count);
    }

    /// <summary>The next <paramref name="count"/> manifest requests are read and never answered (until the client gives up).</summary>
    public void StallManifests(int count) => Interlocked.Exchange(ref _manifestStallsLeft, count);

    /// <summary>The next <paramref name="count"/> manifest requests get 200 with an HTML page instead of the manifest.</summary>
    public void ServeWrongManifests(int count) => Interlocked.Exchange(ref _wrongManifestsLeft, count);

    /// <summary>The next <paramref name="count"/> delta downloads send their headers and <paramref name="bytes"/> bytes, then nothing more, with the connection left open.</summary>
    public void StallDeltaDownloads(int count, long bytes)
    {
        Interlocked.Exchange(ref _deltaStallAfterBytes, bytes);
        Interlocked.Exchange(ref _deltaStallsLeft, count);
    }

    /// <summary>The next <paramref name="count"/> requests get 503.</summary>
    public void Unavailable(int count) => Interlocked.Exchange(ref _unavailableLeft, count);

    private async Task ServeImageAsync(string sha, HttpContext context)
    {
        if (!_images.TryGetValue(sha, out var path))
        {
            context.Response.StatusCode = 404;
            return;
        }

        if (Interlocked.Decrement(ref _dropsLeft) >= 0)
        {
            // Send the head of the body, then cut the connection like a dropped cellular link.
            var limit = Interlocked.Read(ref _dropAfterBytes);
            var length = new FileInfo(path).Length;
            context.Response.StatusCode = 200;
            context.Response.ContentLength = length;
            context.Response.Headers.ETag = $"\"{sha}\"";
            var head = new byte[limit];
            await using (var file = File.OpenRead(path))
            {
                await file.ReadExactlyAsync(head);
            }

            await context.Response.Body.WriteAsync(head);
            await context.Response.Body.FlushAsync();
            context.Abort();
            return;
        }

        await Results.File(path, "application/octet-stream", enableRangeProcessing: true, entityTag: new EntityTagHeaderValue($"\"{sha}\"")).ExecuteAsync(context);
    }

    private async Task ServeDeltaAsync(string from, string to, HttpContext context)
    {
        if (!_deltas.TryGetValue($"{from}/{to}", out var delta))
        {
            await Results.Json(new { reason = "unknown-base" }, statusCode: 404).ExecuteAsync(context);
            return;
        }

        if (delta.Delivery == DeltaDelivery.Endless)
        {
            await ServeEndlessAsync(context, delta.Path);
            return;
        }

        var etag = $"\"{Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(await File.ReadAllBytesAsync(delta.Path)))}\"";
        if (Interlocked.Decrement(ref _deltaStallsLeft) >= 0)
        {
            var head = (await File.ReadAllBytesAsync(delta.Path)).AsMemory(0, (int)Interlocked.Read(ref _deltaStallAfterBytes));
            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/vnd.edgeupdater.delta";
            context.Response.ContentLength = new FileInfo(delta.Path).Length;
            context.Response.Headers.ETag = etag;
            await context.Response.Body.WriteAsync(head);
            await context.Response.Body.FlushAsync();
            await StallAsync(context);
            return;
        }

        var drop = Interlocked.Decrement(ref _deltaDropsLeft) >= 0;
        if (delta.Delivery == DeltaDelivery.Cached && !drop)
        {
            await Results.File(delta.Path, "application/vnd.edgeupdater.delta", enableRangeProcessing: true, entityTag: new EntityTagHeaderValue(etag)).ExecuteAsync(context);
            return;
        }

        // Streamed (no length, no ETag) or a cached one cut off: send the head, then maybe the rest in pieces.
        var bytes = await File.ReadAllBytesAsync(delta.Path);
        var limit = drop ? (int)Math.Min(Interlocked.Read(ref _deltaDropAfterBytes), bytes.Length) : bytes.Length;
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/vnd.edgeupdater.delta";
        if (delta.Delivery == DeltaDelivery.Cached)
        {
            context.Response.ContentLength = bytes.Length;
            context.Response.Headers.ETag = etag;
        }
        else
        {
            context.Response.Headers.CacheControl = "no-store";
        }

        for (var sent = 0; sent < limit; sent += 16 * 1024)
        {
            await context.Response.Body.WriteAsync(bytes.AsMemory(sent, Math.Min(16 * 1024, limit - sent)));
            await context.Response.Body.FlushAsync();
        }

        if (drop)
        {
            context.Abort();
        }
    }

    private static async Task ServeEndlessAsync(HttpContext context, string deltaPath)
    {
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/vnd.edgeupdater.delta";
        var chunk = new byte[64 * 1024];
        Array.Fill(chunk, (byte)0x5a);
        try
        {
            if (deltaPath.Length > 0)
            {
                // docs/delta-format.md: kind, encoding, stored and payload lengths, checksum (read after the payload).
                var bytes = await File.ReadAllBytesAsync(deltaPath);
                await using var stream = new MemoryStream(bytes);
                var headerLength = (int)(await DeltaInspector.InspectAsync(stream)).DeltaBytesBySection["header"];
                var section = new byte[18];
                section[0] = 2;
                System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(section.AsSpan(2), 8 << 20);
                System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(section.AsSpan(6), 8 << 20);
                await context.Response.Body.WriteAsync(bytes.AsMemory(0, headerLength), context.RequestAborted);
                await context.Response.Body.WriteAsync(section, context.RequestAborted);
            }

            // Kestrel goes on accepting writes for a client that is gone; RequestAborted says it left.
            for (long sent = 0; sent < EndlessDeltaBound && !context.RequestAborted.IsCancellationRequested; sent += chunk.Length)
            {
                await context.Response.Body.WriteAsync(chunk, context.RequestAborted);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
        }
    }

    /// <summary>Holds the request open, sending nothing, until the client goes away or the server stops.</summary>
    private static async Task StallAsync(HttpContext context)
    {
        var stopping = context.RequestServices.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        using var gone = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, stopping);
        try
        {
            await Task.Delay(Timeout.Infinite, gone.Token);
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
