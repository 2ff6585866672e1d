namespace EdgeUpdater.Trust.KeySets;

/// <summary>A key set whose chain from the pinned roots has been verified, with the envelope bytes it came in.</summary>
public sealed class VerifiedKeySet
{
    internal VerifiedKeySet(KeySet keySet, ReadOnlyMemory<byte> envelope)
    {
        KeySet = keySet;
        Envelope = envelope;
    }

    /// <summary>The verified key set (the newest of the chain).</summary>
    public KeySet KeySet { get; }

    /// <summary>The envelope bytes of the key set, for persisting it.</summary>
    public ReadOnlyMemory<byte> Envelope { get; }

    /// <summary>Its version.</summary>
    public long Version => KeySet.Version;

    /// <summary>Its root set: a device may pin it after persisting this key set (docs/keys.md).</summary>
    public TrustRoot Roots => TrustRoot.FromKeySet(KeySet);
}
