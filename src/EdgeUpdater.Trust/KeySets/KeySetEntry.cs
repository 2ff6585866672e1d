using System.Text.Json.Serialization;
using EdgeUpdater.Trust.Keys;

namespace EdgeUpdater.Trust.KeySets;

/// <summary>One key listed in a <see cref="KeySet"/>.</summary>
public sealed record KeySetEntry
{
    /// <summary>Key id of <see cref="PublicKey"/> (checked on parse).</summary>
    public required string KeyId { get; init; }

    /// <summary>The public key (JSON: base64 of the 32 raw bytes).</summary>
    public required VerificationKey PublicKey { get; init; }

    /// <summary>What the key may sign.</summary>
    public required KeyRole Role { get; init; }

    /// <summary>Release keys: after this instant the key no longer verifies. Root keys carry none.</summary>
    public DateTimeOffset? Expires { get; init; }

    /// <summary>Release keys: true when the key must not verify anything any more. Written only when true.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool Revoked { get; init; }

    /// <summary>Creates an entry for <paramref name="key"/> with its computed key id.</summary>
    public static KeySetEntry For(VerificationKey key, KeyRole role, DateTimeOffset? expires = null, bool revoked = false)
    {
        ArgumentNullException.ThrowIfNull(key);
        return new KeySetEntry { KeyId = key.KeyId, PublicKey = key, Role = role, Expires = expires, Revoked = revoked };
    }
}
