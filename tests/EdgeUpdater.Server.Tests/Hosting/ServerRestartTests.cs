using System.Net.Http.Json;
using EdgeUpdater.Protocol;
using EdgeUpdater.Server.Hosting;
using EdgeUpdater.Server.Tests.Support;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Server.Tests.Hosting;

/// <summary>A stopped and restarted server (same data directory and database) has all its state back.</summary>
public sealed class ServerRestartTests
{
    private readonly PostgresFixture _postgres;

    public ServerRestartTests(PostgresFixture postgres)
    {
        _postgres = postgres;
    }

    [Fact]
    public Task A_restart_keeps_all_state_with_sqlite() => RestartKeepsStateAsync(_ => { });

    [Fact]
    public async Task A_restart_keeps_all_state_with_postgres()
    {
        var connectionString = await _postgres.CreateDatabaseAsync("restart");
        await RestartKeepsStateAsync(o =>
        {
            o.Database.Provider = DatabaseProvider.Postgres;
            o.Database.ConnectionString = connectionString;
        });
    }

    private static async Task RestartKeepsStateAsync(Action<ServerOptions> configure)
    {
        using var work = new TempDirectory("restart");
        await using var server = await TestServer.StartAsync(configure);
        var image = await TestImages.BuildAsync(work, "demo", "2.0.0");
        var release = await server.PublishAsync(image);
        var credential = await server.IssueCredentialsAsync("dev-1", "lab");
        await using (var device = await SimulatedDevice.ConnectAsync(server.Host.MqttHost, server.Host.MqttPort, server.Host.Topics, "dev-1", "lab", new string('1', 64), credential.Password))
        {
            await device.PublishStatusAsync(UpdateState.Idle);
            await Eventually.GetAsync(() => server.Http.GetFromJsonAsync(OperatorRoutes.Devices, OperatorJsonContext.Default.IReadOnlyListDeviceInfo)!, d => d!.Count == 1, "dev-1 is registered");
        }

        using var start = await server.Http.PostAsJsonAsync(OperatorRoutes.Rollouts, new RolloutRequest { ManifestSha256 = release.ManifestSha256, Group = "lab" }, OperatorJsonContext.Default.RolloutRequest);
        var rollout = (await start.Content.ReadFromJsonAsync(OperatorJsonContext.Default.RolloutInfo))!;
        using (var pause = await server.Http.PostAsync(OperatorRoutes.RolloutAction(rollout.Id, RolloutAction.Pause), null))
        {
            pause.EnsureSuccessStatusCode();
        }

        await server.RestartAsync();

        Assert.Equal(release.ManifestSha256, Assert.Single((await server.Http.GetFromJsonAsync(OperatorRoutes.Releases, OperatorJsonContext.Default.IReadOnlyListReleaseInfo))!).ManifestSha256);
        Assert.Equal(await File.ReadAllBytesAsync(image.Path), await server.Anonymous.GetByteArrayAsync(HttpRoutes.Image(image.Sha256)));
        var device1 = (await server.Http.GetFromJsonAsync(OperatorRoutes.Device("dev-1"), OperatorJsonContext.Default.DeviceInfo))!;
        Assert.Equal("lab", device1.Group);
        Assert.True(device1.HasCredentials);
        var after = (await server.Http.GetFromJsonAsync(OperatorRoutes.Rollout(rollout.Id), OperatorJsonContext.Default.RolloutInfo))!;
        Assert.Equal(RolloutState.Paused, after.State);
        Assert.Equal(1, after.Selected);
        var chain = (await server.Anonymous.GetFromJsonAsync(KeySetRoutes.Chain, KeySetJsonContext.Default.KeySetChain))!;
        Assert.Equal(1, chain.NewestVersion);
        Assert.Equal(server.Trust.KeySetV1, Assert.Single(chain.KeySets));

        // The device's credential still logs in on the restarted broker.
        await using var again = await SimulatedDevice.ConnectAsync(server.Host.MqttHost, server.Host.MqttPort, server.Host.Topics, "dev-1", "lab", new string('1', 64), credential.Password);
    }
}
