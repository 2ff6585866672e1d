using EdgeUpdater.Protocol;

namespace EdgeUpdater.Server.Storage;

/// <summary>
/// Everything the server persists except content bytes: releases, the device registry, device
/// credentials, rollouts and commands. One interface, one SQL dialect-neutral implementation
/// (<see cref="SqlFleetStore"/>) with SQLite and PostgreSQL providers.
/// </summary>
internal interface IFleetStore : IAsyncDisposable
{
    /// <summary>Creates or upgrades the schema (versioned migrations, idempotent).</summary>
    Task MigrateAsync(CancellationToken cancellationToken = default);

    /// <summary>Schema versions applied, ascending.</summary>
    Task<IReadOnlyList<int>> GetAppliedMigrationsAsync(CancellationToken cancellationToken = default);

    /// <summary>Records a release; false when one with the same manifest hash exists.</summary>
    Task<bool> AddReleaseAsync(ReleaseInfo release, CancellationToken cancellationToken = default);

    /// <summary>A release by manifest hash, or null.</summary>
    Task<ReleaseInfo?> GetReleaseAsync(string manifestSha256, CancellationToken cancellationToken = default);

    /// <summary>Every release, newest first.</summary>
    Task<IReadOnlyList<ReleaseInfo>> ListReleasesAsync(CancellationToken cancellationToken = default);

    /// <summary>True when a release names this image (the content store may then serve it).</summary>
    Task<bool> IsPublishedImageAsync(string imageSha256, CancellationToken cancellationToken = default);

    /// <summary>Inserts or replaces device rows from status reports, in one transaction.</summary>
    Task UpsertDevicesAsync(IReadOnlyCollection<DeviceRecord> devices, CancellationToken cancellationToken = default);

    /// <summary>Marks a device offline (last will) without touching the rest of its row.</summary>
    Task SetDeviceOfflineAsync(string deviceId, DateTimeOffset at, CancellationToken cancellationToken = default);

    /// <summary>One device, or null.</summary>
    Task<DeviceInfo?> GetDeviceAsync(string deviceId, CancellationToken cancellationToken = default);

    /// <summary>Devices, optionally of one group, ordered by id.</summary>
    Task<IReadOnlyList<DeviceInfo>> ListDevicesAsync(string? group = null, CancellationToken cancellationToken = default);

    /// <summary>Stores (replacing) a device's MQTT credential.</summary>
    Task SetCredentialAsync(DeviceCredentialRecord credential, CancellationToken cancellationToken = default);

    /// <summary>A device's credential, or null.</summary>
    Task<DeviceCredentialRecord?> GetCredentialAsync(string deviceId, CancellationToken cancellationToken = default);

    /// <summary>Every credential (for the mosquitto ACL).</summary>
    Task<IReadOnlyList<DeviceCredentialRecord>> ListCredentialsAsync(CancellationToken cancellationToken = default);

    /// <summary>Revokes a credential; false when there was none.</summary>
    Task<bool> DeleteCredentialAsync(string deviceId, CancellationToken cancellationToken = default);

    /// <summary>Records a new rollout.</summary>
    Task AddRolloutAsync(RolloutRecord rollout, CancellationToken cancellationToken = default);

    /// <summary>Replaces a rollout's mutable fields (state, phase, reasons, counters).</summary>
    Task UpdateRolloutAsync(RolloutRecord rollout, CancellationToken cancellationToken = default);

    /// <summary>One rollout, or null.</summary>
    Task<RolloutRecord?> GetRolloutAsync(string rolloutId, CancellationToken cancellationToken = default);

    /// <summary>Rollouts, newest first, optionally only those in the given states.</summary>
    Task<IReadOnlyList<RolloutRecord>> ListRolloutsAsync(IReadOnlyCollection<RolloutState>? states = null, CancellationToken cancellationToken = default);

    /// <summary>Adds devices to a rollout (ignoring ones already in it).</summary>
    Task AddRolloutDevicesAsync(IReadOnlyCollection<RolloutDeviceRecord> devices, CancellationToken cancellationToken = default);

    /// <summary>Updates outcome, notification time and error of rollout devices.</summary>
    Task UpdateRolloutDevicesAsync(IReadOnlyCollection<RolloutDeviceRecord> devices, CancellationToken cancellationToken = default);

    /// <summary>Every device of a rollout.</summary>
    Task<IReadOnlyList<RolloutDeviceRecord>> ListRolloutDevicesAsync(string rolloutId, CancellationToken cancellationToken = default);

    /// <summary>Rollout devices of the given devices in rollouts that are running or paused.</summary>
    Task<IReadOnlyList<RolloutDeviceRecord>> FindActiveRolloutDevicesAsync(IReadOnlyCollection<string> deviceIds, CancellationToken cancellationToken = default);

    /// <summary>Counts of a rollout's devices by outcome.</summary>
    Task<RolloutCounts> CountRolloutDevicesAsync(string rolloutId, CancellationToken cancellationToken = default);

    /// <summary>Records a command sent to a device.</summary>
    Task AddCommandAsync(CommandRecord command, CancellationToken cancellationToken = default);

    /// <summary>Commands sent to a device, newest first.</summary>
    Task<IReadOnlyList<CommandRecord>> ListCommandsAsync(string deviceId, CancellationToken cancellationToken = default);

    /// <summary>Appends a verified key set to the chain.</summary>
    Task AddKeySetAsync(KeySetRecord keySet, CancellationToken cancellationToken = default);

    /// <summary>The key set chain, oldest first.</summary>
    Task<IReadOnlyList<KeySetRecord>> ListKeySetsAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Takes or renews the lease <paramref name="name"/> for <paramref name="holder"/> until
    /// <paramref name="now"/> + <paramref name="duration"/>, in one atomic statement: succeeds when the
    /// lease is free, expired at <paramref name="now"/>, or already held by <paramref name="holder"/>;
    /// false when another holder's lease is still running.
    /// </summary>
    Task<bool> TryAcquireLeaseAsync(string name, string holder, TimeSpan duration, DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>Gives the lease up if <paramref name="holder"/> holds it; false when it did not.</summary>
    Task<bool> ReleaseLeaseAsync(string name, string holder, CancellationToken cancellationToken = default);

    /// <summary>The lease's current row (holder and expiry, possibly already expired), or null when nobody took it or it was released.</summary>
    Task<LeaseRecord?> GetLeaseAsync(string name, CancellationToken cancellationToken = default);
}

/// <summary>Who holds a named lease and until when.</summary>
internal sealed record LeaseRecord(string Name, string Holder, DateTimeOffset ExpiresAt);

/// <summary>One key set envelope of the chain, exactly as uploaded.</summary>
internal sealed record KeySetRecord(long Version, byte[] Envelope, DateTimeOffset AddedAt);

/// <summary>A device row written from a status report.</summary>
internal sealed record DeviceRecord
{
    public required string DeviceId { get; init; }

    public string? Group { get; init; }

    public string? Hardware { get; init; }

    public string? Architecture { get; init; }

    public string? AgentVersion { get; init; }

    public UpdateState State { get; init; }

    public bool Online { get; init; }

    public DateTimeOffset LastSeen { get; init; }

    public string? LastError { get; init; }

    public string? RolloutId { get; init; }

    public IReadOnlyList<TargetStatus> Targets { get; init; } = [];

    public string? Codecs { get; init; }
}

/// <summary>A device's MQTT credential: only the SHA-256 of the random password is kept.</summary>
internal sealed record DeviceCredentialRecord(string DeviceId, string? Group, string PasswordSha256, DateTimeOffset CreatedAt);

/// <summary>Persisted rollout state.</summary>
internal sealed record RolloutRecord
{
    public required string Id { get; init; }

    public required string ManifestSha256 { get; init; }

    public required string ImageSha256 { get; init; }

    public long ImageSize { get; init; }

    public required string Name { get; init; }

    public required string Version { get; init; }

    public required string Target { get; init; }

    public required string Group { get; init; }

    public required IReadOnlyList<double> Phases { get; init; }

    public double SuccessThreshold { get; init; }

    public double FailureThreshold { get; init; }

    public RolloutState State { get; init; }

    public int CurrentPhase { get; init; }

    public string? PauseReason { get; init; }

    /// <summary>Failed devices an operator sent back to retry by resuming (history; the threshold counts current failures).</summary>
    public int FailuresAcknowledged { get; init; }

    public int GroupSize { get; init; }

    /// <summary>True once the retained group notice was published (the last phase covers the whole group).</summary>
    public bool GroupNoticePublished { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    public DateTimeOffset UpdatedAt { get; init; }
}

/// <summary>Where one device stands in one rollout.</summary>
internal enum RolloutDeviceOutcome
{
    /// <summary>Selected; no notice sent yet (offline, or the rollout is paused).</summary>
    Pending,

    /// <summary>Notice sent; no final status yet.</summary>
    Notified,

    /// <summary>Runs the release.</summary>
    Succeeded,

    /// <summary>Reported failed or rolled back.</summary>
    Failed,
}

/// <summary>One device of a rollout.</summary>
internal sealed record RolloutDeviceRecord(
    string RolloutId,
    string DeviceId,
    int Phase,
    RolloutDeviceOutcome Outcome,
    DateTimeOffset? NotifiedAt,
    DateTimeOffset UpdatedAt,
    string? LastError);

/// <summary>Devices of a rollout by outcome.</summary>
internal sealed record RolloutCounts(int Pending, int Notified, int Succeeded, int Failed)
{
    public int Selected => Pending + Notified + Succeeded + Failed;
}

/// <summary>A command sent to a device.</summary>
internal sealed record CommandRecord(string Id, string DeviceId, DeviceCommandKind Kind, string? Target, DateTimeOffset IssuedAt);
