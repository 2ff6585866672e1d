using System.Text.Json;
using System.Threading.Channels;
using EdgeUpdater.Protocol;
using MQTTnet;
using MQTTnet.Protocol;

namespace EdgeUpdater.Server.Tests.Support;

/// <summary>How a simulated device answers an update notice.</summary>
internal enum DeviceBehaviour
{
    /// <summary>Only records the notice.</summary>
    Passive,

    /// <summary>Reports downloading, then committed on the new image.</summary>
    Succeed,

    /// <summary>Reports downloading, then rolled-back with an error.</summary>
    Fail,
}

/// <summary>
/// A device as the broker sees it: an MQTT client with the agent's topics, a retained status with a
/// last will, and optionally an automatic answer to notices. Not the agent: just its wire behaviour.
/// </summary>
internal sealed class SimulatedDevice : IAsyncDisposable
{
    private readonly IMqttClient _client;
    private readonly MqttTopics _topics;
    private string _imageSha256;
    private bool _dropped;

    private int _deviceNotices;

    private SimulatedDevice(IMqttClient client, MqttTopics topics, string id, string group, string imageSha256, DeviceBehaviour behaviour)
    {
        _client = client;
        _topics = topics;
        Id = id;
        Group = group;
        _imageSha256 = imageSha256;
        Behaviour = behaviour;
    }

    public string Id { get; }

    public string Group { get; }

    public DeviceBehaviour Behaviour { get; set; }

    public Channel<UpdateNotice> Notices { get; } = Channel.CreateUnbounded<UpdateNotice>();

    /// <summary>Notices received on this device's own topic (group notices not counted).</summary>
    public int DeviceNotices => Volatile.Read(ref _deviceNotices);

    public Channel<DeviceCommand> Commands { get; } = Channel.CreateUnbounded<DeviceCommand>();

    public static async Task<SimulatedDevice> ConnectAsync(
        string host,
        int port,
        MqttTopics topics,
        string id,
        string group,
        string imageSha256,
        string? password = null,
        string? username = null,
        DeviceBehaviour behaviour = DeviceBehaviour.Passive,
        bool subscribe = true)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        var device = new SimulatedDevice(client, topics, id, group, imageSha256, behaviour);
        var will = JsonSerializer.SerializeToUtf8Bytes(new DeviceStatus { DeviceId = id, Group = group, State = UpdateState.Offline }, ProtocolJsonContext.Default.DeviceStatus);
        var options = new MqttClientOptionsBuilder()
            .WithTcpServer(host, port)
            .WithClientId(id)
            .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500)
            .WithCredentials(username ?? id, password ?? string.Empty)
            .WithWillTopic(topics.DeviceStatus(id))
            .WithWillPayload(will)
            .WithWillRetain(true)
            .WithWillQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .WithTimeout(TimeSpan.FromSeconds(10))
            .Build();
        client.ApplicationMessageReceivedAsync += device.OnMessageAsync;
        var result = await client.ConnectAsync(options);
        if (result.ResultCode != MqttClientConnectResultCode.Success)
        {
            client.Dispose();
            throw new InvalidOperationException($"device {id} could not connect: {result.ResultCode}");
        }

        if (subscribe)
        {
            await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
                .WithTopicFilter(topics.DeviceNotice(id), MqttQualityOfServiceLevel.AtLeastOnce)
                .WithTopicFilter(topics.DeviceCommand(id), MqttQualityOfServiceLevel.AtLeastOnce)
                .WithTopicFilter(topics.GroupNotice(group), MqttQualityOfServiceLevel.AtLeastOnce)
                .Build());
        }

        return device;
    }

    /// <summary>Publishes a retained status for this device (or, to test the ACL, for another id's topic).</summary>
    public async Task<MqttClientPublishResult> PublishStatusAsync(UpdateState state, string? rolloutId = null, string? lastError = null, string? asDeviceId = null)
    {
        var id = asDeviceId ?? Id;
        var status = new DeviceStatus
        {
            DeviceId = id,
            Group = Group,
            Hardware = "sim-board",
            Architecture = "x64",
            AgentVersion = "0.1.0",
            State = state,
            RolloutId = rolloutId,
            LastError = lastError,
            Targets = [new TargetStatus { Name = "app", Kind = "app", State = state, ActiveSlot = "a", Version = "1", ImageSha256 = _imageSha256 }],
            Timestamp = DateTimeOffset.UtcNow,
        };
        return await _client.PublishAsync(new MqttApplicationMessageBuilder()
            .WithTopic(_topics.DeviceStatus(id))
            .WithPayload(JsonSerializer.SerializeToUtf8Bytes(status, ProtocolJsonContext.Default.DeviceStatus))
            .WithRetainFlag(true)
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .Build());
    }

    /// <summary>Subscribes to an arbitrary filter; returns the broker's result code.</summary>
    public async Task<MqttClientSubscribeResultCode> TrySubscribeAsync(string filter)
    {
        var result = await _client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(filter, MqttQualityOfServiceLevel.AtLeastOnce).Build());
        return result.Items.Single().ResultCode;
    }

    /// <summary>Drops the connection without a DISCONNECT packet (like a power cut), so the broker publishes the last will.</summary>
    public Task DropAsync()
    {
        _dropped = true;
        _client.Dispose();
        return Task.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        if (_dropped)
        {
            return;
        }

        if (_client.IsConnected)
        {
            await _client.DisconnectAsync();
        }

        _client.Dispose();
    }

    private async Task OnMessageAsync(MqttApplicationMessageReceivedEventArgs e)
    {
        var topic = e.ApplicationMessage.Topic;
        var payload = e.ApplicationMessage.Payload;
        if (payload.IsEmpty)
        {
            return;
        }

        if (topic == _topics.DeviceCommand(Id))
        {
            var reader = new Utf8JsonReader(payload);
            Commands.Writer.TryWrite(JsonSerializer.Deserialize(ref reader, ProtocolJsonContext.Default.DeviceCommand)!);
            return;
        }

        if (topic == _topics.DeviceNotice(Id))
        {
            Interlocked.Increment(ref _deviceNotices);
        }

        var noticeReader = new Utf8JsonReader(payload);
        var notice = JsonSerializer.Deserialize(ref noticeReader, ProtocolJsonContext.Default.UpdateNotice)!;
        Notices.Writer.TryWrite(notice);
        switch (Behaviour)
        {
            case DeviceBehaviour.Succeed:
                // Answer off the client's receive loop: MQTTnet must not be awaited from its own handler.
                _ = Task.Run(async () =>
                {
                    await PublishStatusAsync(UpdateState.Downloading, notice.RolloutId);
                    _imageSha256 = notice.ImageSha256;
                    await PublishStatusAsync(UpdateState.Committed, notice.RolloutId);
                });
                break;
            case DeviceBehaviour.Fail:
                _ = Task.Run(async () =>
                {
                    await PublishStatusAsync(UpdateState.Downloading, notice.RolloutId);
                    await PublishStatusAsync(UpdateState.RolledBack, notice.RolloutId, "health check failed: exit status 1");
                });
                break;
        }

        await Task.CompletedTask;
    }
}
