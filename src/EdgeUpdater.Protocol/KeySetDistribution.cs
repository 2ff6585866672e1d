using System.Text.Json.Serialization;

namespace EdgeUpdater.Protocol;

/// <summary>
/// How devices get the key set chain their pinned roots verify (docs/keys.md: the server hands it to
/// devices with the manifests). <c>GET /v1/keysets</c> answers a <see cref="KeySetChain"/>, public and
/// revalidated with its ETag; operators append with <c>POST /v1/keysets</c> (the envelope as the body).
/// </summary>
public static class KeySetRoutes
{
    /// <summary>The chain (GET, public) and the operator upload of the next key set (POST, bearer token).</summary>
    public const string Chain = "/v1/keysets";
}

/// <summary>The key set envelopes the server holds, oldest first (the first is signed by the pinned roots).</summary>
public sealed record KeySetChain
{
    /// <summary>Payload schema version.</summary>
    public int Schema { get; init; } = ProtocolVersion.Current;

    /// <summary>Version of the newest key set (0 when there is none).</summary>
    public long NewestVersion { get; init; }

    /// <summary>The exact envelope bytes of each key set (base64 in JSON), oldest first.</summary>
    public IReadOnlyList<byte[]> KeySets { get; init; } = [];
}

/// <summary>Source-generated JSON for <see cref="KeySetChain"/> (trim- and AOT-safe, for the agent).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(KeySetChain))]
public sealed partial class KeySetJsonContext : JsonSerializerContext
{
}
