namespace EdgeUpdater.Trust.Envelopes;

/// <summary>One signature in an envelope: the signer's key id and the 64 signature bytes.</summary>
/// <param name="KeyId">Key id of the signing key (a hint for finding the key; the signature decides).</param>
/// <param name="Signature">The Ed25519 signature over the pre-authentication encoding.</param>
public sealed record EnvelopeSignature(string KeyId, ReadOnlyMemory<byte> Signature);
