using System.Text.Json.Serialization;
using EdgeUpdater.Trust.KeySets;
using EdgeUpdater.Trust.Manifests;

namespace EdgeUpdater.Trust.Serialization;

/// <summary>
/// Source-generated JSON for every document of the trust layer (trim- and AOT-safe). Strict on input:
/// required fields must be present, unknown and duplicate properties are refused, nulls only where the
/// model allows them.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    RespectNullableAnnotations = true,
    RespectRequiredConstructorParameters = true,
    AllowDuplicateProperties = false)]
[JsonSerializable(typeof(EnvelopeDocument))]
[JsonSerializable(typeof(ReleaseManifest))]
[JsonSerializable(typeof(KeySet))]
[JsonSerializable(typeof(PrivateKeyFileDocument))]
internal sealed partial class TrustJsonContext : JsonSerializerContext
{
}
