using System.CommandLine;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using EdgeUpdater.Protocol;

namespace EdgeUpdater.Cli.Commands;

/// <summary>The server refused a request (HTTP 4xx/5xx) with a reason.</summary>
internal sealed class ServerRefusedException(HttpStatusCode status, string reason, string message) : Exception(message)
{
    public HttpStatusCode Status { get; } = status;

    public string Reason { get; } = reason;
}

/// <summary>
/// The operator API from the command line: server URL and bearer token from options or the
/// environment (<c>EDGEUPDATER_SERVER</c>, <c>EDGEUPDATER_TOKEN</c>), JSON through the Protocol's
/// source-generated contexts, and one mapping of failures to exit codes.
/// </summary>
internal sealed class ServerClient : IDisposable
{
    /// <summary>Reason names that mean a signature, hash or policy check refused the upload.</summary>
    private static readonly HashSet<string> VerificationReasons = new(StringComparer.Ordinal)
    {
        "missing-signature", "bad-signature", "unknown-key", "expired-key", "revoked-key", "threshold-not-met",
        "key-set-not-chained", "key-set-expired", "key-set-rollback", "manifest-expired", "wrong-payload-type",
        "malformed", "unknown-schema", "hash-mismatch", "size-mismatch", "not-an-image", "manifest-image-mismatch",
    };

    private readonly HttpClient _http;

    private ServerClient(HttpClient http)
    {
        _http = http;
    }

    public static Option<string?> ServerOption() => new("--server") { Description = "Server base URL (default: $EDGEUPDATER_SERVER)." };

    public static Option<string?> TokenOption() => new("--token") { Description = "Operator bearer token (default: $EDGEUPDATER_TOKEN)." };

    public static Option<string?> TokenFileOption() => new("--token-file") { Description = "File whose first line is the operator token (e.g. DATA/operator-token)." };

    public static async Task<ServerClient> CreateAsync(ParseResult parse, Option<string?> server, Option<string?> token, Option<string?> tokenFile, CancellationToken cancellationToken)
    {
        var url = parse.GetValue(server) ?? Environment.GetEnvironmentVariable("EDGEUPDATER_SERVER")
            ?? throw new CommandUsageException("--server is required (or set EDGEUPDATER_SERVER)");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var baseAddress) || baseAddress.Scheme is not ("http" or "https"))
        {
            throw new CommandUsageException($"--server '{url}' is not an http:// or https:// URL");
        }

        var secret = parse.GetValue(token);
        if (parse.GetValue(tokenFile) is { } file)
        {
            secret = (await File.ReadAllLinesAsync(file, cancellationToken).ConfigureAwait(false)).FirstOrDefault()?.Trim();
        }

        secret ??= Environment.GetEnvironmentVariable("EDGEUPDATER_TOKEN");
        if (string.IsNullOrEmpty(secret))
        {
            throw new CommandUsageException("an operator token is required: --token, --token-file or EDGEUPDATER_TOKEN");
        }

        var http = new HttpClient { BaseAddress = baseAddress, Timeout = Timeout.InfiniteTimeSpan };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", secret);
        return new ServerClient(http);
    }

    /// <summary>Sends a request and reads the JSON answer; throws <see cref="ServerRefusedException"/> on an error status.</summary>
    public async Task<(T Body, HttpStatusCode Status)> SendAsync<T>(HttpRequestMessage request, JsonTypeInfo<T> type, CancellationToken cancellationToken)
    {
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        var bytes = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            ApiError? error = null;
            try
            {
                error = JsonSerializer.Deserialize(bytes, OperatorJsonContext.Default.ApiError);
            }
            catch (JsonException)
            {
            }

            throw new ServerRefusedException(
                response.StatusCode,
                error?.Reason ?? "http-" + (int)response.StatusCode,
                error?.Message ?? $"the server answered {(int)response.StatusCode} {response.ReasonPhrase}");
        }

        return (JsonSerializer.Deserialize(bytes, type) ?? throw new IOException("the server answered JSON null"), response.StatusCode);
    }

    public void Dispose() => _http.Dispose();

    /// <summary>Runs a server command body and maps its failures to exit codes and one-line messages.</summary>
    public static async Task<int> RunAsync(ParseResult parse, Func<TextWriter, Task<int>> body)
    {
        var error = parse.InvocationConfiguration.Error;
        try
        {
            return await KeyMaterial.RunAsync(parse, body).ConfigureAwait(false);
        }
        catch (ServerRefusedException e)
        {
            await error.WriteLineAsync($"edgeupdater: the server refused ({(int)e.Status} {e.Reason}): {e.Message}").ConfigureAwait(false);
            return VerificationReasons.Contains(e.Reason) ? ExitCodes.VerificationFailed : (int)e.Status >= 500 ? ExitCodes.Failure : ExitCodes.Rejected;
        }
        catch (HttpRequestException e)
        {
            await error.WriteLineAsync($"edgeupdater: cannot reach the server: {e.Message}").ConfigureAwait(false);
            return ExitCodes.Failure;
        }
    }
}
