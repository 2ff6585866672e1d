using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using EdgeUpdater.Agent.Interop.Linux;
using EdgeUpdater.Protocol;

namespace EdgeUpdater.Agent.Manifest;

/// <summary>
/// Where the key set chain comes from: the server's <c>GET /v1/keysets</c> (revalidated with its ETag,
/// kept on disk so that a device offline from the server still verifies with the newest chain it saw),
/// else the chain installed with the agent. Whatever comes from the server is verified from the pinned
/// roots like everything else; this class only fetches and keeps bytes.
/// </summary>
internal sealed class KeySetChainSource
{
    private readonly IReadOnlyList<ReadOnlyMemory<byte>> _installed;
    private readonly string _cachePath;

    public KeySetChainSource(IReadOnlyList<ReadOnlyMemory<byte>> installed, string stateDirectory)
    {
        _installed = installed;
        _cachePath = Path.Combine(stateDirectory, "keysets.json");
    }

    /// <summary>The chain to verify with now; never throws for network trouble (the installed or cached chain is used).</summary>
    public async Task<IReadOnlyList<ReadOnlyMemory<byte>>> GetAsync(HttpClient http, Uri? server, CancellationToken cancellationToken)
    {
        var cached = ReadCache();
        if (server is not null)
        {
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(server, KeySetRoutes.Chain));
                if (cached?.ETag is { } etag && EntityTagHeaderValue.TryParse(etag, out var tag))
                {
                    request.Headers.IfNoneMatch.Add(tag);
                }

                using var response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
                    var chain = JsonSerializer.Deserialize(body, KeySetJsonContext.Default.KeySetChain);
                    if (chain is { KeySets.Count: > 0 })
                    {
                        cached = new CachedChain(chain, response.Headers.ETag?.ToString());
                        WriteCache(body, cached.ETag);
                    }
                }
            }
            catch (Exception e) when (e is HttpRequestException or JsonException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
                // Offline or a bad answer: verify with what we have; a missing key set shows as a trust failure.
            }
        }

        return cached is not null && cached.Chain.KeySets.Count >= _installed.Count
            ? [.. cached.Chain.KeySets.Select(k => (ReadOnlyMemory<byte>)k)]
            : _installed;
    }

    private sealed record CachedChain(KeySetChain Chain, string? ETag);

    private CachedChain? ReadCache()
    {
        try
        {
            if (!File.Exists(_cachePath))
            {
                return null;
            }

            var chain = JsonSerializer.Deserialize(File.ReadAllBytes(_cachePath), KeySetJsonContext.Default.KeySetChain);
            var etagPath = _cachePath + ".etag";
            return chain is null ? null : new CachedChain(chain, File.Exists(etagPath) ? File.ReadAllText(etagPath) : null);
        }
        catch (Exception e) when (e is IOException or JsonException)
        {
            return null;
        }
    }

    private void WriteCache(byte[] body, string? etag)
    {
        var directory = Path.GetDirectoryName(_cachePath)!;
        Directory.CreateDirectory(directory);
        foreach (var (path, bytes) in new[] { (_cachePath, body), (_cachePath + ".etag", System.Text.Encoding.UTF8.GetBytes(etag ?? string.Empty)) })
        {
            var temp = path + ".tmp";
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
        }

        Libc.FsyncDirectory(directory);
    }
}
