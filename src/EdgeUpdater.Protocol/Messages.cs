using System.Text.Json.Serialization;

namespace EdgeUpdater.Protocol;

/// <summary>
/// Server to device: a new release is available. Only a hint: the agent fetches the signed manifest
/// named here and verifies it before doing anything else.
/// </summary>
public sealed record UpdateNotice
{
    /// <summary>Payload schema version; see <see cref="ProtocolVersion"/>.</summary>
    public int Schema { get; init; } = ProtocolVersion.Current;

    /// <summary>Rollout this notice belongs to, echoed back in status reports.</summary>
    public string? RolloutId { get; init; }

    /// <summary>Name of the device target to update (for example <c>app</c> or <c>rootfs</c>).</summary>
    public required string Target { get; init; }

    /// <summary>Image name as in the manifest.</summary>
    public required string Name { get; init; }

    /// <summary>Image version as in the manifest (semantic version).</summary>
    public required string Version { get; init; }

    /// <summary>SHA-256 (lowercase hex) of the signed manifest envelope; its HTTP address.</summary>
    public required string ManifestSha256 { get; init; }

    /// <summary>SHA-256 (lowercase hex) of the image the manifest names.</summary>
    public required string ImageSha256 { get; init; }

    /// <summary>Size of that image in bytes.</summary>
    public long ImageSize { get; init; }

    /// <summary>When the server issued the notice (UTC).</summary>
    public DateTimeOffset IssuedAt { get; init; }
}

/// <summary>Server to device: an operator command.</summary>
public sealed record DeviceCommand
{
    /// <summary>Payload schema version.</summary>
    public int Schema { get; init; } = ProtocolVersion.Current;

    /// <summary>Unique id, echoed in the status that reports the outcome.</summary>
    public required string Id { get; init; }

    /// <summary>What to do.</summary>
    public required DeviceCommandKind Kind { get; init; }

    /// <summary>Target the command applies to; null means every target of the device.</summary>
    public string? Target { get; init; }

    /// <summary>When the server issued the command (UTC).</summary>
    public DateTimeOffset IssuedAt { get; init; }
}

/// <summary>The commands a device accepts over MQTT.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<DeviceCommandKind>))]
public enum DeviceCommandKind
{
    /// <summary>Return to the previous slot and make it the default.</summary>
    [JsonStringEnumMemberName("rollback")]
    Rollback,

    /// <summary>Ask the server now whether an update is pending.</summary>
    [JsonStringEnumMemberName("check-now")]
    CheckNow,
}

/// <summary>Where a device stands in the update pipeline. Persisted and reported on every change.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<UpdateState>))]
public enum UpdateState
{
    /// <summary>Running a committed image; nothing in progress.</summary>
    [JsonStringEnumMemberName("idle")]
    Idle,

    /// <summary>Fetching and verifying a manifest.</summary>
    [JsonStringEnumMemberName("verifying")]
    Verifying,

    /// <summary>Downloading a delta or image.</summary>
    [JsonStringEnumMemberName("downloading")]
    Downloading,

    /// <summary>Writing the inactive slot.</summary>
    [JsonStringEnumMemberName("installing")]
    Installing,

    /// <summary>The inactive slot holds a verified image, about to be activated.</summary>
    [JsonStringEnumMemberName("installed")]
    Installed,

    /// <summary>The new slot is running on trial; its health check is in progress.</summary>
    [JsonStringEnumMemberName("trial")]
    Trial,

    /// <summary>The new slot passed its health check and is now the default.</summary>
    [JsonStringEnumMemberName("committed")]
    Committed,

    /// <summary>The new slot failed and the previous one runs again.</summary>
    [JsonStringEnumMemberName("rolled-back")]
    RolledBack,

    /// <summary>The update was abandoned before activation; the running slot is untouched.</summary>
    [JsonStringEnumMemberName("failed")]
    Failed,

    /// <summary>Set by the broker through the last will when the agent disconnects uncleanly.</summary>
    [JsonStringEnumMemberName("offline")]
    Offline,
}

/// <summary>Device to server, retained: the state of a device after every change.</summary>
public sealed record DeviceStatus
{
    /// <summary>Payload schema version.</summary>
    public int Schema { get; init; } = ProtocolVersion.Current;

    /// <summary>Device id; equals the topic level.</summary>
    public required string DeviceId { get; init; }

    /// <summary>Group the device belongs to.</summary>
    public string? Group { get; init; }

    /// <summary>Hardware id (board) the device reports.</summary>
    public string? Hardware { get; init; }

    /// <summary>CPU architecture (for example <c>arm64</c>).</summary>
    public string? Architecture { get; init; }

    /// <summary>Version of the agent binary.</summary>
    public string? AgentVersion { get; init; }

    /// <summary>Pipeline state.</summary>
    public UpdateState State { get; init; }

    /// <summary>Rollout the current or last update belonged to.</summary>
    public string? RolloutId { get; init; }

    /// <summary>Id of the command this status answers, if any.</summary>
    public string? CommandId { get; init; }

    /// <summary>Per-target detail: slots, versions, progress.</summary>
    public IReadOnlyList<TargetStatus> Targets { get; init; } = [];

    /// <summary>Human-readable reason for the last failure or rollback; null when none.</summary>
    public string? LastError { get; init; }

    /// <summary>Codec identities the device can recompress with, for the delta request.</summary>
    public string? Codecs { get; init; }

    /// <summary>When the device produced this status (UTC).</summary>
    public DateTimeOffset Timestamp { get; init; }
}

/// <summary>One updatable target of a device (an app or the system root) and its A/B slots.</summary>
public sealed record TargetStatus
{
    /// <summary>Target name from the agent configuration.</summary>
    public required string Name { get; init; }

    /// <summary><c>app</c> or <c>system</c>.</summary>
    public required string Kind { get; init; }

    /// <summary>Pipeline state of this target.</summary>
    public UpdateState State { get; init; }

    /// <summary>Name of the slot running now.</summary>
    public string? ActiveSlot { get; init; }

    /// <summary>Version running now.</summary>
    public string? Version { get; init; }

    /// <summary>SHA-256 of the image running now.</summary>
    public string? ImageSha256 { get; init; }

    /// <summary>Version being installed or on trial, if any.</summary>
    public string? PendingVersion { get; init; }

    /// <summary>Progress of the current step in percent, if known.</summary>
    public int? Progress { get; init; }
}

/// <summary>Protocol generations. A reader accepts its own major version and ignores unknown fields.</summary>
public static class ProtocolVersion
{
    /// <summary>The schema version this build writes.</summary>
    public const int Current = 1;

    /// <summary>Throws <see cref="ProtocolException"/> when <paramref name="schema"/> is not understood.</summary>
    public static void Check(int schema, string what)
    {
        if (schema != Current)
        {
            throw new ProtocolException($"{what} has schema version {schema}; this build understands {Current}.");
        }
    }
}

/// <summary>A message that does not follow the protocol.</summary>
public sealed class ProtocolException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ProtocolException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with its cause.</summary>
    public ProtocolException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception.</summary>
    public ProtocolException()
    {
    }
}
