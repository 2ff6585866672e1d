using EdgeUpdater.Trust.Keys;

namespace EdgeUpdater.Trust.KeySets;

/// <summary>
/// Root public keys and how many of them must sign a key set. On a device this is the pinned set
/// (installed with the agent); inside a chain it is the root set of the previous key set.
/// </summary>
public sealed class TrustRoot
{
    /// <summary>Creates a root set; keys must be distinct and 1 &lt;= threshold &lt;= keys.</summary>
    public TrustRoot(IEnumerable<VerificationKey> keys, int threshold = 1)
    {
        ArgumentNullException.ThrowIfNull(keys);
        Keys = [.. keys];
        if (Keys.Count == 0)
        {
            throw new ArgumentException("at least one root key is needed", nameof(keys));
        }

        if (Keys.Distinct().Count() != Keys.Count)
        {
            throw new ArgumentException("a root key is listed twice", nameof(keys));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(threshold, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(threshold, Keys.Count);
        Threshold = threshold;
    }

    /// <summary>The root public keys.</summary>
    public IReadOnlyList<VerificationKey> Keys { get; }

    /// <summary>How many distinct root keys must sign.</summary>
    public int Threshold { get; }

    /// <summary>The root set a key set declares for its successor.</summary>
    public static TrustRoot FromKeySet(KeySet keySet)
    {
        ArgumentNullException.ThrowIfNull(keySet);
        return new TrustRoot(keySet.Roots.Select(r => r.PublicKey), keySet.RootThreshold);
    }
}
