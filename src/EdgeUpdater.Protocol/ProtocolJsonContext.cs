using System.Text.Json.Serialization;

namespace EdgeUpdater.Protocol;

/// <summary>Source-generated JSON for every protocol message (trim- and AOT-safe).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(UpdateNotice))]
[JsonSerializable(typeof(DeviceCommand))]
[JsonSerializable(typeof(DeviceStatus))]
public sealed partial class ProtocolJsonContext : JsonSerializerContext
{
}
