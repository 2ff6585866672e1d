using System.Text.Json.Serialization;
using EdgeUpdater.Protocol;

namespace EdgeUpdater.Server.Storage;

/// <summary>JSON for the few structured columns (targets, phases, hardware lists).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(IReadOnlyList<TargetStatus>))]
[JsonSerializable(typeof(IReadOnlyList<string>))]
[JsonSerializable(typeof(IReadOnlyList<double>))]
internal sealed partial class ServerJsonContext : JsonSerializerContext
{
}
