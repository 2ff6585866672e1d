using EdgeUpdater.Trust.Keys;

namespace EdgeUpdater.Trust.Envelopes;

/// <summary>Whether a known key may still sign: it may be valid, expired or revoked.</summary>
internal enum SignerStanding
{
    Valid,
    Expired,
    Revoked,
}

/// <summary>A key the verifier knows for this document, with its standing and a note for messages.</summary>
internal sealed record KnownSigner(VerificationKey Key, SignerStanding Standing, string Note);

/// <summary>
/// Counts the distinct keys whose signature verifies and whose standing is valid, and when they are
/// fewer than the threshold, names the most telling reason (tampering before revocation before expiry
/// before unknown keys).
/// </summary>
internal static class SignatureCheck
{
    public static IReadOnlySet<string> RequireThreshold(
        SignedEnvelope envelope,
        IReadOnlyDictionary<string, KnownSigner> signers,
        int threshold,
        string document,
        TrustFailure unknownKeyFailure,
        string expectedSigners)
    {
        var signedBytes = envelope.GetSignedBytes();
        var valid = new HashSet<string>(StringComparer.Ordinal);
        var bad = new List<string>();
        var revoked = new List<KnownSigner>();
        var expired = new List<KnownSigner>();
        var unknown = new List<string>();
        foreach (var signature in envelope.Signatures)
        {
            if (!signers.TryGetValue(signature.KeyId, out var signer))
            {
                unknown.Add(signature.KeyId);
                continue;
            }

            if (!signer.Key.Verify(signedBytes, signature.Signature.Span))
            {
                bad.Add(signature.KeyId);
                continue;
            }

            switch (signer.Standing)
            {
                case SignerStanding.Valid:
                    valid.Add(signature.KeyId);
                    break;
                case SignerStanding.Expired:
                    expired.Add(signer);
                    break;
                default:
                    revoked.Add(signer);
                    break;
            }
        }

        if (valid.Count >= threshold)
        {
            return valid;
        }

        if (envelope.Signatures.Count == 0)
        {
            throw new TrustException(TrustFailure.MissingSignature, $"{document} carries no signature; expected {threshold} from {expectedSigners}");
        }

        if (valid.Count > 0)
        {
            throw new TrustException(
                TrustFailure.ThresholdNotMet,
                $"{document} has valid signatures from {valid.Count} distinct key(s) ({string.Join(", ", valid)}); {threshold} from {expectedSigners} are required"
                + Details(bad, revoked, expired, unknown));
        }

        if (bad.Count > 0)
        {
            throw new TrustException(
                TrustFailure.BadSignature,
                $"{document}: the signature by key {string.Join(", ", bad)} does not verify over the signed bytes (payload or payloadType changed, or the signature is corrupt)");
        }

        if (revoked.Count > 0)
        {
            throw new TrustException(TrustFailure.RevokedKey, $"{document} is signed by {string.Join(", ", revoked.Select(r => $"key {r.Key.KeyId} ({r.Note})"))}");
        }

        if (expired.Count > 0)
        {
            throw new TrustException(TrustFailure.ExpiredKey, $"{document} is signed by {string.Join(", ", expired.Select(r => $"key {r.Key.KeyId} ({r.Note})"))}");
        }

        throw new TrustException(unknownKeyFailure, $"{document} is signed by key(s) {string.Join(", ", unknown)}, none of which is among {expectedSigners}");
    }

    private static string Details(List<string> bad, List<KnownSigner> revoked, List<KnownSigner> expired, List<string> unknown)
    {
        var parts = new List<string>();
        if (bad.Count > 0)
        {
            parts.Add($"signature does not verify: {string.Join(", ", bad)}");
        }

        if (revoked.Count > 0)
        {
            parts.Add($"revoked: {string.Join(", ", revoked.Select(r => r.Key.KeyId))}");
        }

        if (expired.Count > 0)
        {
            parts.Add($"expired: {string.Join(", ", expired.Select(r => r.Key.KeyId))}");
        }

        if (unknown.Count > 0)
        {
            parts.Add($"unknown: {string.Join(", ", unknown)}");
        }

        return parts.Count == 0 ? string.Empty : $" ({string.Join("; ", parts)})";
    }
}
