using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;

namespace EdgeUpdater.Agent.Tests.Fixtures;

/// <summary>
/// A static repository on 127.0.0.1 serving the device-facing routes of docs/protocol.md (manifests
/// and images by SHA-256, Range and If-Range honoured, deltas answered 404 "unknown-base"), with fault
/// knobs: drop an image download after some bytes, or answer 503. Stands in for EdgeUpdater.Server
/// until it lands.
/// </summary>
internal sealed class RepositoryServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, string> _images = new();
    private readonly ConcurrentDictionary<string, byte[]> _manifests = new();
    private readonly ConcurrentQueue<string> _requests = new();
    private int _dropsLeft;
    private long _dropAfterBytes;
    private int _unavailableLeft;

    private RepositoryServer(WebApplication app, int port)
    {
        _app = app;
        Port = port;
        Url = $"http://127.0.0.1:{port}";
    }

    public int Port { get; }

    public string Url { get; }

    /// <summary>Request lines seen ("GET /v1/images/... bytes=100-").</summary>
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
            server!._requests.Enqueue($"{context.Request.Method} {context.Request.Path} {context.Request.Headers.Range}");
            if (Interlocked.Decrement(ref server._unavailableLeft) >= 0)
            {
                context.Response.StatusCode = 503;
                return;
            }

            await next(context);
        });
        app.MapGet("/v1/manifests/{sha}", (string sha) => server!._manifests.TryGetValue(sha, out var bytes)
            ? Results.Bytes(bytes, "application/json", entityTag: new EntityTagHeaderValue($"\"{sha}\""))
            : Results.NotFound());
        app.MapGet("/v1/images/{sha}", (string sha, HttpContext context) => server!.ServeImageAsync(sha, context));
        app.MapGet("/v1/deltas/{from}/{to}", () => Results.Json(new { reason = "unknown-base" }, statusCode: 404));
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

    /// <summary>The next <paramref name="count"/> image downloads break off after <paramref name="bytes"/> bytes.</summary>
    public void DropImageDownloads(int count, long bytes)
    {
        Interlocked.Exchange(ref _dropAfterBytes, bytes);
        Interlocked.Exchange(ref _dropsLeft, count);
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

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
