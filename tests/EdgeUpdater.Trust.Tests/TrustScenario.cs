using System.Text.Json.Nodes;
using EdgeUpdater.Trust.Envelopes;
using EdgeUpdater.Trust.Keys;
using EdgeUpdater.Trust.KeySets;
using EdgeUpdater.Trust.Manifests;
using EdgeUpdater.Trust.Policy;
using EdgeUpdater.Trust.Versioning;

namespace EdgeUpdater.Trust.Tests;

/// <summary>
/// A small fleet's trust setup for tests: one pinned root, one release key, a key set v1 and a valid
/// manifest, all at a fixed clock. Tests change one thing at a time from here.
/// </summary>
internal sealed class TrustScenario : IDisposable
{
    public static readonly DateTimeOffset Now = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);

    public const string ImageSha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    public SigningKey Root { get; } = SigningKey.Generate();

    public SigningKey Release { get; } = SigningKey.Generate();

    public TrustRoot PinnedRoots => new([Root.PublicKey]);

    public KeySet KeySet(long version = 1, IEnumerable<KeySetEntry>? keys = null, int rootThreshold = 1, int releaseThreshold = 1, DateTimeOffset? expires = null)
        => new()
        {
            Version = version,
            Created = Now.AddDays(-10),
            Expires = expires ?? Now.AddDays(365),
            RootThreshold = rootThreshold,
            ReleaseThreshold = releaseThreshold,
            Keys = keys?.ToList() ?? [KeySetEntry.For(Root.PublicKey, KeyRole.Root), ReleaseEntry(Release)],
        };

    public static KeySetEntry ReleaseEntry(SigningKey key, DateTimeOffset? expires = null, bool revoked = false)
        => KeySetEntry.For(key.PublicKey, KeyRole.Release, expires ?? Now.AddDays(180), revoked);

    public static byte[] Sign(KeySet keySet, params SigningKey[] signers)
        => SignedEnvelope.Create(PayloadTypes.KeySet, keySet.ToPayloadBytes(), signers).ToJsonBytes();

    public static byte[] Sign(ReleaseManifest manifest, params SigningKey[] signers)
        => SignedEnvelope.Create(PayloadTypes.ReleaseManifest, manifest.ToPayloadBytes(), signers).ToJsonBytes();

    public byte[] KeySetEnvelope() => Sign(KeySet(), Root);

    public static ReleaseManifest Manifest(string version = "2.0.0") => new()
    {
        Name = "sensor-app",
        Version = SemanticVersion.Parse(version),
        TargetKind = TargetKind.App,
        ImageSha256 = ImageSha256,
        ImageSize = 4,
        Hardware = ["rpi4", "rpi5"],
        Architectures = ["arm64"],
        Created = Now.AddHours(-1),
        Expires = Now.AddDays(30),
        MinAgentVersion = SemanticVersion.Parse("1.0.0"),
        AllowDowngrade = false,
    };

    public byte[] ManifestEnvelope(ReleaseManifest? manifest = null) => Sign(manifest ?? Manifest(), Release);

    public TrustContext Context(params byte[][] keySetChain) => new()
    {
        PinnedRoots = PinnedRoots,
        KeySetChain = keySetChain.Length == 0 ? [KeySetEnvelope()] : [.. keySetChain.Select(b => (ReadOnlyMemory<byte>)b)],
        Now = Now,
        Device = new DeviceFacts { Hardware = "rpi4", Architecture = "arm64", AgentVersion = SemanticVersion.Parse("1.2.0") },
        Installed = new InstalledRelease { Version = SemanticVersion.Parse("1.5.0"), ManifestCreated = Now.AddDays(-20) },
    };

    /// <summary>The envelope with its payload replaced by <paramref name="payload"/>, signatures kept.</summary>
    public static byte[] WithPayload(byte[] envelopeJson, byte[] payload)
    {
        var node = JsonNode.Parse(envelopeJson)!;
        node["payload"] = Convert.ToBase64String(payload);
        return System.Text.Encoding.UTF8.GetBytes(node.ToJsonString());
    }

    public static byte[] PayloadOf(byte[] envelopeJson) => SignedEnvelope.Parse(envelopeJson).Payload.ToArray();

    /// <summary>Every way of changing one leaf or one list of a payload's JSON: the mutated payloads with a label.</summary>
    public static IEnumerable<(string Label, byte[] Payload)> EveryFieldTampered(byte[] payload)
    {
        var root = JsonNode.Parse(payload)!;
        foreach (var path in LeafPaths(root, string.Empty))
        {
            var copy = JsonNode.Parse(payload)!;
            var (parent, key) = Resolve(copy, path);
            var value = Get(parent, key)!;
            JsonNode replacement = value switch
            {
                JsonArray array => array.Count > 1 ? RemoveFirst(array) : AppendCopy(array),
                _ when value.GetValueKind() == System.Text.Json.JsonValueKind.String => JsonValue.Create(Mutate(value.GetValue<string>()))!,
                _ when value.GetValueKind() == System.Text.Json.JsonValueKind.Number => JsonValue.Create(value.GetValue<long>() + 1)!,
                _ => JsonValue.Create(!value.GetValue<bool>())!,
            };
            Set(parent, key, replacement);
            yield return (path, System.Text.Encoding.UTF8.GetBytes(copy.ToJsonString()));
        }

        // A field added, a field removed, and a change that leaves the JSON meaning intact.
        var added = JsonNode.Parse(payload)!.AsObject();
        added["extra"] = true;
        yield return ("+extra", System.Text.Encoding.UTF8.GetBytes(added.ToJsonString()));
        var removed = JsonNode.Parse(payload)!.AsObject();
        removed.Remove(removed.Last().Key);
        yield return ("-last field", System.Text.Encoding.UTF8.GetBytes(removed.ToJsonString()));
        yield return ("trailing space", [.. payload, (byte)' ']);
    }

    private static string Mutate(string value)
    {
        if (value.Length == 0)
        {
            return "x";
        }

        // Change the last character but keep it in the same class, so the value still looks well-formed.
        var last = value[^1];
        var replacement = char.IsDigit(last) ? (last == '9' ? '8' : (char)(last + 1)) : char.IsLetter(last) ? (last == 'a' ? 'b' : 'a') : 'x';
        return value[..^1] + replacement;
    }

    private static JsonArray RemoveFirst(JsonArray array)
    {
        var copy = JsonNode.Parse(array.ToJsonString())!.AsArray();
        copy.RemoveAt(0);
        return copy;
    }

    private static JsonArray AppendCopy(JsonArray array)
    {
        var copy = JsonNode.Parse(array.ToJsonString())!.AsArray();
        copy.Add(JsonNode.Parse(array[0]!.ToJsonString()));
        return copy;
    }

    private static IEnumerable<string> LeafPaths(JsonNode node, string prefix)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (key, child) in obj)
                {
                    foreach (var p in LeafPaths(child!, prefix + "/" + key))
                    {
                        yield return p;
                    }
                }

                break;
            case JsonArray array:
                yield return prefix;
                for (var i = 0; i < array.Count; i++)
                {
                    foreach (var p in LeafPaths(array[i]!, prefix + "/" + i))
                    {
                        yield return p;
                    }
                }

                break;
            default:
                yield return prefix;
                break;
        }
    }

    private static (JsonNode Parent, string Key) Resolve(JsonNode root, string path)
    {
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var node = root;
        foreach (var part in parts[..^1])
        {
            node = node is JsonArray a ? a[int.Parse(part, System.Globalization.CultureInfo.InvariantCulture)]! : node[part]!;
        }

        return (node, parts[^1]);
    }

    private static JsonNode? Get(JsonNode parent, string key)
        => parent is JsonArray a ? a[int.Parse(key, System.Globalization.CultureInfo.InvariantCulture)] : parent[key];

    private static void Set(JsonNode parent, string key, JsonNode value)
    {
        if (parent is JsonArray a)
        {
            a[int.Parse(key, System.Globalization.CultureInfo.InvariantCulture)] = value;
        }
        else
        {
            parent[key] = value;
        }
    }

    public void Dispose()
    {
        Root.Dispose();
        Release.Dispose();
    }
}
