using System.Text.Json;
using System.Text.Json.Serialization;

namespace EdgeUpdater.Protocol;

/// <summary>
/// Routes of the server's operator API (bearer token). Device-facing content routes are in
/// <see cref="HttpRoutes"/>; the operator API is documented in docs/server.md.
/// </summary>
public static class OperatorRoutes
{
    /// <summary><c>POST</c> (multipart: <c>manifest</c> then <c>image</c>) publishes; <c>GET</c> lists releases.</summary>
    public const string Releases = "/v1/releases";

    /// <summary><c>GET</c> lists the device registry.</summary>
    public const string Devices = "/v1/devices";

    /// <summary><c>GET</c> lists rollouts; <c>POST</c> a <see cref="RolloutRequest"/> starts one.</summary>
    public const string Rollouts = "/v1/rollouts";

    /// <summary><c>GET</c> the mosquitto ACL file for the registered devices (text/plain).</summary>
    public const string MosquittoAcl = "/v1/mqtt/mosquitto-acl";

    /// <summary>One release by the SHA-256 of its manifest.</summary>
    public static string Release(string manifestSha256) => $"{Releases}/{manifestSha256}";

    /// <summary>One device of the registry.</summary>
    public static string Device(string deviceId) => $"{Devices}/{Uri.EscapeDataString(deviceId)}";

    /// <summary><c>PUT</c> issues (or replaces) a device's MQTT credentials; <c>DELETE</c> revokes them.</summary>
    public static string DeviceCredentials(string deviceId) => $"{Device(deviceId)}/credentials";

    /// <summary><c>POST</c> a <see cref="DeviceCommandRequest"/> sends a command to a device over MQTT.</summary>
    public static string DeviceCommands(string deviceId) => $"{Device(deviceId)}/commands";

    /// <summary>One rollout.</summary>
    public static string Rollout(string rolloutId) => $"{Rollouts}/{Uri.EscapeDataString(rolloutId)}";

    /// <summary><c>POST</c> changes a rollout's state.</summary>
    public static string RolloutAction(string rolloutId, RolloutAction action) => action switch
    {
        Protocol.RolloutAction.Pause => $"{Rollout(rolloutId)}/pause",
        Protocol.RolloutAction.Resume => $"{Rollout(rolloutId)}/resume",
        Protocol.RolloutAction.Abort => $"{Rollout(rolloutId)}/abort",
        _ => throw new ArgumentOutOfRangeException(nameof(action), action, "unknown rollout action"),
    };
}

/// <summary>The error body of every refused request: a machine-readable reason and a sentence for people.</summary>
public sealed record ApiError
{
    /// <summary>Kebab-case reason, for example <c>unknown-base</c> or <c>bad-signature</c>.</summary>
    public required string Reason { get; init; }

    /// <summary>What was expected, what was found, and where.</summary>
    public string? Message { get; init; }
}

/// <summary>A published release: a verified manifest and the image it names.</summary>
public sealed record ReleaseInfo
{
    /// <summary>SHA-256 of the signed manifest envelope; the release's id and HTTP address.</summary>
    public required string ManifestSha256 { get; init; }

    /// <summary>SHA-256 of the image.</summary>
    public required string ImageSha256 { get; init; }

    /// <summary>Image size in bytes.</summary>
    public long ImageSize { get; init; }

    /// <summary>Image name from the manifest.</summary>
    public required string Name { get; init; }

    /// <summary>Image version from the manifest.</summary>
    public required string Version { get; init; }

    /// <summary>Target kind: <c>system</c> or <c>app</c>.</summary>
    public string? TargetKind { get; init; }

    /// <summary>Compatible hardware ids.</summary>
    public IReadOnlyList<string> Hardware { get; init; } = [];

    /// <summary>Compatible CPU architectures.</summary>
    public IReadOnlyList<string> Architectures { get; init; } = [];

    /// <summary>Device target name from the manifest; null means the image name.</summary>
    public string? Target { get; init; }

    /// <summary>When the server accepted the release (UTC).</summary>
    public DateTimeOffset PublishedAt { get; init; }

    /// <summary>When the manifest expires, if it does.</summary>
    public DateTimeOffset? ExpiresAt { get; init; }
}

/// <summary>One device as the registry knows it, from its last MQTT status.</summary>
public sealed record DeviceInfo
{
    /// <summary>Device id.</summary>
    public required string DeviceId { get; init; }

    /// <summary>Group the device belongs to (registered, else reported).</summary>
    public string? Group { get; init; }

    /// <summary>Hardware id.</summary>
    public string? Hardware { get; init; }

    /// <summary>CPU architecture.</summary>
    public string? Architecture { get; init; }

    /// <summary>Agent version.</summary>
    public string? AgentVersion { get; init; }

    /// <summary>Pipeline state from the last status.</summary>
    public UpdateState State { get; init; }

    /// <summary>False after the broker published the device's last will or it reported <c>offline</c>.</summary>
    public bool Online { get; init; }

    /// <summary>When the server last heard from the device (UTC).</summary>
    public DateTimeOffset? LastSeen { get; init; }

    /// <summary>Last failure or rollback reason the device reported.</summary>
    public string? LastError { get; init; }

    /// <summary>Rollout of the current or last update.</summary>
    public string? RolloutId { get; init; }

    /// <summary>Per-target slots and versions.</summary>
    public IReadOnlyList<TargetStatus> Targets { get; init; } = [];

    /// <summary>True when MQTT credentials were issued for this device.</summary>
    public bool HasCredentials { get; init; }
}

/// <summary>Body of <c>PUT /v1/devices/{id}/credentials</c>.</summary>
public sealed record DeviceCredentialRequest
{
    /// <summary>Group the device belongs to; also the only group notice topic it may subscribe to.</summary>
    public string? Group { get; init; }
}

/// <summary>Answer to a credential request. The password is shown once; the server keeps only its hash.</summary>
public sealed record DeviceCredentialInfo
{
    /// <summary>Device id; also the MQTT user name.</summary>
    public required string DeviceId { get; init; }

    /// <summary>MQTT user name (equals the device id).</summary>
    public required string Username { get; init; }

    /// <summary>MQTT password, random, shown only in this answer.</summary>
    public required string Password { get; init; }

    /// <summary>Registered group, if any.</summary>
    public string? Group { get; init; }
}

/// <summary>Body of <c>POST /v1/devices/{id}/commands</c>.</summary>
public sealed record DeviceCommandRequest
{
    /// <summary>What the device should do.</summary>
    public required DeviceCommandKind Kind { get; init; }

    /// <summary>Target name; null for every target.</summary>
    public string? Target { get; init; }
}

/// <summary>Body of <c>POST /v1/rollouts</c>: roll a published release out to a group in phases.</summary>
public sealed record RolloutRequest
{
    /// <summary>The release, by the SHA-256 of its manifest.</summary>
    public required string ManifestSha256 { get; init; }

    /// <summary>Device group to update.</summary>
    public required string Group { get; init; }

    /// <summary>Device target name the notice names; defaults to the release's image name.</summary>
    public string? Target { get; init; }

    /// <summary>Cumulative share of the group per phase in percent, ascending, ending at 100.</summary>
    public IReadOnlyList<double> Phases { get; init; } = [1, 10, 50, 100];

    /// <summary>Share (0..1] of a phase's devices that must succeed before the next phase starts.</summary>
    public double SuccessThreshold { get; init; } = 0.95;

    /// <summary>Share [0..1) of failed devices above which the rollout pauses itself.</summary>
    public double FailureThreshold { get; init; } = 0.05;
}

/// <summary>The state of a rollout.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<RolloutState>))]
public enum RolloutState
{
    /// <summary>Notices go out and phases advance.</summary>
    [JsonStringEnumMemberName("running")]
    Running,

    /// <summary>Stopped by an operator or by the failure threshold; resumable.</summary>
    [JsonStringEnumMemberName("paused")]
    Paused,

    /// <summary>The last phase reached its success threshold.</summary>
    [JsonStringEnumMemberName("completed")]
    Completed,

    /// <summary>Stopped for good by an operator.</summary>
    [JsonStringEnumMemberName("aborted")]
    Aborted,
}

/// <summary>What an operator can do to a rollout.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<RolloutAction>))]
public enum RolloutAction
{
    /// <summary>Stop sending notices and advancing.</summary>
    [JsonStringEnumMemberName("pause")]
    Pause,

    /// <summary>Continue a paused rollout; devices that failed are notified again.</summary>
    [JsonStringEnumMemberName("resume")]
    Resume,

    /// <summary>Stop for good.</summary>
    [JsonStringEnumMemberName("abort")]
    Abort,
}

/// <summary>A rollout and its progress.</summary>
public sealed record RolloutInfo
{
    /// <summary>Rollout id, echoed by devices in their status.</summary>
    public required string Id { get; init; }

    /// <summary>Release manifest SHA-256.</summary>
    public required string ManifestSha256 { get; init; }

    /// <summary>Image SHA-256 of the release.</summary>
    public required string ImageSha256 { get; init; }

    /// <summary>Release name.</summary>
    public required string Name { get; init; }

    /// <summary>Release version.</summary>
    public required string Version { get; init; }

    /// <summary>Device target the notices name.</summary>
    public required string Target { get; init; }

    /// <summary>Device group.</summary>
    public required string Group { get; init; }

    /// <summary>Cumulative percentages per phase.</summary>
    public IReadOnlyList<double> Phases { get; init; } = [];

    /// <summary>Success share needed to advance.</summary>
    public double SuccessThreshold { get; init; }

    /// <summary>Failure share that pauses the rollout.</summary>
    public double FailureThreshold { get; init; }

    /// <summary>Current state.</summary>
    public RolloutState State { get; init; }

    /// <summary>Index into <see cref="Phases"/> of the phase in progress.</summary>
    public int CurrentPhase { get; init; }

    /// <summary>Why the rollout is paused (operator or failure threshold), if it is.</summary>
    public string? PauseReason { get; init; }

    /// <summary>Devices selected so far.</summary>
    public int Selected { get; init; }

    /// <summary>Selected devices that were sent a notice and have not finished.</summary>
    public int InProgress { get; init; }

    /// <summary>Devices that run the release.</summary>
    public int Succeeded { get; init; }

    /// <summary>Devices that reported failure or rollback.</summary>
    public int Failed { get; init; }

    /// <summary>Devices in the group when last counted.</summary>
    public int GroupSize { get; init; }

    /// <summary>Creation time (UTC).</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>Last change (UTC).</summary>
    public DateTimeOffset UpdatedAt { get; init; }
}

/// <summary>Source-generated JSON for the operator API (trim- and AOT-safe, used by the CLI).</summary>
[JsonSourceGenerationOptions(
    JsonSerializerDefaults.Web,
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(ApiError))]
[JsonSerializable(typeof(ReleaseInfo))]
[JsonSerializable(typeof(IReadOnlyList<ReleaseInfo>))]
[JsonSerializable(typeof(DeviceInfo))]
[JsonSerializable(typeof(IReadOnlyList<DeviceInfo>))]
[JsonSerializable(typeof(DeviceCredentialRequest))]
[JsonSerializable(typeof(DeviceCredentialInfo))]
[JsonSerializable(typeof(DeviceCommandRequest))]
[JsonSerializable(typeof(DeviceCommand))]
[JsonSerializable(typeof(RolloutRequest))]
[JsonSerializable(typeof(RolloutInfo))]
[JsonSerializable(typeof(IReadOnlyList<RolloutInfo>))]
public sealed partial class OperatorJsonContext : JsonSerializerContext
{
}
