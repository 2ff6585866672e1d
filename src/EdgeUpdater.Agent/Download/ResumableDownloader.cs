using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;

namespace EdgeUpdater.Agent.Download;

/// <summary>Why a download stopped.</summary>
internal enum DownloadFailure
{
    /// <summary>404: the server has no such resource (for a delta: fall back to the full image).</summary>
    NotFound,

    /// <summary>Connection refused, reset or timed out: retry later, resuming.</summary>
    Network,

    /// <summary>5xx or an unexpected answer: retry later.</summary>
    Server,

    /// <summary>The body is longer or shorter than the manifest says: start over.</summary>
    LengthMismatch,

    /// <summary>The body goes past <see cref="DownloadRequest.MaxLength"/>: not worth another try.</summary>
    TooLarge,

    /// <summary>
    /// The destination's file system is full (ENOSPC, EDQUOT): another try would fail the same way. Nothing is
    /// checkpointed; what was written stays for the caller to delete.
    /// </summary>
    NoRoom,
}

/// <summary>A download failed; <see cref="Failure"/> says whether and how to retry.</summary>
internal sealed class DownloadException : Exception
{
    public DownloadException(DownloadFailure failure, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Failure = failure;
    }

    public DownloadException()
    {
    }

    public DownloadException(string message)
        : base(message)
    {
    }

    public DownloadException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public DownloadFailure Failure { get; }
}

/// <summary>Where to put the bytes and how much is already there.</summary>
internal sealed record DownloadRequest
{
    public required Uri Url { get; init; }

    public required string Destination { get; init; }

    /// <summary>Bytes already at the start of <see cref="Destination"/>, fsync'd.</summary>
    public long Offset { get; init; }

    /// <summary>ETag those bytes came with; sent as If-Range so a changed resource restarts from zero.</summary>
    public string? ETag { get; init; }

    public long? ExpectedLength { get; init; }

    /// <summary>
    /// Most bytes the resource may have when its length is not known in advance (a delta); a body that
    /// goes past it stops with <see cref="DownloadFailure.TooLarge"/> before the byte past it is written.
    /// </summary>
    public long? MaxLength { get; init; }

    /// <summary>Cut a regular file to the downloaded length at the end (not for block devices).</summary>
    public bool Truncate { get; init; } = true;

    /// <summary>
    /// Called when the server answers a resume with the whole resource (a 200), before its first byte is written
    /// over those already there: a reader of the file must stop, for they may belong to another body.
    /// </summary>
    public Action? Restarted { get; init; }
}

/// <summary>Where a download stands after each write.</summary>
/// <param name="Offset">Bytes at the start of the destination now (written, not necessarily fsync'd).</param>
/// <param name="Received">Bytes received over the network in this attempt.</param>
/// <param name="Total">The whole resource's length when the response says it; null for a streamed body.</param>
internal readonly record struct DownloadProgress(long Offset, long Received, long? Total);

/// <summary>Knobs of a <see cref="ResumableDownloader"/>.</summary>
internal sealed record ResumableDownloaderOptions
{
    /// <summary>Bandwidth cap in bytes per second; 0 for none.</summary>
    public long MaxBytesPerSecond { get; init; }

    /// <summary>
    /// How long one read of the body may wait for bytes before the connection counts as lost. The body
    /// is read after <see cref="HttpClient.Timeout"/> stopped applying (headers read), so without this a
    /// half-open connection would block the read forever.
    /// </summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>
/// HTTP download with Range resume. Progress is made durable in steps (fsync, then the checkpoint
/// callback persists the offset), so a drop, a stall or a restart resumes from the last checkpoint.
/// </summary>
internal sealed class ResumableDownloader
{
    private const int BufferSize = 64 * 1024;
    private const long CheckpointBytes = 4 * 1024 * 1024;
    private readonly HttpClient _http;
    private readonly ResumableDownloaderOptions _options;

    public ResumableDownloader(HttpClient http, ResumableDownloaderOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.IdleTimeout, TimeSpan.Zero);
        _http = http;
        _options = options;
    }

    /// <summary>
    /// Where <see cref="DownloadAsync"/> asks the server to start: <see cref="DownloadRequest.Offset"/>, or 0 without an
    /// ETag, for then the bytes cannot be matched to what is there (a delta streamed while being generated,
    /// docs/protocol.md): starting over never splices two different bodies.
    /// </summary>
    public static long ResumeOffset(DownloadRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request.ETag is null ? 0 : request.Offset;
    }

    /// <summary>Downloads to the end; returns the length. <paramref name="checkpoint"/> receives durable (offset, etag) pairs.</summary>
    public async Task<long> DownloadAsync(DownloadRequest request, Func<long, string?, Task> checkpoint, Action<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        using var message = new HttpRequestMessage(HttpMethod.Get, request.Url);
        var offset = ResumeOffset(request);
        if (offset > 0)
        {
            message.Headers.Range = new RangeHeaderValue(offset, null);
            if (request.ETag is not null && EntityTagHeaderValue.TryParse(request.ETag, out var tag))
            {
                message.Headers.IfRange = new RangeConditionHeaderValue(tag);
            }
        }

        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new DownloadException(DownloadFailure.Network, $"GET {request.Url}: {e.Message}", e);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new DownloadException(DownloadFailure.Network, $"GET {request.Url}: timed out", e);
        }

        using (response)
        {
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
                throw new DownloadException(DownloadFailure.NotFound, $"GET {request.Url}: 404 {Shorten(body)}");
            }

            // Everything had arrived before the restart (the power went after the last checkpoint): the
            // server says so with 416 and the resource's length (Content-Range: bytes */length).
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable
                && (request.ExpectedLength == offset || (request.ExpectedLength is null && response.Content.Headers.ContentRange?.Length == offset)))
            {
                return offset;
            }

            if (response.StatusCode == HttpStatusCode.PartialContent)
            {
                var start = response.Content.Headers.ContentRange?.From;
                if (start != offset)
                {
                    throw new DownloadException(DownloadFailure.Server, $"GET {request.Url}: asked for bytes from {offset}, got a range from {start?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "nowhere"}");
                }
            }
            else if (response.StatusCode == HttpStatusCode.OK)
            {
                // The server ignored the range or If-Range found a changed resource: start over.
                if (offset > 0)
                {
                    request.Restarted?.Invoke();
                }

                offset = 0;
            }
            else
            {
                throw new DownloadException(DownloadFailure.Server, $"GET {request.Url}: HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
            }

            // A 206 continues the body If-Range named. A 200 is a new body: only its own ETag describes
            // it; none means it cannot be resumed, and keeping the old one would splice two bodies.
            var etag = response.StatusCode == HttpStatusCode.PartialContent
                ? response.Headers.ETag?.ToString() ?? request.ETag
                : response.Headers.ETag?.ToString();
            var total = offset + (response.Content.Headers.ContentLength ?? 0);
            if (request.ExpectedLength is { } expected && response.Content.Headers.ContentLength is not null && total != expected)
            {
                throw new DownloadException(DownloadFailure.LengthMismatch, $"GET {request.Url}: the server offers {total} bytes, the manifest says {expected}");
            }

            if (request.MaxLength is { } max && response.Content.Headers.ContentLength is not null && total > max)
            {
                throw new DownloadException(DownloadFailure.TooLarge, $"GET {request.Url}: the server offers {total} bytes, more than the limit of {max}");
            }

            long? length = response.Content.Headers.ContentLength is { } contentLength ? offset + contentLength : null;
            return await CopyAsync(request, response, offset, etag, length, checkpoint, progress, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<long> CopyAsync(DownloadRequest request, HttpResponseMessage response, long offset, string? etag, long? length, Func<long, string?, Task> checkpoint, Action<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        var output = new FileStream(request.Destination, FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read, 1, FileOptions.None);
        await using (output.ConfigureAwait(false))
        {
            output.Seek(offset, SeekOrigin.Begin);
            var durable = offset;
            var buffer = new byte[BufferSize];
            var clock = Stopwatch.StartNew();
            long sinceStart = 0;
            using var stalled = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            try
            {
                var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
                await using (body.ConfigureAwait(false))
                {
                    while (true)
                    {
                        // Armed for the read only: writing and throttling are not the server's silence.
                        stalled.CancelAfter(_options.IdleTimeout);
                        var read = await body.ReadAsync(buffer, stalled.Token).ConfigureAwait(false);
                        stalled.CancelAfter(Timeout.InfiniteTimeSpan);
                        if (read == 0)
                        {
                            break;
                        }

                        if (request.ExpectedLength is { } limit && offset + read > limit)
                        {
                            throw new DownloadException(DownloadFailure.LengthMismatch, $"GET {request.Url}: more than the {limit} bytes the manifest says");
                        }

                        if (request.MaxLength is { } max && offset + read > max)
                        {
                            throw new DownloadException(DownloadFailure.TooLarge, $"GET {request.Url}: more than the limit of {max} bytes");
                        }

                        await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                        offset += read;
                        sinceStart += read;
                        progress?.Invoke(new DownloadProgress(offset, sinceStart, length));
                        if (offset - durable >= CheckpointBytes)
                        {
                            output.Flush(flushToDisk: true);
                            durable = offset;
                            await checkpoint(durable, etag).ConfigureAwait(false);
                        }

                        await ThrottleAsync(sinceStart, clock.Elapsed, cancellationToken).ConfigureAwait(false);
                    }
                }
            }
            catch (IOException e) when (Interop.Linux.Libc.IsNoRoom(e))
            {
                // Before the catches below: a checkpoint would want room too, and resuming cannot help.
                throw new DownloadException(DownloadFailure.NoRoom, $"GET {request.Url}: no room in {request.Destination} after {offset} bytes: {e.Message}", e);
            }
            catch (Exception e) when ((e is OperationCanceledException or IOException or HttpRequestException) && stalled.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                await KeepWhatArrivedAsync().ConfigureAwait(false);
                throw new DownloadException(DownloadFailure.Network, $"GET {request.Url}: no data for {_options.IdleTimeout.TotalSeconds:0} s after {offset} bytes; connection dropped", e);
            }
            catch (Exception e) when (e is IOException or HttpRequestException && e is not DownloadException)
            {
                await KeepWhatArrivedAsync().ConfigureAwait(false);
                throw new DownloadException(DownloadFailure.Network, $"GET {request.Url}: connection lost after {offset} bytes: {e.Message}", e);
            }
            catch (OperationCanceledException)
            {
                await KeepWhatArrivedAsync().ConfigureAwait(false);
                throw;
            }

            if (request.ExpectedLength is { } expected && offset != expected)
            {
                await KeepWhatArrivedAsync().ConfigureAwait(false);
                throw new DownloadException(DownloadFailure.Network, $"GET {request.Url}: body ended after {offset} of {expected} bytes");
            }

            if (request.Truncate)
            {
                output.SetLength(offset);
            }

            await KeepWhatArrivedAsync().ConfigureAwait(false);
            return offset;

            // Durable first, then recorded: the next attempt resumes at the checkpoint.
            async Task KeepWhatArrivedAsync()
            {
                output.Flush(flushToDisk: true);
                await checkpoint(offset, etag).ConfigureAwait(false);
            }
        }
    }

    private async Task ThrottleAsync(long bytes, TimeSpan elapsed, CancellationToken cancellationToken)
    {
        if (_options.MaxBytesPerSecond <= 0)
        {
            return;
        }

        var due = TimeSpan.FromSeconds((double)bytes / _options.MaxBytesPerSecond);
        if (due > elapsed)
        {
            await Task.Delay(due - elapsed, cancellationToken).ConfigureAwait(false);
        }
    }

    private static string Shorten(string text) => text.Length > 200 ? text[..200] : text;
}
