using System.Text.Json.Serialization;
using EdgeUpdater.Protocol;

namespace EdgeUpdater.Agent.State;

/// <summary>What a slot holds, as far as the agent knows. Only <see cref="Verified"/> and <see cref="Good"/> slots are ever activated.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<SlotState>))]
internal enum SlotState
{
    /// <summary>Never written by the agent.</summary>
    [JsonStringEnumMemberName("empty")]
    Empty,

    /// <summary>Being written; its content is meaningless until verified.</summary>
    [JsonStringEnumMemberName("writing")]
    Writing,

    /// <summary>Holds an image whose SHA-256 matched its manifest; not yet proven healthy.</summary>
    [JsonStringEnumMemberName("verified")]
    Verified,

    /// <summary>Holds an image that passed its health check (or the image the device shipped with).</summary>
    [JsonStringEnumMemberName("good")]
    Good,

    /// <summary>Failed verification, its health check, or was rolled back from.</summary>
    [JsonStringEnumMemberName("bad")]
    Bad,
}

/// <summary>The persisted record of one slot.</summary>
internal sealed record SlotRecord
{
    public SlotState State { get; set; }

    public string? Name { get; set; }

    public string? Version { get; set; }

    public string? ImageSha256 { get; set; }

    public long ImageSize { get; set; }

    public string? ManifestSha256 { get; set; }

    public DateTimeOffset? ManifestCreatedAt { get; set; }

    public DateTimeOffset? UpdatedAt { get; set; }
}

/// <summary>Where an update's bytes come from.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<UpdateOrigin>))]
internal enum UpdateOrigin
{
    /// <summary>The repository server over HTTP.</summary>
    [JsonStringEnumMemberName("server")]
    Server,

    /// <summary>Files given through the control socket (a USB stick).</summary>
    [JsonStringEnumMemberName("local")]
    Local,
}

/// <summary>An update in progress for one target: everything needed to resume it after a restart.</summary>
internal sealed record PendingUpdate
{
    public UpdateOrigin Origin { get; set; }

    public string? RolloutId { get; set; }

    public string? CommandId { get; set; }

    public required string ManifestSha256 { get; set; }

    public required string Name { get; set; }

    public required string Version { get; set; }

    public required string ImageSha256 { get; set; }

    public long ImageSize { get; set; }

    /// <summary>The slot being written (never the running one).</summary>
    public required string Slot { get; set; }

    /// <summary>Local installs: the image or delta file.</summary>
    public string? LocalPayloadPath { get; set; }

    /// <summary>Local installs: the manifest file.</summary>
    public string? LocalManifestPath { get; set; }

    /// <summary>False until the manifest passed verification; name, version and hashes are only hints before.</summary>
    public bool Verified { get; set; }

    public DateTimeOffset? ManifestCreatedAt { get; set; }

    /// <summary>Delta downloads: the image the delta starts from; null for a full image.</summary>
    public string? DeltaBaseSha256 { get; set; }

    /// <summary>Bytes already written and fsync'd at the start of the download destination.</summary>
    public long DownloadOffset { get; set; }

    /// <summary>Strong ETag of the resource being resumed (sent as If-Range).</summary>
    public string? ETag { get; set; }

    /// <summary>Bytes received over the network for this update so far, every attempt and the delta included.</summary>
    public long BytesDownloaded { get; set; }

    /// <summary>
    /// Delta installs: new-image bytes written when the apply last checkpointed. Informational; the resume
    /// point itself is the apply checkpoint file in the target's state directory.
    /// </summary>
    public long ApplyOffset { get; set; }

    /// <summary>
    /// Delta installs: the delta was applied while it downloaded, and the slot holds the image it builds (its
    /// SHA-256 checked as it was written); the install then only verifies the slot. An older agent that does not
    /// know the field applies the delta again, which gives the same image.
    /// </summary>
    public bool DeltaApplied { get; set; }

    /// <summary>Failed attempts so far (retryable failures only).</summary>
    public int Attempt { get; set; }

    /// <summary>Times an app trial was started; bounded by health.trialLimit.</summary>
    public int TrialAttempts { get; set; }

    /// <summary>System targets: reboots issued into the trial slot without reaching it.</summary>
    public int TrialReboots { get; set; }

    /// <summary>The slot that ran before activation, restored on rollback.</summary>
    public string? PreviousSlot { get; set; }
}

/// <summary>One target's persisted state.</summary>
internal sealed record TargetState
{
    public required string Name { get; set; }

    public required string Kind { get; set; }

    /// <summary>The default slot: what runs after a restart when no trial is pending.</summary>
    public string CommittedSlot { get; set; } = "a";

    public UpdateState Phase { get; set; } = UpdateState.Idle;

    public PendingUpdate? Pending { get; set; }

    public SlotRecord A { get; set; } = new();

    public SlotRecord B { get; set; } = new();

    public string? LastError { get; set; }

    /// <summary>Rollout of the current or last update, echoed in status reports.</summary>
    public string? RolloutId { get; set; }

    /// <summary>Command whose outcome the next status reports.</summary>
    public string? CommandId { get; set; }

    /// <summary>Manifests refused or rolled back here; their notices are ignored (a retained group notice would loop).</summary>
    public IReadOnlyList<string> RejectedManifests { get; set; } = [];

    public TargetState Reject(string manifestSha256) =>
        RejectedManifests.Contains(manifestSha256) ? this : this with { RejectedManifests = [.. RejectedManifests.TakeLast(19), manifestSha256] };

    /// <summary>Ids of the last MQTT commands acted on: QoS 1 may deliver one again, and a rollback must not run twice.</summary>
    public IReadOnlyList<string> HandledCommands { get; set; } = [];

    /// <summary>
    /// System targets: reboots start-up made to finish the current rollback (another slot booted than the
    /// committed one). Counted so that a committed slot that cannot be loaded at all does not make the
    /// device reboot on every boot; zero when a rollback is persisted.
    /// </summary>
    public int RollbackFinishReboots { get; set; }

    /// <summary>
    /// System targets: the boot (kernel boot_id) in which the current rollback, or the last reboot to finish it,
    /// was persisted. Booted on the other slot in a later boot, with the bootloader's environment already
    /// naming the committed slot, the device has rebooted and the boot script fell back: the committed slot
    /// does not load, and rebooting again would not help. In the same boot, the reboot did not happen.
    /// </summary>
    public string? RollbackBootId { get; set; }

    public TargetState WithHandledCommand(string commandId) =>
        HandledCommands.Contains(commandId) ? this : this with { HandledCommands = [.. HandledCommands.TakeLast(19), commandId] };

    public SlotRecord Slot(string slot) => slot == "a" ? A : slot == "b" ? B : throw new ArgumentOutOfRangeException(nameof(slot), slot, "slot is 'a' or 'b'");

    public TargetState WithSlot(string slot, SlotRecord record) => slot == "a" ? this with { A = record } : this with { B = record };

    public static string Other(string slot) => slot == "a" ? "b" : "a";
}

/// <summary>One line of the device's update history.</summary>
internal sealed record HistoryRecord
{
    public DateTimeOffset Timestamp { get; set; }

    public required string Target { get; set; }

    public UpdateState Event { get; set; }

    public string? Version { get; set; }

    public string? ImageSha256 { get; set; }

    public string? Slot { get; set; }

    public string? Message { get; set; }
}

/// <summary>Everything the agent persists; written whole, atomically, before every transition is acted upon.</summary>
internal sealed record AgentState
{
    public const int CurrentSchema = 1;

    /// <summary>The oldest schema whose agent reads this agent's state correctly, ignoring what it does not know.</summary>
    public const int OldestReaderSchema = 1;

    public const int HistoryLimit = 100;

    public int Schema { get; set; } = CurrentSchema;

    /// <summary>
    /// What <see cref="OldestReaderSchema"/> was for the agent that wrote the state. A newer agent that only adds
    /// fields keeps it low, so that the older agent of the slot a failed trial rolls back to keeps its state.
    /// </summary>
    public int MinReaderSchema { get; set; } = OldestReaderSchema;

    /// <summary>Incremented on every write; helps reading logs against the journal.</summary>
    public long Sequence { get; set; }

    public IReadOnlyList<TargetState> Targets { get; set; } = [];

    public IReadOnlyList<HistoryRecord> History { get; set; } = [];

    /// <summary>Highest key set version a verified manifest chained to: an older one is refused as a rollback.</summary>
    public long KeySetVersion { get; set; }

    public TargetState Target(string name) =>
        Targets.FirstOrDefault(t => t.Name == name) ?? throw new KeyNotFoundException($"no target named '{name}' in the state");

    public AgentState WithTarget(TargetState target) =>
        this with { Targets = [.. Targets.Select(t => t.Name == target.Name ? target : t)] };

    public AgentState WithHistory(HistoryRecord record) =>
        this with { History = [.. History.Skip(Math.Max(0, History.Count - HistoryLimit + 1)), record] };
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = true,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(AgentState))]
internal sealed partial class AgentStateJsonContext : JsonSerializerContext
{
}
