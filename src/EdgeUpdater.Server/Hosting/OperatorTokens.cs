using System.Security.Cryptography;
using System.Text;

namespace EdgeUpdater.Server.Hosting;

/// <summary>
/// The operator API's bearer tokens: from the settings, a token file, or (when neither is given)
/// generated once into <c>{data}/operator-token</c> with mode 0600. Compared as SHA-256 digests in
/// constant time.
/// </summary>
internal sealed class OperatorTokens
{
    private readonly List<byte[]> _digests = [];

    public OperatorTokens(ServerOptions options, ILogger<OperatorTokens> logger)
    {
        var tokens = new List<string>(options.Operator.Tokens);
        if (options.Operator.TokenFile is { } file)
        {
            tokens.AddRange(File.ReadAllLines(file).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')));
        }

        if (tokens.Count == 0)
        {
            var generated = Path.Combine(options.DataDirectory, "operator-token");
            if (!File.Exists(generated))
            {
                var token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
                using (var stream = new FileStream(generated, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
                using (var writer = new StreamWriter(stream))
                {
                    writer.WriteLine(token);
                }

                logger.LogWarning("No operator token configured: generated one into {File}", generated);
            }

            tokens.Add(File.ReadAllText(generated).Trim());
        }

        foreach (var token in tokens)
        {
            _digests.Add(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
        }

        First = tokens[0];
    }

    /// <summary>The first configured token (for the in-process host and its tests).</summary>
    public string First { get; }

    public bool IsValid(string? token)
    {
        if (string.IsNullOrEmpty(token))
        {
            return false;
        }

        var digest = SHA256.HashData(Encoding.UTF8.GetBytes(token));
        var ok = false;
        foreach (var expected in _digests)
        {
            ok |= CryptographicOperations.FixedTimeEquals(digest, expected);
        }

        return ok;
    }
}

/// <summary>Rejects operator requests without a valid <c>Authorization: Bearer</c> token.</summary>
internal sealed class OperatorTokenFilter : IEndpointFilter
{
    private readonly OperatorTokens _tokens;

    public OperatorTokenFilter(OperatorTokens tokens)
    {
        _tokens = tokens;
    }

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var header = context.HttpContext.Request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        var token = header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) ? header[scheme.Length..].Trim() : null;
        if (!_tokens.IsValid(token))
        {
            context.HttpContext.Response.Headers.WWWAuthenticate = "Bearer";
            return ApiResults.Error(StatusCodes.Status401Unauthorized, "unauthorized", "the operator API needs 'Authorization: Bearer <operator token>'");
        }

        return await next(context).ConfigureAwait(false);
    }
}
