using System.Text.Json.Serialization;
using EdgeUpdater.Trust.Keys;
using EdgeUpdater.Trust.Serialization;

namespace EdgeUpdater.Trust.KeySets;

/// <summary>
/// The keys a fleet trusts at one point in time: root keys (which sign key sets) and release keys (which
/// sign manifests), with thresholds, a version that only grows and an expiry. The payload of a
/// <see cref="Envelopes.PayloadTypes.KeySet"/> envelope; see docs/keys.md and docs/manifest-format.md.
/// </summary>
public sealed record KeySet
{
    /// <summary>The schema number this library writes and understands.</summary>
    public const int CurrentSchema = 1;

    /// <summary>Schema number of the payload.</summary>
    [JsonRequired]
    public int Schema { get; init; } = CurrentSchema;

    /// <summary>Version (>= 1); every new key set has a higher one, so an old set cannot be replayed.</summary>
    public required long Version { get; init; }

    /// <summary>When the key set was signed.</summary>
    public required DateTimeOffset Created { get; init; }

    /// <summary>After this instant the key set (and so every manifest relying on it) is refused.</summary>
    public required DateTimeOffset Expires { get; init; }

    /// <summary>How many distinct root keys of this set must sign the next key set (and this one).</summary>
    public required int RootThreshold { get; init; }

    /// <summary>How many distinct release keys must sign a manifest.</summary>
    public required int ReleaseThreshold { get; init; }

    /// <summary>Root and release keys.</summary>
    public required IReadOnlyList<KeySetEntry> Keys { get; init; }

    /// <summary>The root keys of this set.</summary>
    [JsonIgnore]
    public IEnumerable<KeySetEntry> Roots => Keys.Where(k => k.Role == KeyRole.Root);

    /// <summary>The release keys of this set.</summary>
    [JsonIgnore]
    public IEnumerable<KeySetEntry> ReleaseKeys => Keys.Where(k => k.Role == KeyRole.Release);

    /// <summary>The exact payload bytes (compact UTF-8 JSON) after checking every field.</summary>
    public byte[] ToPayloadBytes()
    {
        Validate();
        return TrustJson.Serialize(this, TrustJsonContext.Default.KeySet);
    }

    /// <summary>Parses and checks key set payload bytes.</summary>
    /// <exception cref="TrustException"><see cref="TrustFailure.UnknownSchema"/> or <see cref="TrustFailure.Malformed"/>.</exception>
    public static KeySet Parse(ReadOnlySpan<byte> payload)
    {
        var keySet = TrustJson.Deserialize(payload, CurrentSchema, "key set", TrustJsonContext.Default.KeySet);
        keySet.Validate();
        return keySet;
    }

    /// <summary>Checks every rule; throws <see cref="TrustFailure.Malformed"/> naming the field.</summary>
    public void Validate()
    {
        if (Schema != CurrentSchema)
        {
            throw new TrustException(TrustFailure.UnknownSchema, $"key set schema {Schema} is not supported; expected {CurrentSchema}");
        }

        if (Version < 1)
        {
            throw new TrustException(TrustFailure.Malformed, $"keySet.version is {Version}; expected >= 1");
        }

        if (Expires <= Created)
        {
            throw new TrustException(TrustFailure.Malformed, $"keySet.expires ({Expires:O}) is not after keySet.created ({Created:O})");
        }

        if (Keys is null || Keys.Count > FieldRules.MaxListLength)
        {
            throw new TrustException(TrustFailure.Malformed, $"keySet.keys must list at most {FieldRules.MaxListLength} keys");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < Keys.Count; i++)
        {
            var entry = Keys[i];
            var field = $"keySet.keys[{i}]";
            if (entry.KeyId != entry.PublicKey.KeyId)
            {
                throw new TrustException(TrustFailure.Malformed, $"{field}.keyId is '{entry.KeyId}', but its public key's id is '{entry.PublicKey.KeyId}'");
            }

            if (!seen.Add(entry.KeyId))
            {
                throw new TrustException(TrustFailure.Malformed, $"{field}: key {entry.KeyId} is listed twice (one key has one role)");
            }

            if (entry.Role == KeyRole.Root && (entry.Expires is not null || entry.Revoked))
            {
                throw new TrustException(TrustFailure.Malformed, $"{field}: root key {entry.KeyId} carries expires/revoked; root keys are retired by rotation, not by expiry");
            }

            if (entry.Role == KeyRole.Release && entry.Expires is null)
            {
                throw new TrustException(TrustFailure.Malformed, $"{field}: release key {entry.KeyId} has no expires");
            }
        }

        var roots = Roots.Count();
        if (roots == 0)
        {
            throw new TrustException(TrustFailure.Malformed, "keySet.keys lists no root key");
        }

        if (RootThreshold < 1 || RootThreshold > roots)
        {
            throw new TrustException(TrustFailure.Malformed, $"keySet.rootThreshold is {RootThreshold}; expected 1..{roots} (the number of root keys)");
        }

        if (ReleaseThreshold < 1)
        {
            throw new TrustException(TrustFailure.Malformed, $"keySet.releaseThreshold is {ReleaseThreshold}; expected >= 1");
        }
    }
}
