using System.Buffers;
using System.Collections.Concurrent;
using System.Text.Json;
using EdgeUpdater.Protocol;
using MQTTnet;
using MQTTnet.Protocol;

namespace EdgeUpdater.Agent.Tests.Fixtures;

/// <summary>The server's side of MQTT for tests: publishes notices and commands, watches device status.</summary>
internal sealed class StatusProbe : IAsyncDisposable
{
    private readonly IMqttClient _client;
    private readonly MqttTopics _topics = new();
    private readonly ConcurrentQueue<DeviceStatus> _statuses = new();
    private readonly SemaphoreSlim _arrived = new(0);

    private StatusProbe(IMqttClient client)
    {
        _client = client;
    }

    public IReadOnlyCollection<DeviceStatus> Statuses => _statuses;

    public DeviceStatus? Latest => _statuses.LastOrDefault();

    public static async Task<StatusProbe> ConnectAsync(int port)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        var probe = new StatusProbe(client);
        client.ApplicationMessageReceivedAsync += e =>
        {
            var status = JsonSerializer.Deserialize(e.ApplicationMessage.Payload.ToArray(), ProtocolJsonContext.Default.DeviceStatus);
            if (status is not null)
            {
                probe._statuses.Enqueue(status);
                probe._arrived.Release();
            }

            return Task.CompletedTask;
        };
        await client.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", port).WithClientId("test-server-" + Guid.NewGuid().ToString("N")[..8]).Build());
        await client.SubscribeAsync(probe._topics.AllDeviceStatus, MqttQualityOfServiceLevel.AtLeastOnce);
        return probe;
    }

    public async Task<DeviceStatus> WaitForAsync(Func<DeviceStatus, bool> predicate, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var match = _statuses.FirstOrDefault(predicate);
            if (match is not null)
            {
                return match;
            }

            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || !await _arrived.WaitAsync(left))
            {
                var seen = string.Join("\n", _statuses.Select(s => $"{s.State} {s.LastError} [{string.Join(", ", s.Targets.Select(t => $"{t.Name}:{t.State}:{t.ActiveSlot}:{t.Version}"))}]"));
                throw new TimeoutException($"no status {what} within {timeout.TotalSeconds} s; seen:\n{seen}");
            }
        }
    }

    /// <summary>Forgets what was seen so far (before the next phase of a test).</summary>
    public void Clear() => _statuses.Clear();

    public Task PublishNoticeAsync(string deviceId, SignedManifest manifest, string target = "app", string name = "demo") =>
        PublishAsync(_topics.DeviceNotice(deviceId), Notice(manifest, target, name), retain: false);

    public Task PublishGroupNoticeAsync(string group, SignedManifest manifest, string target = "app") =>
        PublishAsync(_topics.GroupNotice(group), Notice(manifest, target, "demo"), retain: true);

    public async Task PublishCommandAsync(string deviceId, DeviceCommandKind kind, string id)
    {
        var command = new DeviceCommand { Id = id, Kind = kind, IssuedAt = DateTimeOffset.UtcNow };
        await _client.PublishAsync(new MqttApplicationMessageBuilder()
            .WithTopic(_topics.DeviceCommand(deviceId))
            .WithPayload(JsonSerializer.SerializeToUtf8Bytes(command, ProtocolJsonContext.Default.DeviceCommand))
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .Build());
    }

    private static UpdateNotice Notice(SignedManifest manifest, string target, string name) => new()
    {
        RolloutId = "rollout-" + manifest.Version,
        Target = target,
        Name = name,
        Version = manifest.Version,
        ManifestSha256 = manifest.Sha256,
        ImageSha256 = manifest.ImageSha256,
        ImageSize = manifest.ImageSize,
        IssuedAt = DateTimeOffset.UtcNow,
    };

    private async Task PublishAsync(string topic, UpdateNotice notice, bool retain)
    {
        await _client.PublishAsync(new MqttApplicationMessageBuilder()
            .WithTopic(topic)
            .WithPayload(JsonSerializer.SerializeToUtf8Bytes(notice, ProtocolJsonContext.Default.UpdateNotice))
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .WithRetainFlag(retain)
            .Build());
    }

    public async ValueTask DisposeAsync()
    {
        if (_client.IsConnected)
        {
            await _client.DisconnectAsync();
        }

        _client.Dispose();
        _arrived.Dispose();
    }
}
