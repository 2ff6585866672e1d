using System.Net;
using System.Net.Http.Json;
using EdgeUpdater.Protocol;
using EdgeUpdater.Server.Hosting;
using EdgeUpdater.Server.Rollouts;
using EdgeUpdater.Server.Storage;
using EdgeUpdater.Server.Tests.Support;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Server.Tests.Rollouts;

/// <summary>
/// Several server replicas on one real PostgreSQL: exactly one rollout engine acts (the lease holder),
/// the others refuse rollout changes, and a standby takes over when the leader stops.
/// </summary>
public sealed class ReplicaTests : IAsyncDisposable
{
    private const string OldImage = "1111111111111111111111111111111111111111111111111111111111111111";
    private readonly PostgresFixture _postgres;
    private readonly TempDirectory _work = new("replicas");
    private readonly TestTrust _trust = new();
    private readonly List<SimulatedDevice> _devices = [];
    private readonly List<TestServer> _servers = [];

    public ReplicaTests(PostgresFixture postgres)
    {
        _postgres = postgres;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var device in _devices)
        {
            await device.DisposeAsync();
        }

        foreach (var server in _servers)
        {
            await server.DisposeAsync();
        }

        _trust.Dispose();
        _work.Dispose();
    }

    [Fact]
    public async Task Two_replicas_notify_each_device_once_the_standby_refuses_changes_and_finishes_after_the_leader_stops()
    {
        var database = await _postgres.CreateDatabaseAsync("replicas");
        await using var broker = await MosquittoBroker.StartAsync(cancellationToken: TestContext.Current.CancellationToken);
        var leader = await StartReplicaAsync(database, broker.Port);
        var leaderEngine = leader.Host.Services.GetRequiredServiceOf<RolloutEngine>();
        Assert.True(leaderEngine.IsLeader);

        var release = await leader.PublishAsync(await TestImages.BuildAsync(_work, "demo", "2.0.0"));
        for (var i = 0; i < 8; i++)
        {
            var device = await SimulatedDevice.ConnectAsync("127.0.0.1", broker.Port, leader.Host.Topics, $"dev-{i:D2}", "lab", OldImage);
            await device.PublishStatusAsync(UpdateState.Idle);
            _devices.Add(device);
        }

        await Eventually.GetAsync(() => leader.Http.GetFromJsonAsync(OperatorRoutes.Devices, OperatorJsonContext.Default.IReadOnlyListDeviceInfo)!, d => d!.Count == 8, "every device is registered");
        using var created = await leader.Http.PostAsJsonAsync(
            OperatorRoutes.Rollouts,
            new RolloutRequest { ManifestSha256 = release.ManifestSha256, Group = "lab", Phases = [25, 50, 100], SuccessThreshold = 1.0 },
            OperatorJsonContext.Default.RolloutRequest);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var rollout = (await created.Content.ReadFromJsonAsync(OperatorJsonContext.Default.RolloutInfo, TestContext.Current.CancellationToken))!;
        var phase1 = await NotifiedAsync(2, "phase 1 notifies two devices");

        // The standby starts while the rollout runs (so it could act on it if nothing stopped it).
        var standby = await StartReplicaAsync(database, broker.Port);
        var standbyEngine = standby.Host.Services.GetRequiredServiceOf<RolloutEngine>();
        Assert.False(standbyEngine.IsLeader);
        using (var refused = await standby.Http.PostAsync(OperatorRoutes.RolloutAction(rollout.Id, RolloutAction.Pause), null, TestContext.Current.CancellationToken))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            var error = (await refused.Content.ReadFromJsonAsync(OperatorJsonContext.Default.ApiError, TestContext.Current.CancellationToken))!;
            Assert.Equal("not-leader", error.Reason);
            Assert.Contains(leaderEngine.ReplicaId, error.Message, StringComparison.Ordinal);
        }

        // Reads work on every replica and show that the refused pause changed nothing.
        var seen = await GetAsync(standby, rollout.Id);
        Assert.Equal(RolloutState.Running, seen.State);
        Assert.Equal(2, seen.Selected);

        // Phase 2 with both replicas up: both receive every report, but only the leader advances and notifies.
        foreach (var device in phase1)
        {
            await device.PublishStatusAsync(UpdateState.Committed, rollout.Id);
        }

        var phase2 = await NotifiedAsync(4, "phase 2 notifies two more devices");
        await Eventually.GetAsync(() => GetAsync(standby, rollout.Id), r => r.CurrentPhase == 1 && r.Selected == 4 && r.Succeeded == 2, "phase 2 is recorded");

        // The leader stops cleanly and releases the lease: the standby takes over within a tick or so.
        await leader.DisposeAsync();
        _servers.Remove(leader);
        await Eventually.TrueAsync(() => standbyEngine.IsLeader, "the standby takes the released lease", TimeSpan.FromSeconds(5));

        foreach (var device in _devices)
        {
            device.Behaviour = DeviceBehaviour.Succeed;
        }

        foreach (var device in phase2.Except(phase1))
        {
            await device.PublishStatusAsync(UpdateState.Committed, rollout.Id);
        }

        var done = await Eventually.GetAsync(() => GetAsync(standby, rollout.Id), r => r.State == RolloutState.Completed, "the former standby completes the rollout");
        Assert.Equal(8, done.Succeeded);
        Assert.Equal(0, done.Failed);
        Assert.All(_devices, d => Assert.Equal(1, d.DeviceNotices));

        // A rollout change now succeeds on the new leader.
        using var aborted = await standby.Http.PostAsync(OperatorRoutes.RolloutAction(rollout.Id, RolloutAction.Abort), null, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Conflict, aborted.StatusCode); // Completed: a transition error, no longer "not-leader".
    }

    [Fact]
    public async Task A_lease_left_by_a_crashed_replica_is_taken_over_when_it_expires()
    {
        var database = await _postgres.CreateDatabaseAsync("crashed");
        // The image is built before the crashed lease starts running, so only the server start and the
        // publish (well under the lease) lie between it and the refused request, even on a loaded machine.
        var image = await TestImages.BuildAsync(_work, "demo", "2.0.0");
        var leaseDuration = TimeSpan.FromSeconds(5);
        await using (var store = new PostgresFleetStore(database))
        {
            await store.MigrateAsync(TestContext.Current.CancellationToken);
            Assert.True(await store.TryAcquireLeaseAsync(RolloutEngine.LeaseName, "crashed-replica", leaseDuration, DateTimeOffset.UtcNow, TestContext.Current.CancellationToken));
        }

        var server = await StartReplicaAsync(database, mqttPort: null, leaseDuration);
        var engine = server.Host.Services.GetRequiredServiceOf<RolloutEngine>();
        var release = await server.PublishAsync(image);
        var request = new RolloutRequest { ManifestSha256 = release.ManifestSha256, Group = "lab" };
        using (var refused = await server.Http.PostAsJsonAsync(OperatorRoutes.Rollouts, request, OperatorJsonContext.Default.RolloutRequest, TestContext.Current.CancellationToken))
        {
            Assert.False(engine.IsLeader);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Contains("crashed-replica", (await refused.Content.ReadFromJsonAsync(OperatorJsonContext.Default.ApiError, TestContext.Current.CancellationToken))!.Message, StringComparison.Ordinal);
        }

        Assert.Empty(await server.Http.GetFromJsonAsync(OperatorRoutes.Rollouts, OperatorJsonContext.Default.IReadOnlyListRolloutInfo, TestContext.Current.CancellationToken) ?? []);
        await Eventually.TrueAsync(() => engine.IsLeader, "the expired lease is taken over", leaseDuration + TimeSpan.FromSeconds(5));
        using var accepted = await server.Http.PostAsJsonAsync(OperatorRoutes.Rollouts, request, OperatorJsonContext.Default.RolloutRequest, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Created, accepted.StatusCode);
    }

    [Fact]
    public async Task A_replica_that_loses_the_lease_stops_acting_and_on_regaining_it_settles_reports_it_missed()
    {
        var ct = TestContext.Current.CancellationToken;
        var database = await _postgres.CreateDatabaseAsync("lost_lease");
        var server = await StartReplicaAsync(database, mqttPort: null, configure: o => o.Mqtt.DeviceAuthentication = DeviceAuthentication.Open);
        var engine = server.Host.Services.GetRequiredServiceOf<RolloutEngine>();
        var release = await server.PublishAsync(await TestImages.BuildAsync(_work, "demo", "2.0.0"));
        for (var i = 0; i < 4; i++)
        {
            var device = await SimulatedDevice.ConnectAsync(server.Host.MqttHost, server.Host.MqttPort, server.Host.Topics, $"dev-{i:D2}", "lab", OldImage);
            await device.PublishStatusAsync(UpdateState.Idle);
            _devices.Add(device);
        }

        await Eventually.GetAsync(() => server.Http.GetFromJsonAsync(OperatorRoutes.Devices, OperatorJsonContext.Default.IReadOnlyListDeviceInfo)!, d => d!.Count == 4, "every device is registered");
        using var created = await server.Http.PostAsJsonAsync(
            OperatorRoutes.Rollouts,
            new RolloutRequest { ManifestSha256 = release.ManifestSha256, Group = "lab", Phases = [50, 100], SuccessThreshold = 1.0 },
            OperatorJsonContext.Default.RolloutRequest,
            ct);
        var rollout = (await created.Content.ReadFromJsonAsync(OperatorJsonContext.Default.RolloutInfo, ct))!;
        var phase1 = await NotifiedAsync(2, "phase 1 notifies two devices");

        // Another holder takes the lease (as a replica would after this one failed to renew in time).
        await using var store = new PostgresFleetStore(database);
        // Release and take are two statements: the replica's next tick may renew in between, so try again.
        await Eventually.GetAsync(
            async () =>
            {
                await store.ReleaseLeaseAsync(RolloutEngine.LeaseName, engine.ReplicaId, ct);
                return await store.TryAcquireLeaseAsync(RolloutEngine.LeaseName, "intruder", TimeSpan.FromMinutes(1), DateTimeOffset.UtcNow, ct);
            },
            taken => taken,
            "the intruder takes the lease");
        await Eventually.TrueAsync(() => !engine.IsLeader, "the replica notices at its next renewal that it lost the lease", TimeSpan.FromSeconds(5));

        // Reports still reach the registry, but nobody here acts on them: no outcome, no next phase.
        foreach (var device in _devices)
        {
            device.Behaviour = DeviceBehaviour.Succeed;
        }

        foreach (var device in phase1)
        {
            await device.PublishStatusAsync(UpdateState.Committed, rollout.Id);
        }

        await Eventually.GetAsync(
            () => server.Http.GetFromJsonAsync(OperatorRoutes.Devices, OperatorJsonContext.Default.IReadOnlyListDeviceInfo)!,
            d => d!.Count(x => x.State == UpdateState.Committed) == 2,
            "the registry records both commits");

        // Absence cannot be awaited: give the engine several ticks to (wrongly) act.
        await Task.Delay(TimeSpan.FromMilliseconds(500), ct);
        var idle = await GetAsync(server, rollout.Id);
        Assert.Equal(0, idle.CurrentPhase);
        Assert.Equal(0, idle.Succeeded);
        Assert.Equal(2, _devices.Count(d => d.DeviceNotices > 0));

        // The intruder goes away: the replica takes the lease back, settles the commits it ignored from
        // the registry, advances and completes.
        Assert.True(await store.ReleaseLeaseAsync(RolloutEngine.LeaseName, "intruder", ct));
        var done = await Eventually.GetAsync(() => GetAsync(server, rollout.Id), r => r.State == RolloutState.Completed, "the rollout completes after the lease is regained");
        Assert.Equal(4, done.Succeeded);
        Assert.All(_devices, d => Assert.Equal(1, d.DeviceNotices));
    }

    /// <summary>A replica on the shared database; with <paramref name="mqttPort"/> it uses that external broker, else its embedded one.</summary>
    private async Task<TestServer> StartReplicaAsync(string database, int? mqttPort, TimeSpan? leaseDuration = null, Action<ServerOptions>? configure = null)
    {
        var server = await TestServer.StartAsync(
            o =>
            {
                o.Database.Provider = DatabaseProvider.Postgres;
                o.Database.ConnectionString = database;
                o.Rollouts.TickInterval = TimeSpan.FromMilliseconds(100);
                o.Rollouts.LeaseDuration = leaseDuration ?? TimeSpan.FromSeconds(3);
                if (mqttPort is { } port)
                {
                    o.Mqtt.Mode = BrokerMode.External;
                    o.Mqtt.Host = "127.0.0.1";
                    o.Mqtt.Port = port;
                }

                configure?.Invoke(o);
            },
            trust: _trust);
        _servers.Add(server);
        return server;
    }

    private async Task<List<SimulatedDevice>> NotifiedAsync(int count, string what)
    {
        await Eventually.TrueAsync(() => _devices.Count(d => d.DeviceNotices > 0) >= count, what);
        var notified = _devices.Where(d => d.DeviceNotices > 0).ToList();
        Assert.Equal(count, notified.Count);
        return notified;
    }

    private static async Task<RolloutInfo> GetAsync(TestServer server, string id) =>
        (await server.Http.GetFromJsonAsync(OperatorRoutes.Rollout(id), OperatorJsonContext.Default.RolloutInfo))!;
}
