using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Data.Common;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using EdgeUpdater.Protocol;
using EdgeUpdater.Server.Fleet;
using EdgeUpdater.Server.Hosting;
using EdgeUpdater.Server.Mqtt;
using EdgeUpdater.Server.Storage;

namespace EdgeUpdater.Server.Rollouts;

/// <summary>
/// Phased rollouts. A rollout sends a release to a growing share of a group: phase k covers the first
/// <c>Phases[k]</c> percent of the group in a fixed order (SHA-256 of rollout id and device id, so a
/// restart or a late joiner never reshuffles who is in which phase). A phase is done when the share of
/// selected devices that run the release reaches the success threshold; the rollout pauses itself when
/// the share of failures (not yet acknowledged by a resume) passes the failure threshold. When a phase
/// covers the whole group the notice also goes to the group topic, retained, for devices that join
/// later. State is written through to the store at every change and reloaded at start.
/// <para>
/// Replicas sharing one database each run an engine, but only the holder of the <c>rollout-engine</c>
/// lease (<see cref="IFleetStore.TryAcquireLeaseAsync"/>, renewed every tick) acts: it alone notifies,
/// advances, pauses, records outcomes and accepts operator changes. The others keep nothing in memory,
/// answer reads from the store and refuse changes with <see cref="NotRolloutLeaderException"/>. A
/// replica that gains the lease reloads the active rollouts and settles outcomes from the device
/// registry (reports that arrived while nobody led); one whose lease ran out stops acting at once.
/// </para>
/// </summary>
internal sealed class RolloutEngine : IAsyncDisposable
{
    private readonly Dictionary<string, ActiveRollout> _active = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Channel<bool> _poke = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly CancellationTokenSource _stopping = new();
    private readonly IFleetStore _store;
    private readonly IFleetPublisher _publisher;
    private readonly MqttTopics _topics;
    private readonly RolloutSettings _settings;
    private readonly TimeProvider _time;
    private readonly ILogger<RolloutEngine> _logger;
    private Task _loop = Task.CompletedTask;
    private long _noticesSent;

    /// <summary>UTC ticks until which this replica may act (0: not the leader). Written under the gate, read anywhere.</summary>
    private long _leaderUntilTicks;
    private DateTimeOffset _renewedAt;
    private bool _groupNoticesDue;
    private bool _started;

    /// <summary>The name of the lease that elects the acting engine.</summary>
    public const string LeaseName = "rollout-engine";

    public RolloutEngine(IFleetStore store, IFleetPublisher publisher, MqttTopics topics, ServerOptions options, TimeProvider time, ILogger<RolloutEngine> logger)
    {
        _store = store;
        _publisher = publisher;
        _topics = topics;
        _settings = options.Rollouts;
        _time = time;
        _logger = logger;
        ReplicaId = $"{Environment.MachineName}/{Environment.ProcessId}/{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";
    }

    /// <summary>This replica's lease holder id: host name, process id and a random part.</summary>
    public string ReplicaId { get; }

    /// <summary>True while this replica holds the lease and may act.</summary>
    public bool IsLeader => IsLeaderAt(_time.GetUtcNow());

    /// <summary>Update notices published so far (per device; group notices not counted).</summary>
    public long NoticesSent => Interlocked.Read(ref _noticesSent);

    /// <summary>Takes the lease if it is free and then loads running and paused rollouts (before status reports start flowing).</summary>
    public async Task LoadAsync(CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await RefreshLeaseAsync(cancellationToken).ConfigureAwait(false);
            if (!IsLeader)
            {
                var lease = await _store.GetLeaseAsync(LeaseName, cancellationToken).ConfigureAwait(false);
                _logger.LogInformation("Rollout engine: replica {Replica} stands by; {Leader} holds the lease until {Expiry:O}", ReplicaId, lease?.Holder, lease?.ExpiresAt);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Republishes retained group notices if this replica leads (the embedded broker forgets them on restart) and starts ticking.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _started = true;
            await RepublishGroupNoticesIfDueAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }

        _loop = Task.Run(LoopAsync, CancellationToken.None);
    }

    /// <summary>Asks for an evaluation now rather than at the next tick.</summary>
    public void Poke() => _poke.Writer.TryWrite(true);

    /// <summary>Starts a rollout of <paramref name="release"/>; throws <see cref="ArgumentException"/> on a bad request.</summary>
    public async Task<RolloutInfo> CreateAsync(RolloutRequest request, ReleaseInfo release, CancellationToken cancellationToken = default)
    {
        var target = request.Target ?? release.Target ?? release.Name;
        Validate(request, target);
        var now = _time.GetUtcNow();
        var record = new RolloutRecord
        {
            Id = $"r-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}",
            ManifestSha256 = release.ManifestSha256,
            ImageSha256 = release.ImageSha256,
            ImageSize = release.ImageSize,
            Name = release.Name,
            Version = release.Version,
            Target = target,
            Group = request.Group,
            Phases = request.Phases.ToArray(),
            SuccessThreshold = request.SuccessThreshold,
            FailureThreshold = request.FailureThreshold,
            State = RolloutState.Running,
            CreatedAt = now,
            UpdatedAt = now,
        };
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await EnsureLeaderAsync(cancellationToken).ConfigureAwait(false);
            await _store.AddRolloutAsync(record, cancellationToken).ConfigureAwait(false);
            var active = new ActiveRollout(record, new Dictionary<string, RolloutDeviceRecord>(StringComparer.Ordinal));
            _active[record.Id] = active;
            _logger.LogInformation("Rollout {Id}: {Name} {Version} to group {Group} in phases {Phases}", record.Id, record.Name, record.Version, record.Group, string.Join("/", record.Phases));
            await EvaluateAsync(active, cancellationToken).ConfigureAwait(false);
            return Describe(active.Record, active);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Pauses, resumes or aborts. Null when the rollout does not exist; throws <see cref="InvalidOperationException"/> when the transition is not allowed.</summary>
    public async Task<RolloutInfo?> ApplyAsync(string rolloutId, RolloutAction action, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await EnsureLeaderAsync(cancellationToken).ConfigureAwait(false);
            if (!_active.TryGetValue(rolloutId, out var active))
            {
                var finished = await _store.GetRolloutAsync(rolloutId, cancellationToken).ConfigureAwait(false);
                return finished is null
                    ? null
                    : throw new InvalidOperationException($"Rollout {rolloutId} is {finished.State.ToString().ToLowerInvariant()}; it cannot {action.ToString().ToLowerInvariant()}.");
            }

            var record = active.Record;
            var now = _time.GetUtcNow();
            switch (action)
            {
                case RolloutAction.Pause when record.State == RolloutState.Running:
                    record = record with { State = RolloutState.Paused, PauseReason = "paused by an operator", UpdatedAt = now };
                    break;
                case RolloutAction.Resume when record.State == RolloutState.Paused:
                    // Resuming retries the devices that failed: they are notified again and counted afresh.
                    var retry = active.Devices.Values
                        .Where(d => d.Outcome == RolloutDeviceOutcome.Failed)
                        .Select(d => d with { Outcome = RolloutDeviceOutcome.Pending, UpdatedAt = now })
                        .ToList();
                    await _store.UpdateRolloutDevicesAsync(retry, cancellationToken).ConfigureAwait(false);
                    foreach (var device in retry)
                    {
                        active.Devices[device.DeviceId] = device;
                    }

                    record = record with { State = RolloutState.Running, PauseReason = null, FailuresAcknowledged = record.FailuresAcknowledged + retry.Count, UpdatedAt = now };
                    break;
                case RolloutAction.Abort:
                    record = record with { State = RolloutState.Aborted, PauseReason = null, UpdatedAt = now };
                    if (record.GroupNoticePublished)
                    {
                        await TryClearGroupNoticeAsync(record, cancellationToken).ConfigureAwait(false);
                    }

                    break;
                default:
                    throw new InvalidOperationException($"Rollout {rolloutId} is {record.State.ToString().ToLowerInvariant()}; it cannot {action.ToString().ToLowerInvariant()}.");
            }

            await SaveAsync(active, record, cancellationToken).ConfigureAwait(false);
            _logger.LogInformation("Rollout {Id}: {Action} by an operator, now {State}", rolloutId, action, record.State);
            if (record.State == RolloutState.Running)
            {
                await EvaluateAsync(active, cancellationToken).ConfigureAwait(false);
            }

            return Describe(active.Record, active);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>One rollout with its counts, or null.</summary>
    public async Task<RolloutInfo?> GetAsync(string rolloutId, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_active.TryGetValue(rolloutId, out var active))
            {
                return Describe(active.Record, active);
            }
        }
        finally
        {
            _gate.Release();
        }

        var record = await _store.GetRolloutAsync(rolloutId, cancellationToken).ConfigureAwait(false);
        return record is null ? null : Describe(record, counts: await _store.CountRolloutDevicesAsync(rolloutId, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>Every rollout with its counts, newest first.</summary>
    public async Task<IReadOnlyList<RolloutInfo>> ListAsync(CancellationToken cancellationToken = default)
    {
        var records = await _store.ListRolloutsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        var result = new List<RolloutInfo>(records.Count);
        foreach (var record in records)
        {
            result.Add(await GetAsync(record.Id, cancellationToken).ConfigureAwait(false) ?? Describe(record));
        }

        return result;
    }

    /// <summary>Every device of a rollout with its outcome.</summary>
    public Task<IReadOnlyList<RolloutDeviceRecord>> ListDevicesAsync(string rolloutId, CancellationToken cancellationToken = default) =>
        _store.ListRolloutDevicesAsync(rolloutId, cancellationToken);

    /// <summary>Updates outcomes from stored status reports (called by the registry for every batch).</summary>
    public async Task ObserveAsync(IReadOnlyList<ReceivedStatus> batch, CancellationToken cancellationToken = default)
    {
        var changed = false;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // Every replica receives every report; only the leader turns them into outcomes, so each is
            // recorded once. One that gains the lease catches up from the registry (SettleFromRegistryAsync).
            if (_active.Count == 0 || !IsLeader)
            {
                return;
            }

            foreach (var active in _active.Values)
            {
                var updates = new Dictionary<string, RolloutDeviceRecord>(StringComparer.Ordinal);
                foreach (var report in batch)
                {
                    if (report.Status is null || !active.Devices.TryGetValue(report.DeviceId, out var device))
                    {
                        continue;
                    }

                    var outcome = Classify(report.Status, active.Record);
                    if (outcome is null || outcome == device.Outcome)
                    {
                        continue;
                    }

                    device = device with
                    {
                        Outcome = outcome.Value,
                        UpdatedAt = report.ReceivedAt,
                        LastError = outcome == RolloutDeviceOutcome.Failed ? report.Status.LastError ?? report.Status.State.ToString() : device.LastError,
                    };
                    active.Devices[report.DeviceId] = device;
                    updates[report.DeviceId] = device;
                }

                if (updates.Count > 0)
                {
                    await _store.UpdateRolloutDevicesAsync(updates.Values, cancellationToken).ConfigureAwait(false);
                    changed = true;
                }
            }
        }
        finally
        {
            _gate.Release();
        }

        if (changed)
        {
            Poke();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        _poke.Writer.TryComplete();
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        // Hand over at once: a standby takes the released lease at its next tick instead of waiting for expiry.
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (Interlocked.Exchange(ref _leaderUntilTicks, 0) != 0)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                try
                {
                    await _store.ReleaseLeaseAsync(LeaseName, ReplicaId, timeout.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is DbException or OperationCanceledException or TimeoutException)
                {
                    _logger.LogWarning("The rollout lease could not be released ({Message}); a standby takes over when it expires", e.Message);
                }
            }

            _active.Clear();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Evaluates every running rollout once.</summary>
    internal async Task TickAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await RefreshLeaseAsync(cancellationToken).ConfigureAwait(false);
            if (!IsLeader)
            {
                return;
            }

            await RepublishGroupNoticesIfDueAsync(cancellationToken).ConfigureAwait(false);
            foreach (var active in _active.Values.ToList())
            {
                if (active.Record.State == RolloutState.Running)
                {
                    await EvaluateAsync(active, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task LoopAsync()
    {
        var token = _stopping.Token;
        while (!token.IsCancellationRequested)
        {
            try
            {
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(token);
                wait.CancelAfter(_settings.TickInterval);
                try
                {
                    await _poke.Reader.ReadAsync(wait.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!token.IsCancellationRequested)
                {
                    // Tick interval elapsed.
                }
                catch (ChannelClosedException)
                {
                    return;
                }

                await TickAsync(token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _logger.LogError(e, "Rollout evaluation failed; retrying at the next tick");
            }
        }
    }

    /// <summary>Selects, advances, pauses and notifies for one running rollout. Caller holds the gate.</summary>
    private async Task EvaluateAsync(ActiveRollout active, CancellationToken cancellationToken)
    {
        if (!IsLeader)
        {
            return;
        }

        var record = active.Record;
        var group = await _store.ListDevicesAsync(record.Group, cancellationToken).ConfigureAwait(false);
        var now = _time.GetUtcNow();
        var before = record;
        record = record with { GroupSize = group.Count };
        while (true)
        {
            var want = (int)Math.Min(group.Count, Math.Ceiling(group.Count * record.Phases[record.CurrentPhase] / 100.0));
            if (active.Devices.Count < want)
            {
                var added = group
                    .Where(d => !active.Devices.ContainsKey(d.DeviceId))
                    .OrderBy(d => Rank(record.Id, d.DeviceId))
                    .ThenBy(d => d.DeviceId, StringComparer.Ordinal)
                    .Take(want - active.Devices.Count)
                    .Select(d => new RolloutDeviceRecord(record.Id, d.DeviceId, record.CurrentPhase, RunsRelease(d, record) ? RolloutDeviceOutcome.Succeeded : RolloutDeviceOutcome.Pending, null, now, null))
                    .ToList();
                await _store.AddRolloutDevicesAsync(added, cancellationToken).ConfigureAwait(false);
                foreach (var device in added)
                {
                    active.Devices[device.DeviceId] = device;
                }
            }

            var selected = active.Devices.Count;
            var failed = active.Devices.Values.Count(d => d.Outcome == RolloutDeviceOutcome.Failed);
            var succeeded = active.Devices.Values.Count(d => d.Outcome == RolloutDeviceOutcome.Succeeded);
            if (selected > 0 && failed > record.FailureThreshold * selected)
            {
                record = record with
                {
                    State = RolloutState.Paused,
                    PauseReason = $"failure threshold passed: {failed} of {selected} selected devices failed (threshold {record.FailureThreshold:P0})",
                };
                _logger.LogWarning("Rollout {Id} paused itself: {Reason}", record.Id, record.PauseReason);
                break;
            }

            if (want > 0 && selected >= want && succeeded >= record.SuccessThreshold * selected)
            {
                if (record.CurrentPhase == record.Phases.Count - 1)
                {
                    record = record with { State = RolloutState.Completed };
                    _logger.LogInformation("Rollout {Id} completed: {Succeeded} of {Selected} devices run {Version}", record.Id, succeeded, selected, record.Version);
                    break;
                }

                record = record with { CurrentPhase = record.CurrentPhase + 1 };
                _logger.LogInformation("Rollout {Id} advanced to phase {Phase} ({Percent}%)", record.Id, record.CurrentPhase + 1, record.Phases[record.CurrentPhase]);
                continue;
            }

            break;
        }

        if (record.State == RolloutState.Running)
        {
            await NotifyAsync(active, record, group, now, cancellationToken).ConfigureAwait(false);
            if (!record.GroupNoticePublished && record.Phases[record.CurrentPhase] >= 100 && await TryPublishGroupNoticeAsync(record, cancellationToken).ConfigureAwait(false))
            {
                record = record with { GroupNoticePublished = true };
            }
        }

        if (record != before)
        {
            await SaveAsync(active, record with { UpdatedAt = now }, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task NotifyAsync(ActiveRollout active, RolloutRecord record, IReadOnlyList<DeviceInfo> group, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var online = group.Where(d => d.Online).ToDictionary(d => d.DeviceId, StringComparer.Ordinal);
        var due = active.Devices.Values
            .Where(d => online.TryGetValue(d.DeviceId, out var info)
                && (d.Outcome == RolloutDeviceOutcome.Pending
                    || (d.Outcome == RolloutDeviceOutcome.Notified && now - d.NotifiedAt > _settings.RenotifyAfter && info.State is UpdateState.Idle or UpdateState.Committed)))
            .ToList();
        if (due.Count == 0)
        {
            return;
        }

        var payload = NoticePayload(record, now);
        var sent = new ConcurrentBag<RolloutDeviceRecord>();
        var failures = 0;
        await Parallel.ForEachAsync(
            due,
            new ParallelOptions { MaxDegreeOfParallelism = 64, CancellationToken = cancellationToken },
            async (device, token) =>
            {
                if (!IsLeader)
                {
                    return; // The lease ran out mid-batch: the new leader notifies whoever is left.
                }

                try
                {
                    await _publisher.PublishAsync(_topics.DeviceNotice(device.DeviceId), payload, retain: false, token).ConfigureAwait(false);
                    sent.Add(device with { Outcome = RolloutDeviceOutcome.Notified, NotifiedAt = now, UpdatedAt = now });
                }
                catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or InvalidOperationException)
                {
                    Interlocked.Increment(ref failures);
                }
            }).ConfigureAwait(false);
        if (failures > 0)
        {
            _logger.LogWarning("Rollout {Id}: {Failures} notices could not be published; retrying at the next tick", record.Id, failures);
        }

        Interlocked.Add(ref _noticesSent, sent.Count);
        await _store.UpdateRolloutDevicesAsync(sent.ToList(), cancellationToken).ConfigureAwait(false);
        foreach (var device in sent)
        {
            // A status that arrived meanwhile may already have settled the outcome; keep it.
            if (active.Devices[device.DeviceId].Outcome is RolloutDeviceOutcome.Pending or RolloutDeviceOutcome.Notified)
            {
                active.Devices[device.DeviceId] = device;
            }
        }
    }

    /// <summary>Takes or renews the lease; on gaining it reloads, on losing it forgets. Caller holds the gate.</summary>
    private async Task RefreshLeaseAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var wasLeader = IsLeaderAt(now);
        if (wasLeader && now - _renewedAt < _settings.TickInterval / 2)
        {
            return; // Pokes between ticks need no renewal.
        }

        bool held;
        try
        {
            held = await _store.TryAcquireLeaseAsync(LeaseName, ReplicaId, _settings.LeaseDuration, now, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is DbException or TimeoutException)
        {
            // The row still names us until it expires, so nobody else acts; past that we stop too.
            _logger.LogWarning("The rollout lease could not be renewed ({Message}); this replica acts until {Expiry:O} at most", e.Message, new DateTimeOffset(Interlocked.Read(ref _leaderUntilTicks), TimeSpan.Zero));
            if (!IsLeader)
            {
                StepDown();
            }

            return;
        }

        if (!held)
        {
            if (wasLeader || _active.Count > 0)
            {
                _logger.LogWarning("Rollout engine: lost the lease; another replica leads now");
            }

            StepDown();
            return;
        }

        if (!wasLeader)
        {
            // Another replica may have changed rollouts and recorded outcomes meanwhile: start from the store.
            _active.Clear();
            await ReloadAsync(cancellationToken).ConfigureAwait(false);
            _groupNoticesDue = true;
            _logger.LogInformation("Rollout engine: replica {Replica} took the lease; {Count} active rollouts loaded", ReplicaId, _active.Count);
        }

        _renewedAt = now;
        Interlocked.Exchange(ref _leaderUntilTicks, (now + _settings.LeaseDuration).UtcTicks);
    }

    private void StepDown()
    {
        Interlocked.Exchange(ref _leaderUntilTicks, 0);
        _active.Clear();
        _groupNoticesDue = false;
    }

    private bool IsLeaderAt(DateTimeOffset now) => now.UtcTicks < Interlocked.Read(ref _leaderUntilTicks);

    /// <summary>Refuses a change on a replica that does not lead (trying to take a free lease first). Caller holds the gate.</summary>
    private async Task EnsureLeaderAsync(CancellationToken cancellationToken)
    {
        if (!IsLeader)
        {
            await RefreshLeaseAsync(cancellationToken).ConfigureAwait(false);
        }

        if (!IsLeader)
        {
            var lease = await _store.GetLeaseAsync(LeaseName, cancellationToken).ConfigureAwait(false);
            throw new NotRolloutLeaderException(ReplicaId, lease?.Holder, lease?.ExpiresAt);
        }
    }

    private async Task ReloadAsync(CancellationToken cancellationToken)
    {
        foreach (var record in await _store.ListRolloutsAsync([RolloutState.Running, RolloutState.Paused], cancellationToken).ConfigureAwait(false))
        {
            var devices = await _store.ListRolloutDevicesAsync(record.Id, cancellationToken).ConfigureAwait(false);
            var active = new ActiveRollout(record, devices.ToDictionary(d => d.DeviceId, StringComparer.Ordinal));
            await SettleFromRegistryAsync(active, cancellationToken).ConfigureAwait(false);
            _active[record.Id] = active;
        }
    }

    /// <summary>
    /// Applies registry states newer than a device's outcome: reports that reached the replicas while no
    /// engine led (or before this one loaded) are otherwise lost, as every report is observed only once.
    /// </summary>
    private async Task SettleFromRegistryAsync(ActiveRollout active, CancellationToken cancellationToken)
    {
        if (active.Devices.Count == 0)
        {
            return;
        }

        var registry = (await _store.ListDevicesAsync(active.Record.Group, cancellationToken).ConfigureAwait(false)).ToDictionary(d => d.DeviceId, StringComparer.Ordinal);
        var updates = new List<RolloutDeviceRecord>();
        foreach (var device in active.Devices.Values.ToList())
        {
            if (!registry.TryGetValue(device.DeviceId, out var info) || info.LastSeen is not { } seen || seen <= device.UpdatedAt)
            {
                continue;
            }

            var status = new DeviceStatus { DeviceId = info.DeviceId, State = info.State, RolloutId = info.RolloutId, Targets = info.Targets, LastError = info.LastError };
            var outcome = Classify(status, active.Record);
            if (outcome is null || outcome == device.Outcome)
            {
                continue;
            }

            var settled = device with
            {
                Outcome = outcome.Value,
                UpdatedAt = seen,
                LastError = outcome == RolloutDeviceOutcome.Failed ? info.LastError ?? info.State.ToString() : device.LastError,
            };
            active.Devices[device.DeviceId] = settled;
            updates.Add(settled);
        }

        await _store.UpdateRolloutDevicesAsync(updates, cancellationToken).ConfigureAwait(false);
    }

    private async Task RepublishGroupNoticesIfDueAsync(CancellationToken cancellationToken)
    {
        if (!_groupNoticesDue || !_started || !IsLeader)
        {
            return;
        }

        _groupNoticesDue = false;
        var retained = (await _store.ListRolloutsAsync([RolloutState.Running, RolloutState.Paused, RolloutState.Completed], cancellationToken).ConfigureAwait(false))
            .Where(r => r.GroupNoticePublished)
            .GroupBy(r => r.Group)
            .Select(g => g.OrderByDescending(r => r.CreatedAt).First());
        foreach (var record in retained)
        {
            await TryPublishGroupNoticeAsync(record, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The update notice of a rollout, as sent to each device and retained for its group.</summary>
    private static byte[] NoticePayload(RolloutRecord record, DateTimeOffset issuedAt) =>
        JsonSerializer.SerializeToUtf8Bytes(
            new UpdateNotice
            {
                RolloutId = record.Id,
                Target = record.Target,
                Name = record.Name,
                Version = record.Version,
                ManifestSha256 = record.ManifestSha256,
                ImageSha256 = record.ImageSha256,
                ImageSize = record.ImageSize,
                IssuedAt = issuedAt,
            },
            ProtocolJsonContext.Default.UpdateNotice);

    private async Task<bool> TryPublishGroupNoticeAsync(RolloutRecord record, CancellationToken cancellationToken)
    {
        var payload = NoticePayload(record, _time.GetUtcNow());
        try
        {
            await _publisher.PublishAsync(_topics.GroupNotice(record.Group), payload, retain: true, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or InvalidOperationException)
        {
            _logger.LogWarning("Rollout {Id}: the group notice could not be published ({Message}); retrying at the next tick", record.Id, e.Message);
            return false;
        }
    }

    private async Task TryClearGroupNoticeAsync(RolloutRecord record, CancellationToken cancellationToken)
    {
        try
        {
            await _publisher.PublishAsync(_topics.GroupNotice(record.Group), ReadOnlyMemory<byte>.Empty, retain: true, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or InvalidOperationException)
        {
            _logger.LogWarning("Rollout {Id}: the retained group notice could not be cleared: {Message}", record.Id, e.Message);
        }
    }

    private async Task SaveAsync(ActiveRollout active, RolloutRecord record, CancellationToken cancellationToken)
    {
        await _store.UpdateRolloutAsync(record, cancellationToken).ConfigureAwait(false);
        active.Record = record;
        if (record.State is RolloutState.Completed or RolloutState.Aborted)
        {
            _active.Remove(record.Id);
        }
    }

    private static RolloutDeviceOutcome? Classify(DeviceStatus status, RolloutRecord rollout)
    {
        if (status.RolloutId == rollout.Id)
        {
            if (status.State is UpdateState.Failed or UpdateState.RolledBack)
            {
                return RolloutDeviceOutcome.Failed;
            }

            if (status.State == UpdateState.Committed)
            {
                return RolloutDeviceOutcome.Succeeded;
            }
        }

        if (status.State is UpdateState.Idle or UpdateState.Committed && status.Targets.Any(t => t.ImageSha256 == rollout.ImageSha256))
        {
            return RolloutDeviceOutcome.Succeeded;
        }

        return null;
    }

    private static bool RunsRelease(DeviceInfo device, RolloutRecord rollout) =>
        device.State is UpdateState.Idle or UpdateState.Committed && device.Targets.Any(t => t.ImageSha256 == rollout.ImageSha256);

    /// <summary>The device's fixed place in the rollout's selection order.</summary>
    internal static ulong Rank(string rolloutId, string deviceId)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes($"{rolloutId}\n{deviceId}"), hash);
        return BinaryPrimitives.ReadUInt64BigEndian(hash);
    }

    private static void Validate(RolloutRequest request, string target)
    {
        if (!MqttTopics.IsValidSegment(request.Group))
        {
            throw new ArgumentException($"group '{request.Group}' is not a valid group name (1-128 of [A-Za-z0-9._:-])");
        }

        if (!MqttTopics.IsValidSegment(target))
        {
            throw new ArgumentException($"target '{target}' is not a valid target name (1-128 of [A-Za-z0-9._:-])");
        }

        if (request.Phases.Count == 0)
        {
            throw new ArgumentException("phases must list at least one percentage, ending at 100");
        }

        var previous = 0.0;
        foreach (var phase in request.Phases)
        {
            if (!(phase > previous && phase <= 100))
            {
                throw new ArgumentException($"phases must rise strictly within (0, 100]; found {string.Join(", ", request.Phases)}");
            }

            previous = phase;
        }

        if (previous != 100)
        {
            throw new ArgumentException($"the last phase must be 100 (the whole group); found {previous}");
        }

        if (!(request.SuccessThreshold > 0 && request.SuccessThreshold <= 1))
        {
            throw new ArgumentException($"successThreshold must be in (0, 1]; found {request.SuccessThreshold}");
        }

        if (!(request.FailureThreshold >= 0 && request.FailureThreshold < 1))
        {
            throw new ArgumentException($"failureThreshold must be in [0, 1); found {request.FailureThreshold}");
        }
    }

    private static RolloutInfo Describe(RolloutRecord record, ActiveRollout? active = null, RolloutCounts? counts = null)
    {
        if (active is not null)
        {
            var devices = active.Devices.Values;
            counts = new RolloutCounts(
                devices.Count(d => d.Outcome == RolloutDeviceOutcome.Pending),
                devices.Count(d => d.Outcome == RolloutDeviceOutcome.Notified),
                devices.Count(d => d.Outcome == RolloutDeviceOutcome.Succeeded),
                devices.Count(d => d.Outcome == RolloutDeviceOutcome.Failed));
        }

        counts ??= new RolloutCounts(0, 0, 0, 0);
        return new RolloutInfo
        {
            Id = record.Id,
            ManifestSha256 = record.ManifestSha256,
            ImageSha256 = record.ImageSha256,
            Name = record.Name,
            Version = record.Version,
            Target = record.Target,
            Group = record.Group,
            Phases = record.Phases,
            SuccessThreshold = record.SuccessThreshold,
            FailureThreshold = record.FailureThreshold,
            State = record.State,
            CurrentPhase = record.CurrentPhase,
            PauseReason = record.PauseReason,
            Selected = counts.Selected,
            InProgress = counts.Pending + counts.Notified,
            Succeeded = counts.Succeeded,
            Failed = counts.Failed,
            GroupSize = record.GroupSize,
            CreatedAt = record.CreatedAt,
            UpdatedAt = record.UpdatedAt,
        };
    }

    private sealed class ActiveRollout
    {
        public ActiveRollout(RolloutRecord record, Dictionary<string, RolloutDeviceRecord> devices)
        {
            Record = record;
            Devices = devices;
        }

        public RolloutRecord Record { get; set; }

        public Dictionary<string, RolloutDeviceRecord> Devices { get; }
    }
}


/// <summary>
/// A rollout change reached a replica that does not hold the rollout engine's lease. Nothing was
/// written; the operator sends the change to <see cref="Leader"/> (or retries once a leader is elected).
/// </summary>
internal sealed class NotRolloutLeaderException : Exception
{
    /// <summary>Creates the exception for this replica, naming the current holder if any.</summary>
    public NotRolloutLeaderException(string replica, string? leader, DateTimeOffset? leaseExpiresAt)
        : base(leader is null
            ? $"Replica '{replica}' does not run the rollout engine and no replica holds its lease right now; retry in a moment."
            : $"Replica '{replica}' does not run the rollout engine; replica '{leader}' does (lease until {leaseExpiresAt:O}). Send rollout changes to it, or retry.")
    {
        Leader = leader;
    }

    /// <summary>Creates the exception.</summary>
    public NotRolloutLeaderException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public NotRolloutLeaderException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public NotRolloutLeaderException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The replica holding the lease, or null when none does.</summary>
    public string? Leader { get; }
}
