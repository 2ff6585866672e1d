using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace EdgeUpdater.Agent.Manifest;

/// <summary>
/// Stand-in until EdgeUpdater.Trust lands (issue 3): a real signature check (ECDSA P-256 / SHA-256 over
/// the exact payload bytes, pinned SubjectPublicKeyInfo keys, base64) and the policy rules the agent
/// relies on. Its envelope is <c>{"payload": base64, "signatures": [base64, ...]}</c> with payload
/// <c>{"name","version","imageSha256","imageSize","kind","hardware":[],"architectures":[],"createdAt","expiresAt","allowDowngrade"}</c>.
/// Replaced by the trust library's verifier, not extended.
/// </summary>
internal sealed class InterimEcdsaReleaseVerifier : IReleaseVerifier
{
    private readonly IReadOnlyList<byte[]> _rootKeys;

    public InterimEcdsaReleaseVerifier(IEnumerable<string> rootKeysBase64)
    {
        _rootKeys = [.. rootKeysBase64.Select(Convert.FromBase64String)];
    }

    public VerifiedRelease Verify(ReadOnlySpan<byte> manifestEnvelope, ReleaseVerificationContext context)
    {
        InterimEnvelope envelope;
        byte[] payloadBytes;
        InterimManifest manifest;
        try
        {
            envelope = JsonSerializer.Deserialize(manifestEnvelope, InterimManifestJsonContext.Default.InterimEnvelope)
                ?? throw new ReleaseRejectedException(ReleaseRejection.Malformed, "manifest envelope is null");
            payloadBytes = Convert.FromBase64String(envelope.Payload ?? throw new ReleaseRejectedException(ReleaseRejection.Malformed, "manifest envelope has no payload"));
        }
        catch (Exception e) when (e is JsonException or FormatException)
        {
            throw new ReleaseRejectedException(ReleaseRejection.Malformed, $"manifest envelope is malformed: {e.Message}", e);
        }

        if (!HasValidSignature(payloadBytes, envelope.Signatures))
        {
            throw new ReleaseRejectedException(ReleaseRejection.BadSignature, "manifest signature does not verify against any pinned root key");
        }

        try
        {
            manifest = JsonSerializer.Deserialize(payloadBytes, InterimManifestJsonContext.Default.InterimManifest)
                ?? throw new ReleaseRejectedException(ReleaseRejection.Malformed, "manifest payload is null");
        }
        catch (JsonException e)
        {
            throw new ReleaseRejectedException(ReleaseRejection.Malformed, $"manifest payload is malformed: {e.Message}", e);
        }

        if (manifest.Name is null || manifest.Version is null || !Protocol.HttpRoutes.IsSha256(manifest.ImageSha256) || manifest.ImageSize <= 0)
        {
            throw new ReleaseRejectedException(ReleaseRejection.Malformed, "manifest lacks name, version, imageSha256 or imageSize");
        }

        if (manifest.ExpiresAt is { } expires && expires < context.Now)
        {
            throw new ReleaseRejectedException(ReleaseRejection.Expired, $"manifest expired at {expires:O}");
        }

        if (manifest.Hardware.Count > 0 && !manifest.Hardware.Contains(context.Hardware))
        {
            throw new ReleaseRejectedException(ReleaseRejection.HardwareMismatch, $"manifest is for hardware [{string.Join(", ", manifest.Hardware)}], this device is '{context.Hardware}'");
        }

        if (manifest.Architectures.Count > 0 && !manifest.Architectures.Contains(context.Architecture))
        {
            throw new ReleaseRejectedException(ReleaseRejection.HardwareMismatch, $"manifest is for architectures [{string.Join(", ", manifest.Architectures)}], this device is '{context.Architecture}'");
        }

        var kind = manifest.Kind ?? "app";
        if (kind != context.TargetKind)
        {
            throw new ReleaseRejectedException(ReleaseRejection.WrongTargetKind, $"manifest is for a '{kind}' target, this target is '{context.TargetKind}'");
        }

        if (context.InstalledVersion is { } installed && !manifest.AllowDowngrade)
        {
            if (!SemanticVersion.TryCompare(manifest.Version, installed, out var order))
            {
                throw new ReleaseRejectedException(ReleaseRejection.Malformed, $"cannot compare version '{manifest.Version}' with installed '{installed}'");
            }

            if (order < 0 || (order == 0 && !context.AllowSameVersion))
            {
                throw new ReleaseRejectedException(ReleaseRejection.NotNewer, $"version {manifest.Version} is not newer than installed {installed} and the manifest does not allow a downgrade");
            }
        }

        return new VerifiedRelease
        {
            Name = manifest.Name,
            Version = manifest.Version,
            ImageSha256 = manifest.ImageSha256!,
            ImageSize = manifest.ImageSize,
            TargetKind = kind,
            CreatedAt = manifest.CreatedAt,
        };
    }

    private bool HasValidSignature(byte[] payload, IReadOnlyList<string> signatures)
    {
        foreach (var signatureText in signatures)
        {
            byte[] signature;
            try
            {
                signature = Convert.FromBase64String(signatureText);
            }
            catch (FormatException)
            {
                continue;
            }

            foreach (var key in _rootKeys)
            {
                using var ecdsa = ECDsa.Create();
                ecdsa.ImportSubjectPublicKeyInfo(key, out _);
                if (ecdsa.VerifyData(payload, signature, HashAlgorithmName.SHA256))
                {
                    return true;
                }
            }
        }

        return false;
    }
}

internal sealed record InterimEnvelope
{
    public string? Payload { get; set; }

    public IReadOnlyList<string> Signatures { get; set; } = [];
}

internal sealed record InterimManifest
{
    public string? Name { get; set; }

    public string? Version { get; set; }

    public string? ImageSha256 { get; set; }

    public long ImageSize { get; set; }

    public string? Kind { get; set; }

    public IReadOnlyList<string> Hardware { get; set; } = [];

    public IReadOnlyList<string> Architectures { get; set; } = [];

    public DateTimeOffset? CreatedAt { get; set; }

    public DateTimeOffset? ExpiresAt { get; set; }

    public bool AllowDowngrade { get; set; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(InterimEnvelope))]
[JsonSerializable(typeof(InterimManifest))]
internal sealed partial class InterimManifestJsonContext : JsonSerializerContext
{
}
