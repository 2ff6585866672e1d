using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.CommandLine;
using System.Globalization;
using System.Net;
using EdgeUpdater.Cli.Commands;
using EdgeUpdater.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Xunit;

namespace EdgeUpdater.Cli.Tests;

/// <summary>
/// <c>edgeupdater delta apply old URL -o new</c> against a real HTTP server on 127.0.0.1: the delta read as it
/// arrives, a dropped connection continued with Range and If-Range, a changed or unreachable delta refused, and
/// a resumed apply fetching the delta from its checkpoint.
/// </summary>
public sealed class DeltaApplyFromUrlTests : IAsyncLifetime
{
    private readonly TempDirectory _temp = new("cli-delta-url");
    private DeltaServer _server = null!;

    public async ValueTask InitializeAsync() => _server = await DeltaServer.StartAsync();

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        _temp.Dispose();
    }

    private static async Task<(int Exit, string Out, string Err)> RunAsync(CancellationToken cancellationToken, params string[] args)
    {
        var root = new RootCommand { DeltaCommands.Create() };
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await root.Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, cancellationToken);
        return (exit, output.ToString(), error.ToString());
    }

    private static Task<(int Exit, string Out, string Err)> RunAsync(params string[] args) => RunAsync(TestContext.Current.CancellationToken, args);

    /// <summary>Images A and B (B: one file edited, one added) and the delta from A to B at <paramref name="level"/>.</summary>
    private async Task<(string A, string B, string Delta)> MakeDeltaAsync(string name, int bigFileBytes = 300_000, string level = "best")
    {
        var a = _temp.Combine(name + "-a");
        Directory.CreateDirectory(a);
        await new TestTreeBuilder(a)
            .Directory("etc")
            .Directory("usr")
            .File("etc/os-release", "NAME=edge\nVERSION=1\n"u8.ToArray())
            .File("usr/app", RandomBytes(bigFileBytes), mode: 0x1ED)
            .BuildAsync();
        var b = _temp.Combine(name + "-b");
        await ExternalTool.RunCheckedAsync("cp", ["-a", a, b]);
        await File.WriteAllTextAsync(Path.Combine(b, "etc/os-release"), "NAME=edge\nVERSION=2\n");
        await File.WriteAllBytesAsync(Path.Combine(b, "usr/tool"), TestTreeBuilder.Content(70_000, 3));
        foreach (var dir in new[] { a, b })
        {
            await ExternalTool.RunCheckedAsync("mksquashfs", [dir, dir + ".sqfs", "-comp", "gzip", "-noappend", "-no-progress", "-quiet"]);
        }

        var delta = _temp.Combine($"{name}-{level}.eud");
        Assert.Equal(ExitCodes.Ok, (await RunAsync("delta", "create", a + ".sqfs", b + ".sqfs", "-o", delta, "--level", level)).Exit);
        return (a + ".sqfs", b + ".sqfs", delta);
    }

    /// <summary>Incompressible bytes, so that the image is as large as its files.</summary>
    private static byte[] RandomBytes(int size)
    {
        var bytes = new byte[size];
        new Random(size).NextBytes(bytes);
        return bytes;
    }

    private static void AssertSameFile(string expected, string actual) =>
        Assert.Equal(File.ReadAllBytes(expected), File.ReadAllBytes(actual));

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Apply_reads_the_delta_from_a_url(bool servesRanges)
    {
        var (a, b, delta) = await MakeDeltaAsync("plain");
        _server.Serve(await File.ReadAllBytesAsync(delta, TestContext.Current.CancellationToken), "v1", servesRanges);
        var output = _temp.Combine("plain.out");

        var (exit, stdout, stderr) = await RunAsync("delta", "apply", a, _server.Url, "-o", output);

        Assert.True(exit == ExitCodes.Ok, stderr);
        Assert.Contains("verified", stdout, StringComparison.Ordinal);
        AssertSameFile(b, output);
        Assert.False(File.Exists(output + ".checkpoint"));

        // Read once, front to back, as from a pipe: no request to read the metadata section ahead.
        Assert.Equal(["GET  "], _server.Requests);
    }

    [Fact]
    public async Task A_connection_dropped_mid_delta_is_continued_from_where_it_stopped()
    {
        var (a, b, delta) = await MakeDeltaAsync("drop");
        var bytes = await File.ReadAllBytesAsync(delta, TestContext.Current.CancellationToken);
        var dropAt = bytes.Length / 2;
        _server.Serve(bytes, "v1", servesRanges: true);
        _server.DropAt(dropAt, times: 2);
        var output = _temp.Combine("drop.out");

        var (exit, _, stderr) = await RunAsync("delta", "apply", a, _server.Url, "-o", output);

        Assert.True(exit == ExitCodes.Ok, stderr);
        AssertSameFile(b, output);
        Assert.Contains($"delta download interrupted at byte {dropAt}", stderr, StringComparison.Ordinal);

        // Twice from the byte where it broke off, tied to the first answer, never the whole delta again.
        Assert.Equal(["GET  ", $"GET bytes={dropAt}- \"v1\"", $"GET bytes={dropAt}- \"v1\""], _server.Requests);
    }

    [Fact]
    public async Task A_delta_that_changed_on_the_server_meanwhile_is_refused_not_spliced()
    {
        var (a, _, best) = await MakeDeltaAsync("changed");
        var (_, _, fast) = await MakeDeltaAsync("changed", level: "fast");
        var bytes = await File.ReadAllBytesAsync(best, TestContext.Current.CancellationToken);
        var dropAt = bytes.Length / 2;
        _server.Serve(bytes, "v1", servesRanges: true);
        _server.DropAt(dropAt, times: 1, thenServe: (await File.ReadAllBytesAsync(fast, TestContext.Current.CancellationToken), "v2"));
        var output = _temp.Combine("changed.out");

        var (exit, stdout, stderr) = await RunAsync("delta", "apply", a, _server.Url, "-o", output);

        // If-Range "v1" no longer matches: the server sends the new delta whole, which is refused.
        Assert.Equal(ExitCodes.Failure, exit);
        Assert.Contains("changed on the server", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("verified", stdout, StringComparison.Ordinal);
        Assert.Contains($"GET bytes={dropAt}- \"v1\"", _server.Requests);
    }

    [Theory]
    [InlineData(false, "v1")]
    [InlineData(true, null)]
    public async Task A_dropped_connection_that_cannot_be_continued_safely_fails_and_says_why(bool servesRanges, string? etag)
    {
        // No ranges, or ranges without a validator for If-Range: the rest might come from another delta.
        var (a, _, delta) = await MakeDeltaAsync("noranges");
        var bytes = await File.ReadAllBytesAsync(delta, TestContext.Current.CancellationToken);
        _server.Serve(bytes, etag, servesRanges);
        _server.DropAt(bytes.Length / 2, times: 1);

        var (exit, stdout, stderr) = await RunAsync("delta", "apply", a, _server.Url, "-o", _temp.Combine("noranges.out"));

        Assert.Equal(ExitCodes.Failure, exit);
        Assert.Contains("does not serve ranges", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("verified", stdout, StringComparison.Ordinal);
        Assert.Single(_server.Requests);
    }

    [Fact]
    public async Task A_delta_the_server_does_not_have_or_cannot_be_reached_is_a_clear_error()
    {
        var (a, _, _) = await MakeDeltaAsync("missing");
        var output = _temp.Combine("missing.out");

        var (exit, _, stderr) = await RunAsync("delta", "apply", a, _server.Url, "-o", output);
        Assert.Equal(ExitCodes.Rejected, exit);
        Assert.Contains("answered 404", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(output));

        (exit, _, stderr) = await RunAsync("delta", "apply", a, $"http://127.0.0.1:{FreePort.Next()}/delta", "-o", output);
        Assert.Equal(ExitCodes.Failure, exit);
        Assert.Contains("Cannot reach", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public async Task A_delta_sent_with_a_content_coding_is_refused_before_anything_is_written()
    {
        var (a, _, delta) = await MakeDeltaAsync("coded");
        _server.Serve(await File.ReadAllBytesAsync(delta, TestContext.Current.CancellationToken), "v1", servesRanges: true, contentEncoding: "gzip");
        var output = _temp.Combine("coded.out");

        var (exit, _, stderr) = await RunAsync("delta", "apply", a, _server.Url, "-o", output);

        Assert.Equal(ExitCodes.Failure, exit);
        Assert.Contains("Content-Encoding gzip", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public async Task A_resumed_apply_fetches_the_delta_from_its_checkpoint()
    {
        // More than one checkpoint interval (16 MiB) of new image, so that a checkpoint is written.
        var (a, b, delta) = await MakeDeltaAsync("resume", bigFileBytes: 20 << 20);
        var bytes = await File.ReadAllBytesAsync(delta, TestContext.Current.CancellationToken);
        _server.Serve(bytes, "v1", servesRanges: true);
        _server.StallAt(bytes.Length - 1);
        var output = _temp.Combine("resume.out");
        var checkpoint = output + ".checkpoint";

        // The first apply gets all but the delta's last byte, checkpoints, then is stopped while it waits.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var first = RunAsync(stop.Token, "delta", "apply", a, _server.Url, "-o", output);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!File.Exists(checkpoint) && !first.IsCompleted && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        Assert.True(File.Exists(checkpoint), first.IsCompleted ? (await first).Err : "no checkpoint within 60 s");
        await stop.CancelAsync();
        var (firstExit, firstOut, _) = await first;
        Assert.NotEqual(ExitCodes.Ok, firstExit);
        Assert.DoesNotContain("verified", firstOut, StringComparison.Ordinal);
        Assert.True(File.Exists(checkpoint));
        var resumeAt = BinaryPrimitives.ReadInt64LittleEndian((await File.ReadAllBytesAsync(checkpoint, TestContext.Current.CancellationToken)).AsSpan(80, 8));
        Assert.InRange(resumeAt, 1, bytes.Length - 1);

        _server.StallAt(null);
        _server.ClearRequests();
        var (exit, stdout, stderr) = await RunAsync("delta", "apply", a, _server.Url, "-o", output, "--resume");

        Assert.True(exit == ExitCodes.Ok, stderr);
        Assert.Contains("resumed at", stdout, StringComparison.Ordinal);
        AssertSameFile(b, output);

        // The header from the start, then the rest from the checkpoint's delta offset.
        Assert.Equal(["GET  ", string.Create(CultureInfo.InvariantCulture, $"GET bytes={resumeAt}- \"v1\"")], _server.Requests);
    }

    /// <summary>
    /// Serves one delta at <see cref="Url"/> as a cache or a file server would: Content-Length, a strong ETag,
    /// and (when asked) Accept-Ranges with single open ranges and If-Range; with knobs to break a response off or
    /// hold it at a byte, and to swap the delta at a break.
    /// </summary>
    private sealed class DeltaServer : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly ConcurrentQueue<string> _requests = new();
        private readonly Lock _lock = new();
        private (byte[] Bytes, string? ETag, bool Ranges)? _delta;
        private string? _contentEncoding;
        private long _dropAt;
        private int _dropsLeft;
        private (byte[] Bytes, string ETag)? _afterDrop;
        private long? _stallAt;

        private DeltaServer(WebApplication app)
        {
            _app = app;
            Url = $"http://127.0.0.1:{new Uri(app.Urls.First()).Port}/delta";
        }

        public string Url { get; }

        /// <summary>Each request as "GET {Range} {If-Range}".</summary>
        public IReadOnlyCollection<string> Requests => _requests;

        public static async Task<DeltaServer> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
            var app = builder.Build();
            DeltaServer? server = null;
            app.MapGet("/delta", (HttpContext context) => server!.ServeAsync(context));
            await app.StartAsync();
            server = new DeltaServer(app);
            return server;
        }

        /// <summary>Serves <paramref name="bytes"/> with ETag <paramref name="etag"/> (null: no ETag and no Last-Modified).</summary>
        public void Serve(byte[] bytes, string? etag, bool servesRanges, string? contentEncoding = null)
        {
            lock (_lock)
            {
                _delta = (bytes, etag, servesRanges);
                _contentEncoding = contentEncoding;
            }
        }

        /// <summary>The next <paramref name="times"/> responses that reach delta offset <paramref name="offset"/> break off there; the last may swap the delta.</summary>
        public void DropAt(long offset, int times, (byte[] Bytes, string ETag)? thenServe = null)
        {
            lock (_lock)
            {
                (_dropAt, _dropsLeft, _afterDrop) = (offset, times, thenServe);
            }
        }

        /// <summary>Responses send up to delta offset <paramref name="offset"/> and then hold until the client hangs up (null: no stall).</summary>
        public void StallAt(long? offset)
        {
            lock (_lock)
            {
                _stallAt = offset;
            }
        }

        public void ClearRequests() => _requests.Clear();

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        private async Task ServeAsync(HttpContext context)
        {
            var range = context.Request.Headers.Range.ToString();
            var ifRange = context.Request.Headers.IfRange.ToString();
            _requests.Enqueue($"GET {range} {ifRange}");
            (byte[] Bytes, string? ETag, bool Ranges)? delta;
            long? stallAt;
            string? contentEncoding;
            lock (_lock)
            {
                (delta, stallAt, contentEncoding) = (_delta, _stallAt, _contentEncoding);
            }

            if (delta is not { } d)
            {
                context.Response.StatusCode = 404;
                return;
            }

            var etag = d.ETag is null ? null : $"\"{d.ETag}\"";
            long start = 0;
            if (d.Ranges)
            {
                context.Response.Headers.AcceptRanges = "bytes";
                if (range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-') && (ifRange.Length == 0 || ifRange == etag))
                {
                    start = long.Parse(range.AsSpan(6, range.Length - 7), CultureInfo.InvariantCulture);
                    context.Response.StatusCode = 206;
                    context.Response.Headers.ContentRange = string.Create(CultureInfo.InvariantCulture, $"bytes {start}-{d.Bytes.Length - 1}/{d.Bytes.Length}");
                }
            }

            if (etag is not null)
            {
                context.Response.Headers.ETag = etag;
            }

            context.Response.ContentType = "application/octet-stream";
            if (contentEncoding is not null)
            {
                // The label alone: what matters is that the client does not read coded bytes as the delta.
                context.Response.Headers.ContentEncoding = contentEncoding;
            }

            context.Response.ContentLength = d.Bytes.Length - start;
            var position = start;
            while (position < d.Bytes.Length)
            {
                var end = Math.Min(d.Bytes.Length, position + (16 << 10));
                bool drop;
                lock (_lock)
                {
                    drop = _dropsLeft > 0 && position <= _dropAt && _dropAt < end;
                    if (drop)
                    {
                        end = _dropAt;
                    }
                }

                if (stallAt is { } stall && position <= stall && stall < end)
                {
                    end = stall;
                }

                await context.Response.Body.WriteAsync(d.Bytes.AsMemory((int)position, (int)(end - position)), context.RequestAborted);
                position = end;
                if (drop)
                {
                    // Let the client read what was sent: a reset discards what it has not read yet.
                    await context.Response.Body.FlushAsync(context.RequestAborted);
                    await Task.Delay(300, context.RequestAborted);
                    lock (_lock)
                    {
                        if (--_dropsLeft == 0 && _afterDrop is { } next)
                        {
                            _delta = (next.Bytes, next.ETag, d.Ranges);
                        }
                    }

                    context.Abort();
                    return;
                }

                if (position == stallAt)
                {
                    await context.Response.Body.FlushAsync(context.RequestAborted);
                    await Task.Delay(Timeout.Infinite, context.RequestAborted);
                }
            }
        }
    }
}
