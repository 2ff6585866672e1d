using System.Net.Http.Json;
using EdgeUpdater.Protocol;
using EdgeUpdater.Server.Tests.Support;
using MQTTnet;
using Xunit;

namespace EdgeUpdater.Server.Tests.Mqtt;

/// <summary>The embedded broker authenticates devices and confines each to its own topics.</summary>
public sealed class EmbeddedBrokerAclTests : IAsyncLifetime
{
    private TestServer _server = null!;

    public async ValueTask InitializeAsync() => _server = await TestServer.StartAsync();

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_device_cannot_publish_as_another()
    {
        var a = await _server.IssueCredentialsAsync("dev-a", "lab");
        await _server.IssueCredentialsAsync("dev-b", "lab");
        await using var deviceA = await ConnectAsync("dev-a", a.Password);

        var forged = await deviceA.PublishStatusAsync(UpdateState.Failed, asDeviceId: "dev-b");
        Assert.False(forged.IsSuccess);
        await deviceA.PublishStatusAsync(UpdateState.Idle);

        // Reports are stored in arrival order: once dev-a's own one is in, a forged one would be too.
        await Eventually.GetAsync(() => DeviceAsync("dev-a"), d => d is not null, "dev-a's status is registered");
        Assert.Null(await DeviceAsync("dev-b"));
    }

    [Fact]
    public async Task A_device_subscribes_only_to_its_own_topics_and_its_group()
    {
        var a = await _server.IssueCredentialsAsync("dev-a", "lab");
        await using var deviceA = await ConnectAsync("dev-a", a.Password, subscribe: false);
        var topics = _server.Host.Topics;
        Assert.True(await deviceA.TrySubscribeAsync(topics.DeviceNotice("dev-a")) <= MqttClientSubscribeResultCode.GrantedQoS2);
        Assert.True(await deviceA.TrySubscribeAsync(topics.DeviceCommand("dev-a")) <= MqttClientSubscribeResultCode.GrantedQoS2);
        Assert.True(await deviceA.TrySubscribeAsync(topics.GroupNotice("lab")) <= MqttClientSubscribeResultCode.GrantedQoS2);
        Assert.Equal(MqttClientSubscribeResultCode.NotAuthorized, await deviceA.TrySubscribeAsync(topics.DeviceCommand("dev-b")));
        Assert.Equal(MqttClientSubscribeResultCode.NotAuthorized, await deviceA.TrySubscribeAsync(topics.GroupNotice("field")));
        Assert.Equal(MqttClientSubscribeResultCode.NotAuthorized, await deviceA.TrySubscribeAsync(topics.AllDeviceStatus));
        Assert.Equal(MqttClientSubscribeResultCode.NotAuthorized, await deviceA.TrySubscribeAsync("#"));
    }

    [Fact]
    public async Task A_wrong_or_revoked_password_is_refused()
    {
        var a = await _server.IssueCredentialsAsync("dev-a", "lab");
        await Assert.ThrowsAnyAsync<Exception>(() => ConnectAsync("dev-a", a.Password + "x"));
        await Assert.ThrowsAnyAsync<Exception>(() => ConnectAsync("dev-unknown", a.Password));
        using var revoke = await _server.Http.DeleteAsync(OperatorRoutes.DeviceCredentials("dev-a"));
        revoke.EnsureSuccessStatusCode();
        await Assert.ThrowsAnyAsync<Exception>(() => ConnectAsync("dev-a", a.Password));
    }

    [Fact]
    public async Task Status_reports_fill_the_registry_and_the_last_will_marks_offline()
    {
        var a = await _server.IssueCredentialsAsync("dev-a", "lab");
        var deviceA = await ConnectAsync("dev-a", a.Password);
        await deviceA.PublishStatusAsync(UpdateState.Idle);
        var online = await Eventually.GetAsync(() => DeviceAsync("dev-a"), d => d is { Online: true }, "dev-a is online");
        Assert.Equal("lab", online!.Group);
        Assert.Equal("sim-board", online.Hardware);
        Assert.Equal(UpdateState.Idle, online.State);
        Assert.True(online.HasCredentials);
        Assert.Equal("a", Assert.Single(online.Targets).ActiveSlot);

        await deviceA.DropAsync();
        var offline = await Eventually.GetAsync(() => DeviceAsync("dev-a"), d => d is { Online: false }, "the will marks dev-a offline");
        Assert.Equal(UpdateState.Idle, offline!.State);
        await deviceA.DisposeAsync();
    }

    [Fact]
    public async Task A_will_aimed_at_another_device_is_not_delivered()
    {
        var a = await _server.IssueCredentialsAsync("dev-a", "lab");
        var b = await _server.IssueCredentialsAsync("dev-b", "lab");
        await using var deviceB = await ConnectAsync("dev-b", b.Password);
        var broker = _server.Host.Services.GetRequiredServiceOf<EdgeUpdater.Server.Mqtt.EmbeddedBroker>();
        var clientsBefore = await broker.CountClientsAsync();

        // dev-a names the status topic of dev-c (which never reports) as its will, then drops.
        var client = new MqttClientFactory().CreateMqttClient();
        await client.ConnectAsync(new MqttClientOptionsBuilder()
            .WithTcpServer(_server.Host.MqttHost, _server.Host.MqttPort)
            .WithClientId("dev-a")
            .WithCredentials("dev-a", a.Password)
            .WithWillTopic(_server.Host.Topics.DeviceStatus("dev-c"))
            .WithWillPayload("offline"u8.ToArray())
            .WithWillRetain(true)
            .Build());
        client.Dispose(); // No DISCONNECT packet: the broker handles the will.
        await Eventually.GetAsync(() => broker.CountClientsAsync(), n => n == clientsBefore, "the broker drops dev-a's session");

        // Reports are stored in arrival order: once this one is in, a delivered will would be too.
        await deviceB.PublishStatusAsync(UpdateState.Idle);
        await Eventually.GetAsync(() => DeviceAsync("dev-b"), d => d is not null, "dev-b's report arrives");
        Assert.Null(await DeviceAsync("dev-c"));
    }

    [Fact]
    public async Task Commands_reach_the_device()
    {
        var a = await _server.IssueCredentialsAsync("dev-a", "lab");
        await using var deviceA = await ConnectAsync("dev-a", a.Password);
        await deviceA.PublishStatusAsync(UpdateState.Idle);
        await Eventually.GetAsync(() => DeviceAsync("dev-a"), d => d is not null, "dev-a is registered");
        using var response = await _server.Http.PostAsJsonAsync(OperatorRoutes.DeviceCommands("dev-a"), new DeviceCommandRequest { Kind = DeviceCommandKind.Rollback, Target = "app" }, OperatorJsonContext.Default.DeviceCommandRequest);
        response.EnsureSuccessStatusCode();
        var sent = await response.Content.ReadFromJsonAsync(OperatorJsonContext.Default.DeviceCommand);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var received = await deviceA.Commands.Reader.ReadAsync(timeout.Token);
        Assert.Equal(sent!.Id, received.Id);
        Assert.Equal(DeviceCommandKind.Rollback, received.Kind);
        Assert.Equal("app", received.Target);
    }

    private Task<SimulatedDevice> ConnectAsync(string id, string password, bool subscribe = true) =>
        SimulatedDevice.ConnectAsync(_server.Host.MqttHost, _server.Host.MqttPort, _server.Host.Topics, id, "lab", new string('1', 64), password, subscribe: subscribe);

    private async Task<DeviceInfo?> DeviceAsync(string id)
    {
        using var response = await _server.Http.GetAsync(OperatorRoutes.Device(id));
        return response.IsSuccessStatusCode ? await response.Content.ReadFromJsonAsync(OperatorJsonContext.Default.DeviceInfo) : null;
    }
}
