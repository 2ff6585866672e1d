using System.Text.Json.Serialization;

namespace EdgeUpdater.Protocol;

/// <summary>
/// The local control API of the agent: one JSON object per line on a root-only Unix socket, one
/// response line per request line (see docs/agent.md). Used by <c>edgeupdater device ...</c>.
/// </summary>
public static class ControlApi
{
    /// <summary>Where the agent listens unless configured otherwise.</summary>
    public const string DefaultSocketPath = "/run/edgeupdater/agent.sock";
}

/// <summary>What a control request asks for.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ControlCommand>))]
public enum ControlCommand
{
    /// <summary>Device, targets and slots now.</summary>
    [JsonStringEnumMemberName("status")]
    Status,

    /// <summary>Past updates, rollbacks and failures.</summary>
    [JsonStringEnumMemberName("history")]
    History,

    /// <summary>Install an image (or delta) and its manifest from local files.</summary>
    [JsonStringEnumMemberName("install")]
    Install,

    /// <summary>Return to the other slot, if it holds a good image.</summary>
    [JsonStringEnumMemberName("rollback")]
    Rollback,

    /// <summary>Accept a trial now without waiting for its health check.</summary>
    [JsonStringEnumMemberName("commit")]
    Commit,

    /// <summary>Ask for pending updates now and retry a failed download at once.</summary>
    [JsonStringEnumMemberName("check-now")]
    CheckNow,

    /// <summary>The last lines of the agent's log.</summary>
    [JsonStringEnumMemberName("logs")]
    Logs,
}

/// <summary>One request line.</summary>
public sealed record ControlRequest
{
    /// <summary>Payload schema version.</summary>
    public int Schema { get; init; } = ProtocolVersion.Current;

    /// <summary>What to do.</summary>
    public required ControlCommand Command { get; init; }

    /// <summary>Target name; null picks the only target, or all for status and history.</summary>
    public string? Target { get; init; }

    /// <summary><see cref="ControlCommand.Install"/>: absolute path of the image or delta on the device.</summary>
    public string? PayloadPath { get; init; }

    /// <summary><see cref="ControlCommand.Install"/>: absolute path of the signed manifest.</summary>
    public string? ManifestPath { get; init; }

    /// <summary><see cref="ControlCommand.Logs"/>: how many lines, from the end.</summary>
    public int? Lines { get; init; }
}

/// <summary>One response line.</summary>
public sealed record ControlResponse
{
    /// <summary>Payload schema version.</summary>
    public int Schema { get; init; } = ProtocolVersion.Current;

    /// <summary>True when the request was carried out (or accepted, for long operations).</summary>
    public bool Ok { get; init; }

    /// <summary>Why not, when <see cref="Ok"/> is false.</summary>
    public string? Error { get; init; }

    /// <summary>A human-readable note (for example "install started").</summary>
    public string? Message { get; init; }

    /// <summary>The same status the device publishes over MQTT.</summary>
    public DeviceStatus? Status { get; init; }

    /// <summary>Slots of each target, for the technician.</summary>
    public IReadOnlyList<ControlTargetDetail>? Targets { get; init; }

    /// <summary>History entries, oldest first.</summary>
    public IReadOnlyList<ControlHistoryEntry>? History { get; init; }

    /// <summary>Log lines, oldest first.</summary>
    public IReadOnlyList<string>? Logs { get; init; }
}

/// <summary>A target with both of its slots.</summary>
public sealed record ControlTargetDetail
{
    /// <summary>Target name.</summary>
    public required string Name { get; init; }

    /// <summary><c>app</c> or <c>system</c>.</summary>
    public required string Kind { get; init; }

    /// <summary>Pipeline state.</summary>
    public UpdateState State { get; init; }

    /// <summary>The default slot.</summary>
    public string? CommittedSlot { get; init; }

    /// <summary>The slot on trial or being written, if any.</summary>
    public string? PendingSlot { get; init; }

    /// <summary>Last error of this target.</summary>
    public string? LastError { get; init; }

    /// <summary>Slots a and b.</summary>
    public IReadOnlyList<ControlSlotDetail> Slots { get; init; } = [];
}

/// <summary>One slot as the agent records it.</summary>
public sealed record ControlSlotDetail
{
    /// <summary><c>a</c> or <c>b</c>.</summary>
    public required string Name { get; init; }

    /// <summary>Device or image file.</summary>
    public string? Path { get; init; }

    /// <summary><c>empty</c>, <c>writing</c>, <c>verified</c>, <c>good</c>, <c>bad</c>.</summary>
    public string? State { get; init; }

    /// <summary>Image name.</summary>
    public string? ImageName { get; init; }

    /// <summary>Image version.</summary>
    public string? Version { get; init; }

    /// <summary>Image SHA-256.</summary>
    public string? ImageSha256 { get; init; }
}

/// <summary>One line of history.</summary>
public sealed record ControlHistoryEntry
{
    /// <summary>When (UTC).</summary>
    public DateTimeOffset Timestamp { get; init; }

    /// <summary>Target name.</summary>
    public string? Target { get; init; }

    /// <summary>What happened.</summary>
    public UpdateState Event { get; init; }

    /// <summary>Version concerned.</summary>
    public string? Version { get; init; }

    /// <summary>Slot concerned.</summary>
    public string? Slot { get; init; }

    /// <summary>Reason or detail.</summary>
    public string? Message { get; init; }
}

/// <summary>Source-generated JSON for the control API (trim- and AOT-safe).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(ControlRequest))]
[JsonSerializable(typeof(ControlResponse))]
public sealed partial class ControlJsonContext : JsonSerializerContext
{
}
