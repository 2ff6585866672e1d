using System.Text.Json.Serialization;
using EdgeUpdater.Trust.Serialization;
using EdgeUpdater.Trust.Versioning;

namespace EdgeUpdater.Trust.Manifests;

/// <summary>
/// What a signed release promises about one image: its hash and size, name and version, where it may be
/// installed and until when. The payload of a <see cref="Envelopes.PayloadTypes.ReleaseManifest"/>
/// envelope; field by field in docs/manifest-format.md.
/// </summary>
public sealed record ReleaseManifest
{
    /// <summary>The schema number this library writes and understands.</summary>
    public const int CurrentSchema = 1;

    /// <summary>Schema number of the payload; verifiers refuse numbers they do not know.</summary>
    [JsonRequired]
    public int Schema { get; init; } = CurrentSchema;

    /// <summary>Image name (1-128 of <c>[A-Za-z0-9._:-]</c>).</summary>
    public required string Name { get; init; }

    /// <summary>Image version (Semantic Versioning 2.0.0).</summary>
    public required SemanticVersion Version { get; init; }

    /// <summary>What the image updates.</summary>
    public required TargetKind TargetKind { get; init; }

    /// <summary>Optional name of the target (slot pair or app) on the device; null means the image name.</summary>
    public string? Target { get; init; }

    /// <summary>SHA-256 of the whole image file, 64 lowercase hex characters.</summary>
    public required string ImageSha256 { get; init; }

    /// <summary>Size of the image file in bytes.</summary>
    public required long ImageSize { get; init; }

    /// <summary>Hardware ids the image may be installed on (at least one).</summary>
    public required IReadOnlyList<string> Hardware { get; init; }

    /// <summary>CPU architectures the image may be installed on (at least one), e.g. <c>arm64</c>, <c>x64</c>.</summary>
    public required IReadOnlyList<string> Architectures { get; init; }

    /// <summary>When the manifest was signed; a device refuses one older than its installed manifest.</summary>
    public required DateTimeOffset Created { get; init; }

    /// <summary>After this instant the manifest is refused.</summary>
    public required DateTimeOffset Expires { get; init; }

    /// <summary>Optional lowest agent version that may install the image.</summary>
    public SemanticVersion? MinAgentVersion { get; init; }

    /// <summary>True only when the release may replace a newer or equal installed version.</summary>
    public required bool AllowDowngrade { get; init; }

    /// <summary>The exact payload bytes (compact UTF-8 JSON) after checking every field.</summary>
    /// <exception cref="TrustException"><see cref="TrustFailure.Malformed"/> when a field breaks a rule.</exception>
    public byte[] ToPayloadBytes()
    {
        Validate();
        return TrustJson.Serialize(this, TrustJsonContext.Default.ReleaseManifest);
    }

    /// <summary>Parses and checks manifest payload bytes.</summary>
    /// <exception cref="TrustException"><see cref="TrustFailure.UnknownSchema"/> or <see cref="TrustFailure.Malformed"/>.</exception>
    public static ReleaseManifest Parse(ReadOnlySpan<byte> payload)
    {
        var manifest = TrustJson.Deserialize(payload, CurrentSchema, "manifest", TrustJsonContext.Default.ReleaseManifest);
        manifest.Validate();
        return manifest;
    }

    /// <summary>Checks every field rule; throws <see cref="TrustFailure.Malformed"/> naming the field.</summary>
    public void Validate()
    {
        if (Schema != CurrentSchema)
        {
            throw new TrustException(TrustFailure.UnknownSchema, $"manifest schema {Schema} is not supported; expected {CurrentSchema}");
        }

        FieldRules.RequireName("manifest.name", Name);
        if (Target is not null)
        {
            FieldRules.RequireName("manifest.target", Target);
        }

        FieldRules.RequireSha256("manifest.imageSha256", ImageSha256);
        if (ImageSize < 0)
        {
            throw new TrustException(TrustFailure.Malformed, $"manifest.imageSize is {ImageSize}; expected a byte count >= 0");
        }

        FieldRules.RequireNameList("manifest.hardware", Hardware);
        FieldRules.RequireNameList("manifest.architectures", Architectures);
        if (Expires <= Created)
        {
            throw new TrustException(TrustFailure.Malformed, $"manifest.expires ({Expires:O}) is not after manifest.created ({Created:O})");
        }
    }
}
