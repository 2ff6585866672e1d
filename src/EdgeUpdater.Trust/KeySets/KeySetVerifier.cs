using EdgeUpdater.Trust.Envelopes;

namespace EdgeUpdater.Trust.KeySets;

/// <summary>
/// Verifies key sets: each must be signed by the threshold of the root set before it (the pinned roots
/// for the first), by the threshold of its own root set, and by every root key it newly introduces
/// (proof of possession). Versions must grow along the chain.
/// </summary>
public static class KeySetVerifier
{
    /// <summary>
    /// Verifies a chain of key set envelopes, oldest first, from <paramref name="pinned"/> and returns the
    /// newest, which must not be expired at <paramref name="now"/> and must have at least
    /// <paramref name="minimumVersion"/> (the highest version this verifier accepted before).
    /// </summary>
    /// <exception cref="TrustException">
    /// <see cref="TrustFailure.KeySetNotChained"/>, <see cref="TrustFailure.BadSignature"/>,
    /// <see cref="TrustFailure.ThresholdNotMet"/>, <see cref="TrustFailure.MissingSignature"/>,
    /// <see cref="TrustFailure.KeySetRollback"/>, <see cref="TrustFailure.KeySetExpired"/>,
    /// <see cref="TrustFailure.WrongPayloadType"/>, <see cref="TrustFailure.Malformed"/>, <see cref="TrustFailure.UnknownSchema"/>.
    /// </exception>
    public static VerifiedKeySet VerifyChain(TrustRoot pinned, IReadOnlyList<ReadOnlyMemory<byte>> chain, DateTimeOffset now, long minimumVersion = 0)
    {
        ArgumentNullException.ThrowIfNull(pinned);
        ArgumentNullException.ThrowIfNull(chain);
        if (chain.Count == 0)
        {
            throw new TrustException(TrustFailure.KeySetNotChained, "no key set given; at least one key set signed by the pinned root keys is needed");
        }

        var roots = pinned;
        long previousVersion = 0;
        KeySet? newest = null;
        for (var i = 0; i < chain.Count; i++)
        {
            try
            {
                newest = VerifyLink(roots, previousVersion, chain[i].Span, i == 0 ? "the pinned root keys" : $"the root keys of key set v{previousVersion}");
            }
            catch (TrustException e)
            {
                throw new TrustException(e.Failure, $"key set chain entry {i} (oldest first): {e.Message}", e);
            }

            roots = TrustRoot.FromKeySet(newest);
            previousVersion = newest.Version;
        }

        if (newest!.Expires <= now)
        {
            throw new TrustException(TrustFailure.KeySetExpired, $"key set v{newest.Version} expired at {newest.Expires:O} (now {now:O}); the root key holders must sign a new one");
        }

        if (newest.Version < minimumVersion)
        {
            throw new TrustException(TrustFailure.KeySetRollback, $"newest key set is v{newest.Version}, but v{minimumVersion} has already been accepted; an older key set is not taken back");
        }

        return new VerifiedKeySet(newest, chain[^1].ToArray());
    }

    /// <summary>
    /// Verifies one key set envelope against the root set before it. <paramref name="previousVersion"/>
    /// is the version of the key set before it (0 when <paramref name="roots"/> are the pinned roots).
    /// Use it to check a newly signed key set before publishing it.
    /// </summary>
    public static KeySet VerifyLink(TrustRoot roots, long previousVersion, ReadOnlySpan<byte> envelopeBytes, string rootsDescription = "the previous root keys")
    {
        ArgumentNullException.ThrowIfNull(roots);
        var envelope = SignedEnvelope.Parse(envelopeBytes);
        if (envelope.PayloadType != PayloadTypes.KeySet)
        {
            throw new TrustException(TrustFailure.WrongPayloadType, $"expected a key set ({PayloadTypes.KeySet}), found payloadType '{envelope.PayloadType}'");
        }

        SignatureCheck.RequireThreshold(envelope, Signers(roots), roots.Threshold, "key set", TrustFailure.KeySetNotChained, rootsDescription);

        // The payload is authenticated by the previous roots from here on.
        var keySet = KeySet.Parse(envelope.Payload.Span);
        if (keySet.Version <= previousVersion)
        {
            throw new TrustException(TrustFailure.KeySetRollback, $"key set v{keySet.Version} does not follow v{previousVersion}; versions must grow");
        }

        var ownRoots = TrustRoot.FromKeySet(keySet);
        var signedByOwn = SignatureCheck.RequireThreshold(
            envelope, Signers(ownRoots), ownRoots.Threshold, $"key set v{keySet.Version}", TrustFailure.MissingSignature, $"its own root keys (proof of possession)");
        foreach (var root in ownRoots.Keys)
        {
            if (!roots.Keys.Contains(root) && !signedByOwn.Contains(root.KeyId))
            {
                throw new TrustException(TrustFailure.MissingSignature, $"key set v{keySet.Version} introduces root key {root.KeyId}, which has not signed it (a new root key must prove possession)");
            }
        }

        return keySet;
    }

    private static Dictionary<string, KnownSigner> Signers(TrustRoot roots)
        => roots.Keys.ToDictionary(k => k.KeyId, k => new KnownSigner(k, SignerStanding.Valid, "root"), StringComparer.Ordinal);
}
