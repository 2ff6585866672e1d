using EdgeUpdater.Protocol;
using EdgeUpdater.Server.Storage;
using EdgeUpdater.Server.Tests.Support;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Server.Tests.Storage;

/// <summary>The store contract, run for real against each provider (see the two subclasses).</summary>
public abstract class FleetStoreTests : IAsyncLifetime
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);
    private IFleetStore? _store;

    private protected IFleetStore Store => _store!;

    /// <summary>Opens a store on the same database each time it is called.</summary>
    private protected abstract Task<IFleetStore> OpenAsync();

    public async ValueTask InitializeAsync()
    {
        _store = await OpenAsync();
        await _store.MigrateAsync(TestContext.Current.CancellationToken);
    }

    public virtual async ValueTask DisposeAsync()
    {
        if (_store is not null)
        {
            await _store.DisposeAsync();
        }

        GC.SuppressFinalize(this);
    }

    [Fact]
    public async Task Migrations_are_recorded_once_and_rerunning_them_changes_nothing()
    {
        await Store.MigrateAsync(TestContext.Current.CancellationToken);
        var applied = await Store.GetAppliedMigrationsAsync(TestContext.Current.CancellationToken);
        Assert.Equal(Migrations.All.Select(m => m.Version), applied);
    }

    [Fact]
    public async Task Releases_are_added_once_and_read_back()
    {
        var release = Release("a", "1.0.0");
        Assert.True(await Store.AddReleaseAsync(release));
        Assert.False(await Store.AddReleaseAsync(release with { Version = "9.9.9" }));
        var back = await Store.GetReleaseAsync(release.ManifestSha256);
        Assert.NotNull(back);
        Assert.Equal(release.Version, back.Version);
        Assert.Equal(["board-a", "board-b"], back.Hardware);
        Assert.Equal(release.ExpiresAt, back.ExpiresAt);
        Assert.True(await Store.IsPublishedImageAsync(release.ImageSha256));
        Assert.False(await Store.IsPublishedImageAsync(Sha('z')));
        await Store.AddReleaseAsync(Release("b", "2.0.0") with { PublishedAt = T0.AddHours(1) });
        Assert.Equal(["2.0.0", "1.0.0"], (await Store.ListReleasesAsync()).Select(r => r.Version));
    }

    [Fact]
    public async Task Device_status_upserts_keep_the_newest_and_offline_keeps_the_rest()
    {
        await Store.UpsertDevicesAsync([Device("d1", "lab", UpdateState.Idle), Device("d2", "field", UpdateState.Idle)]);
        await Store.UpsertDevicesAsync([Device("d1", "lab", UpdateState.Trial) with { LastError = "slow" }]);
        await Store.SetDeviceOfflineAsync("d1", T0.AddMinutes(5));
        var d1 = await Store.GetDeviceAsync("d1");
        Assert.NotNull(d1);
        Assert.Equal(UpdateState.Trial, d1.State);
        Assert.False(d1.Online);
        Assert.Equal("slow", d1.LastError);
        Assert.Equal(T0.AddMinutes(5), d1.LastSeen);
        Assert.Equal("a", Assert.Single(d1.Targets).ActiveSlot);
        Assert.Equal(["d1"], (await Store.ListDevicesAsync("lab")).Select(d => d.DeviceId));
        Assert.Equal(["d1", "d2"], (await Store.ListDevicesAsync()).Select(d => d.DeviceId));
    }

    [Fact]
    public async Task A_registered_group_overrides_the_reported_one()
    {
        await Store.UpsertDevicesAsync([Device("d1", "claimed", UpdateState.Idle)]);
        await Store.SetCredentialAsync(new DeviceCredentialRecord("d1", "registered", Sha('p'), T0));
        var d1 = await Store.GetDeviceAsync("d1");
        Assert.Equal("registered", d1!.Group);
        Assert.True(d1.HasCredentials);
        Assert.Empty(await Store.ListDevicesAsync("claimed"));
        Assert.Single(await Store.ListDevicesAsync("registered"));
    }

    [Fact]
    public async Task Credentials_are_replaced_listed_and_revoked()
    {
        await Store.SetCredentialAsync(new DeviceCredentialRecord("d1", "g", Sha('1'), T0));
        await Store.SetCredentialAsync(new DeviceCredentialRecord("d1", null, Sha('2'), T0.AddDays(1)));
        var credential = await Store.GetCredentialAsync("d1");
        Assert.Equal(Sha('2'), credential!.PasswordSha256);
        Assert.Null(credential.Group);
        Assert.Single(await Store.ListCredentialsAsync());
        Assert.True(await Store.DeleteCredentialAsync("d1"));
        Assert.False(await Store.DeleteCredentialAsync("d1"));
        Assert.Null(await Store.GetCredentialAsync("d1"));
    }

    [Fact]
    public async Task Rollouts_and_their_devices_round_trip()
    {
        var rollout = Rollout("r-1");
        await Store.AddRolloutAsync(rollout);
        await Store.UpdateRolloutAsync(rollout with { State = RolloutState.Paused, CurrentPhase = 2, PauseReason = "why", FailuresAcknowledged = 3, GroupNoticePublished = true, UpdatedAt = T0.AddHours(1) });
        var back = await Store.GetRolloutAsync("r-1");
        Assert.Equal(RolloutState.Paused, back!.State);
        Assert.Equal(2, back.CurrentPhase);
        Assert.Equal("why", back.PauseReason);
        Assert.Equal(3, back.FailuresAcknowledged);
        Assert.True(back.GroupNoticePublished);
        Assert.Equal([1.0, 10, 50, 100], back.Phases);
        Assert.Equal(0.95, back.SuccessThreshold);

        await Store.AddRolloutDevicesAsync(
        [
            new RolloutDeviceRecord("r-1", "d1", 0, RolloutDeviceOutcome.Pending, null, T0, null),
            new RolloutDeviceRecord("r-1", "d2", 1, RolloutDeviceOutcome.Pending, null, T0, null),
        ]);
        await Store.AddRolloutDevicesAsync([new RolloutDeviceRecord("r-1", "d1", 5, RolloutDeviceOutcome.Failed, null, T0, null)]);
        await Store.UpdateRolloutDevicesAsync([new RolloutDeviceRecord("r-1", "d2", 1, RolloutDeviceOutcome.Failed, T0.AddMinutes(1), T0.AddMinutes(2), "boom")]);
        var devices = await Store.ListRolloutDevicesAsync("r-1");
        Assert.Equal([RolloutDeviceOutcome.Pending, RolloutDeviceOutcome.Failed], devices.Select(d => d.Outcome));
        Assert.Equal("boom", devices[1].LastError);
        Assert.Equal(T0.AddMinutes(1), devices[1].NotifiedAt);
        Assert.Equal(new RolloutCounts(1, 0, 0, 1), await Store.CountRolloutDevicesAsync("r-1"));
        Assert.Equal(["d2"], (await Store.FindActiveRolloutDevicesAsync(["d2", "d9"])).Select(d => d.DeviceId));

        await Store.UpdateRolloutAsync(back with { State = RolloutState.Completed });
        Assert.Empty(await Store.FindActiveRolloutDevicesAsync(["d1", "d2"]));
        Assert.Empty(await Store.ListRolloutsAsync([RolloutState.Running, RolloutState.Paused]));
        Assert.Single(await Store.ListRolloutsAsync());
    }

    [Fact]
    public async Task A_lease_is_acquired_renewed_refused_to_others_and_taken_over_after_expiry()
    {
        var ct = TestContext.Current.CancellationToken;
        var ttl = TimeSpan.FromSeconds(10);
        Assert.Null(await Store.GetLeaseAsync("engine", ct));
        Assert.True(await Store.TryAcquireLeaseAsync("engine", "a", ttl, T0, ct));
        Assert.Equal(new LeaseRecord("engine", "a", T0 + ttl), await Store.GetLeaseAsync("engine", ct));

        // Another holder is refused while the lease runs, up to the last millisecond; the row is untouched.
        Assert.False(await Store.TryAcquireLeaseAsync("engine", "b", ttl, T0.AddSeconds(5), ct));
        Assert.False(await Store.TryAcquireLeaseAsync("engine", "b", ttl, T0 + ttl - TimeSpan.FromMilliseconds(1), ct));
        Assert.Equal("a", (await Store.GetLeaseAsync("engine", ct))!.Holder);

        // The holder renews (the expiry moves), so the old expiry no longer lets "b" in.
        Assert.True(await Store.TryAcquireLeaseAsync("engine", "a", ttl, T0.AddSeconds(8), ct));
        Assert.Equal(T0.AddSeconds(18), (await Store.GetLeaseAsync("engine", ct))!.ExpiresAt);
        Assert.False(await Store.TryAcquireLeaseAsync("engine", "b", ttl, T0.AddSeconds(12), ct));

        // Leases are independent by name.
        Assert.True(await Store.TryAcquireLeaseAsync("other", "b", ttl, T0.AddSeconds(12), ct));

        // Once expired, another holder takes it over and the former one is refused.
        Assert.True(await Store.TryAcquireLeaseAsync("engine", "b", ttl, T0.AddSeconds(18), ct));
        Assert.False(await Store.TryAcquireLeaseAsync("engine", "a", ttl, T0.AddSeconds(19), ct));
        Assert.Equal(new LeaseRecord("engine", "b", T0.AddSeconds(28)), await Store.GetLeaseAsync("engine", ct));
    }

    [Fact]
    public async Task Only_the_holder_releases_a_lease_and_then_anyone_acquires_it()
    {
        var ct = TestContext.Current.CancellationToken;
        var ttl = TimeSpan.FromMinutes(1);
        Assert.True(await Store.TryAcquireLeaseAsync("engine", "a", ttl, T0, ct));
        Assert.False(await Store.ReleaseLeaseAsync("engine", "b", ct));
        Assert.False(await Store.TryAcquireLeaseAsync("engine", "b", ttl, T0.AddSeconds(1), ct));
        Assert.True(await Store.ReleaseLeaseAsync("engine", "a", ct));
        Assert.Null(await Store.GetLeaseAsync("engine", ct));
        Assert.True(await Store.TryAcquireLeaseAsync("engine", "b", ttl, T0.AddSeconds(1), ct));
        Assert.False(await Store.ReleaseLeaseAsync("engine", "a", ct));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Of_twenty_concurrent_acquirers_exactly_one_wins(bool expiredHolder)
    {
        var ct = TestContext.Current.CancellationToken;
        var ttl = TimeSpan.FromSeconds(30);
        if (expiredHolder)
        {
            // The contested row exists and has expired (the UPDATE path), rather than being absent (the INSERT path).
            Assert.True(await Store.TryAcquireLeaseAsync("engine", "gone", ttl, T0.AddMinutes(-5), ct));
        }

        using var start = new SemaphoreSlim(0, 20);
        var attempts = Enumerable.Range(0, 20).Select(i => Task.Run(
            async () =>
            {
                await start.WaitAsync(ct);
                return (Holder: $"r{i}", Won: await Store.TryAcquireLeaseAsync("engine", $"r{i}", ttl, T0, ct));
            },
            ct)).ToList();
        start.Release(20);
        var results = await Task.WhenAll(attempts).WaitAsync(TimeSpan.FromSeconds(30), ct);
        var winner = Assert.Single(results, r => r.Won);
        Assert.Equal(winner.Holder, (await Store.GetLeaseAsync("engine", ct))!.Holder);
    }

    [Fact]
    public async Task Commands_are_listed_newest_first()
    {
        await Store.AddCommandAsync(new CommandRecord("c1", "d1", DeviceCommandKind.CheckNow, null, T0));
        await Store.AddCommandAsync(new CommandRecord("c2", "d1", DeviceCommandKind.Rollback, "app", T0.AddMinutes(1)));
        var commands = await Store.ListCommandsAsync("d1");
        Assert.Equal(["c2", "c1"], commands.Select(c => c.Id));
        Assert.Equal("app", commands[0].Target);
    }

    [Fact]
    public async Task Everything_survives_closing_and_reopening_the_store()
    {
        await Store.AddReleaseAsync(Release("a", "1.0.0"));
        await Store.UpsertDevicesAsync([Device("d1", "lab", UpdateState.Committed)]);
        await Store.SetCredentialAsync(new DeviceCredentialRecord("d1", "lab", Sha('p'), T0));
        await Store.AddRolloutAsync(Rollout("r-1"));
        await Store.AddRolloutDevicesAsync([new RolloutDeviceRecord("r-1", "d1", 0, RolloutDeviceOutcome.Succeeded, T0, T0, null)]);
        await Store.DisposeAsync();

        _store = await OpenAsync();
        await Store.MigrateAsync();
        Assert.NotNull(await Store.GetReleaseAsync(Sha('a')));
        Assert.Equal(UpdateState.Committed, (await Store.GetDeviceAsync("d1"))!.State);
        Assert.NotNull(await Store.GetCredentialAsync("d1"));
        Assert.Equal(RolloutState.Running, (await Store.GetRolloutAsync("r-1"))!.State);
        Assert.Equal(1, (await Store.CountRolloutDevicesAsync("r-1")).Succeeded);
    }

    private static string Sha(char c) => new(c, 64);

    private static ReleaseInfo Release(string seed, string version) => new()
    {
        ManifestSha256 = Sha(seed[0]),
        ImageSha256 = Sha((char)(seed[0] + 1)),
        ImageSize = 4096,
        Name = "demo",
        Version = version,
        TargetKind = "app",
        Hardware = ["board-a", "board-b"],
        ExpiresAt = T0.AddDays(30),
        PublishedAt = T0,
    };

    private static DeviceRecord Device(string id, string group, UpdateState state) => new()
    {
        DeviceId = id,
        Group = group,
        Hardware = "board-a",
        Architecture = "arm64",
        AgentVersion = "0.1.0",
        State = state,
        Online = true,
        LastSeen = T0,
        Targets = [new TargetStatus { Name = "app", Kind = "app", State = state, ActiveSlot = "a", Version = "1.0.0", ImageSha256 = Sha('i') }],
    };

    private static RolloutRecord Rollout(string id) => new()
    {
        Id = id,
        ManifestSha256 = Sha('a'),
        ImageSha256 = Sha('b'),
        ImageSize = 4096,
        Name = "demo",
        Version = "1.0.0",
        Target = "app",
        Group = "lab",
        Phases = [1, 10, 50, 100],
        SuccessThreshold = 0.95,
        FailureThreshold = 0.05,
        State = RolloutState.Running,
        CreatedAt = T0,
        UpdatedAt = T0,
    };
}

/// <summary>The store contract on a real SQLite file.</summary>
public sealed class SqliteFleetStoreTests : FleetStoreTests
{
    private readonly TempDirectory _directory = new("sqlite-store");

    private protected override Task<IFleetStore> OpenAsync() =>
        Task.FromResult<IFleetStore>(new SqliteFleetStore($"Data Source={_directory.Combine("fleet.db")}"));

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        _directory.Dispose();
    }
}

/// <summary>The store contract on a real PostgreSQL.</summary>
public sealed class PostgresFleetStoreTests : FleetStoreTests
{
    private readonly PostgresFixture _postgres;
    private string? _connectionString;

    public PostgresFleetStoreTests(PostgresFixture postgres)
    {
        _postgres = postgres;
    }

    private protected override async Task<IFleetStore> OpenAsync()
    {
        _connectionString ??= await _postgres.CreateDatabaseAsync("store");
        return new PostgresFleetStore(_connectionString);
    }
}
