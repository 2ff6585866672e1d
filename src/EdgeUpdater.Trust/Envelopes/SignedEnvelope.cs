using System.Text.Json;
using EdgeUpdater.Trust.Keys;
using EdgeUpdater.Trust.Serialization;

namespace EdgeUpdater.Trust.Envelopes;

/// <summary>
/// A signed document: the exact payload bytes, their type, and the signatures over
/// <see cref="PreAuthenticationEncoding"/> of both. JSON on disk and on the wire:
/// <c>{"payloadType": "...", "payload": "base64", "signatures": [{"keyId": "...", "sig": "base64"}]}</c>.
/// Parsing checks only the shape; who signed and whether that suffices is the verifiers' job.
/// </summary>
public sealed class SignedEnvelope
{
    /// <summary>Largest envelope accepted, in bytes (a manifest or key set is a few KiB).</summary>
    public const int MaxEnvelopeSize = 1024 * 1024;

    /// <summary>Most signatures accepted in one envelope (bounds the verification work).</summary>
    public const int MaxSignatures = 32;

    private SignedEnvelope(string payloadType, ReadOnlyMemory<byte> payload, IReadOnlyList<EnvelopeSignature> signatures)
    {
        PayloadType = payloadType;
        Payload = payload;
        Signatures = signatures;
    }

    /// <summary>What the payload is (<see cref="PayloadTypes"/>).</summary>
    public string PayloadType { get; }

    /// <summary>The exact payload bytes that were signed.</summary>
    public ReadOnlyMemory<byte> Payload { get; }

    /// <summary>The signatures, in envelope order.</summary>
    public IReadOnlyList<EnvelopeSignature> Signatures { get; }

    /// <summary>Signs <paramref name="payload"/> as <paramref name="payloadType"/> with every key in <paramref name="signers"/>.</summary>
    public static SignedEnvelope Create(string payloadType, ReadOnlyMemory<byte> payload, IEnumerable<SigningKey> signers)
    {
        ArgumentNullException.ThrowIfNull(signers);
        ValidatePayloadType(payloadType);
        var envelope = new SignedEnvelope(payloadType, payload.ToArray(), []);
        foreach (var signer in signers)
        {
            envelope = envelope.AddSignature(signer);
        }

        return envelope;
    }

    /// <summary>Returns a copy with one more signature, by <paramref name="signer"/> (co-signing for a threshold).</summary>
    public SignedEnvelope AddSignature(SigningKey signer)
    {
        ArgumentNullException.ThrowIfNull(signer);
        if (Signatures.Any(s => s.KeyId == signer.KeyId))
        {
            throw new InvalidOperationException($"key {signer.KeyId} has already signed this envelope");
        }

        if (Signatures.Count >= MaxSignatures)
        {
            throw new InvalidOperationException($"an envelope holds at most {MaxSignatures} signatures");
        }

        var signature = new EnvelopeSignature(signer.KeyId, signer.Sign(GetSignedBytes()));
        return new SignedEnvelope(PayloadType, Payload, [.. Signatures, signature]);
    }

    /// <summary>The exact bytes each signature covers.</summary>
    public byte[] GetSignedBytes() => PreAuthenticationEncoding.Encode(PayloadType, Payload.Span);

    /// <summary>Parses envelope JSON.</summary>
    /// <exception cref="TrustException"><see cref="TrustFailure.Malformed"/> with what is wrong and where.</exception>
    public static SignedEnvelope Parse(ReadOnlySpan<byte> json)
    {
        if (json.Length > MaxEnvelopeSize)
        {
            throw new TrustException(TrustFailure.Malformed, $"envelope is {json.Length} bytes; at most {MaxEnvelopeSize} are accepted");
        }

        EnvelopeDocument? document;
        try
        {
            document = JsonSerializer.Deserialize(json, TrustJsonContext.Default.EnvelopeDocument);
        }
        catch (JsonException e)
        {
            throw new TrustException(TrustFailure.Malformed, $"envelope is not valid JSON of the expected shape: {e.Message}", e);
        }

        if (document is null)
        {
            throw new TrustException(TrustFailure.Malformed, "envelope is JSON null; expected an object with payloadType, payload and signatures");
        }

        ValidatePayloadType(document.PayloadType);
        if (document.Signatures.Count > MaxSignatures)
        {
            throw new TrustException(TrustFailure.Malformed, $"envelope has {document.Signatures.Count} signatures; at most {MaxSignatures} are accepted");
        }

        var signatures = new List<EnvelopeSignature>(document.Signatures.Count);
        for (var i = 0; i < document.Signatures.Count; i++)
        {
            var entry = document.Signatures[i];
            if (entry.KeyId.Length != VerificationKey.KeyIdLength || !entry.KeyId.All(char.IsAsciiHexDigitLower))
            {
                throw new TrustException(TrustFailure.Malformed, $"signatures[{i}].keyId '{entry.KeyId}' is not {VerificationKey.KeyIdLength} lowercase hex characters");
            }

            if (entry.Sig.Length != VerificationKey.SignatureSize)
            {
                throw new TrustException(TrustFailure.Malformed, $"signatures[{i}].sig has {entry.Sig.Length} bytes; an Ed25519 signature has {VerificationKey.SignatureSize}");
            }

            signatures.Add(new EnvelopeSignature(entry.KeyId, entry.Sig));
        }

        return new SignedEnvelope(document.PayloadType, document.Payload, signatures);
    }

    /// <summary>The envelope as indented UTF-8 JSON (the file and wire format).</summary>
    public byte[] ToJsonBytes()
    {
        var document = new EnvelopeDocument
        {
            PayloadType = PayloadType,
            Payload = Payload.ToArray(),
            Signatures = [.. Signatures.Select(s => new EnvelopeSignatureDocument { KeyId = s.KeyId, Sig = s.Signature.ToArray() })],
        };
        return TrustJson.Serialize(document, TrustJsonContext.Default.EnvelopeDocument, indented: true);
    }

    private static void ValidatePayloadType(string payloadType)
    {
        ArgumentNullException.ThrowIfNull(payloadType);
        if (payloadType.Length is 0 or > 256 || !payloadType.All(c => c is >= '!' and <= '~'))
        {
            throw new TrustException(TrustFailure.Malformed, $"payloadType '{payloadType}' must be 1-256 printable ASCII characters without spaces");
        }
    }
}
