using System.Globalization;
using System.Net;
using System.Net.Http.Headers;

namespace EdgeUpdater.Cli.Commands;

/// <summary>Reading a delta over HTTP failed; <see cref="Status"/> is the server's answer when it gave one.</summary>
internal sealed class DeltaDownloadException(string message, HttpStatusCode? status = null, Exception? inner = null) : IOException(message, inner)
{
    /// <summary>The HTTP status that refused the request, or null for a transport failure.</summary>
    public HttpStatusCode? Status { get; } = status;
}

/// <summary>
/// The delta of <c>delta apply URL</c>, read as it arrives. A connection that drops or stalls is picked up
/// where it stopped with a Range request tied to the first response by If-Range, so that a delta that changed
/// on the server meanwhile is refused rather than spliced. When the server serves ranges with a length and a
/// validator, the stream can also seek, lazily: a resumed apply fetches the delta from its checkpoint with one
/// request. Otherwise it reads once, front to back, like a pipe.
/// </summary>
internal sealed class HttpDeltaStream : Stream
{
    /// <summary>Reconnections in a row without a byte in between before the read fails.</summary>
    private const int MaxReconnects = 4;

    private readonly HttpClient _http;
    private readonly Uri _uri;
    private readonly TimeSpan _idleTimeout;
    private readonly TextWriter _log;
    private readonly bool _continuable;
    private readonly long? _length;
    private readonly RangeConditionHeaderValue? _validator;
    private HttpResponseMessage? _response;
    private Stream? _body;
    private long _bodyPosition;
    private long _position;

    private HttpDeltaStream(HttpClient http, Uri uri, TimeSpan idleTimeout, TextWriter log, HttpResponseMessage response, Stream body)
    {
        _http = http;
        _uri = uri;
        _idleTimeout = idleTimeout;
        _log = log;
        _response = response;
        _body = body;
        _length = response.Content.Headers.ContentLength;

        // If-Range takes a strong ETag or a date; a weak ETag cannot tell that the bytes are the same. Without a
        // validator, the rest could come from another delta: then the stream does not continue at all.
        _validator = response.Headers.ETag is { IsWeak: false } tag ? new RangeConditionHeaderValue(tag)
            : response.Content.Headers.LastModified is { } modified ? new RangeConditionHeaderValue(modified)
            : null;
        _continuable = response.Headers.AcceptRanges.Contains("bytes", StringComparer.OrdinalIgnoreCase) && _validator is not null && _length is not null;
    }

    /// <summary>Sends the first request and returns the stream at its first byte; an error status or no connection throws <see cref="DeltaDownloadException"/>.</summary>
    /// <param name="http">The client (its timeout bounds each request's headers).</param>
    /// <param name="uri">The delta's http:// or https:// URL.</param>
    /// <param name="idleTimeout">How long a read may wait for a byte before the connection counts as dropped.</param>
    /// <param name="log">Where reconnections are reported.</param>
    /// <param name="cancellationToken">Stops the request.</param>
    public static async Task<HttpDeltaStream> OpenAsync(HttpClient http, Uri uri, TimeSpan idleTimeout, TextWriter log, CancellationToken cancellationToken)
    {
        var (response, body) = await SendAsync(http, uri, null, null, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            response.Dispose();
            throw new DeltaDownloadException($"GET {uri} answered {(int)response.StatusCode} {response.ReasonPhrase}, not the delta.", response.StatusCode);
        }

        // A delta is compressed already; a content coding on top would be read as a corrupt delta, and ranges
        // of the coded bytes do not continue the delta's.
        if (response.Content.Headers.ContentEncoding.FirstOrDefault(c => !c.Equals("identity", StringComparison.OrdinalIgnoreCase)) is { } coding)
        {
            response.Dispose();
            throw new DeltaDownloadException($"GET {uri} sent the delta with Content-Encoding {coding}; serve it as it is (no content coding).");
        }

        return new HttpDeltaStream(http, uri, idleTimeout, log, response, body);
    }

    public override bool CanRead => true;

    public override bool CanSeek => _continuable;

    public override bool CanWrite => false;

    public override long Length => _length ?? throw new NotSupportedException("The server gave no length for the delta.");

    public override long Position
    {
        get => _position;
        set => Seek(value, SeekOrigin.Begin);
    }

    public override long Seek(long offset, SeekOrigin origin)
    {
        if (!CanSeek)
        {
            throw new NotSupportedException("The server does not serve ranges of the delta (with a length and a validator), so it is read front to back.");
        }

        var target = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => Length + offset,
        };
        ArgumentOutOfRangeException.ThrowIfNegative(target, nameof(offset));

        // Lazily: the next read asks for the bytes from there, so that a seek never costs a request.
        _position = target;
        return _position;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty || _position >= _length)
        {
            return 0;
        }

        var reconnects = 0;
        while (true)
        {
            try
            {
                if (_body is null || _bodyPosition != _position)
                {
                    await ReopenAsync(cancellationToken).ConfigureAwait(false);
                }

                int read;
                using (var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
                {
                    idle.CancelAfter(_idleTimeout);
                    try
                    {
                        read = await _body!.ReadAsync(buffer, idle.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                    {
                        throw new IOException($"no byte came for {_idleTimeout.TotalSeconds:F0} s");
                    }
                }

                if (read == 0 && _length is { } length && _position < length)
                {
                    throw new IOException($"the connection closed at byte {_position} of {length}");
                }

                _position += read;
                _bodyPosition += read;
                return read;
            }
            catch (Exception e) when (e is IOException or HttpRequestException && e is not DeltaDownloadException)
            {
                CloseBody();
                if (!_continuable)
                {
                    throw new DeltaDownloadException($"Reading the delta from {_uri} failed at byte {_position} ({e.Message}), and the server does not serve ranges of it (Accept-Ranges, a length, an ETag or Last-Modified) to continue from there.", null, e);
                }

                if (++reconnects > MaxReconnects)
                {
                    throw new DeltaDownloadException($"Reading the delta from {_uri} failed at byte {_position} ({e.Message}) after {MaxReconnects} reconnections; --resume continues from the apply's last checkpoint, if it wrote one.", null, e);
                }

                await _log.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"delta download interrupted at byte {_position} ({e.Message}); continuing from there")).ConfigureAwait(false);
                await Task.Delay(TimeSpan.FromMilliseconds(250 << reconnects), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush()
    {
    }

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            CloseBody();
        }

        base.Dispose(disposing);
    }

    private async Task ReopenAsync(CancellationToken cancellationToken)
    {
        CloseBody();
        if (!_continuable)
        {
            throw new DeltaDownloadException($"The server does not serve ranges of {_uri}, so the delta cannot be read again from byte {_position}.");
        }

        var (response, body) = await SendAsync(_http, _uri, _position, _validator, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.PartialContent && response.Content.Headers.ContentRange is { From: { } from, Length: { } total } && from == _position && total == _length)
        {
            _response = response;
            _body = body;
            _bodyPosition = _position;
            return;
        }

        response.Dispose();
        if ((int)response.StatusCode >= 500 || response.StatusCode == HttpStatusCode.TooManyRequests)
        {
            // Worth another try, like a dropped connection.
            throw new HttpRequestException($"the server answered {(int)response.StatusCode} {response.ReasonPhrase}", null, response.StatusCode);
        }

        if (response.StatusCode == HttpStatusCode.PartialContent)
        {
            throw new DeltaDownloadException($"Asked for {_uri} from byte {_position} of {_length}, the server sent {response.Content.Headers.ContentRange?.ToString() ?? "a range it did not name"}.", response.StatusCode);
        }

        throw response.StatusCode == HttpStatusCode.OK
            ? new DeltaDownloadException($"The server sent {_uri} whole again when asked for its bytes from {_position}: the delta changed on the server since this apply began (or its server stopped serving ranges). Start the apply again without --resume.", response.StatusCode)
            : new DeltaDownloadException($"GET {_uri} from byte {_position} answered {(int)response.StatusCode} {response.ReasonPhrase}.", response.StatusCode);
    }

    private static async Task<(HttpResponseMessage Response, Stream Body)> SendAsync(HttpClient http, Uri uri, long? from, RangeConditionHeaderValue? validator, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, uri);
        if (from is { } start)
        {
            request.Headers.Range = new RangeHeaderValue(start, null);
            request.Headers.IfRange = validator;
        }

        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e) when (from is null)
        {
            throw new DeltaDownloadException($"Cannot reach {uri}: {e.Message}", null, e);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            // HttpClient.Timeout: no answer in time.
            throw from is null ? new DeltaDownloadException($"{uri} gave no answer in {http.Timeout.TotalSeconds:F0} s.", null, e) : new IOException("no answer to the range request", e);
        }

        try
        {
            return (response, await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    private void CloseBody()
    {
        _body?.Dispose();
        _response?.Dispose();
        _body = null;
        _response = null;
    }
}
