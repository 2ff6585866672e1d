using System.Buffers;
using EdgeUpdater.Protocol;
using MQTTnet;
using MQTTnet.Protocol;

namespace EdgeUpdater.Server.Mqtt;

/// <summary>Where the server's MQTT client connects, and as whom.</summary>
internal sealed record MqttEndpoint(string Host, int Port, string? Username, string? Password);

/// <summary>
/// The server's own MQTT client, the same for the embedded and an external broker: subscribes to every
/// device's status (retained, so a (re)connect brings the whole fleet's last state) and publishes
/// notices and commands. Reconnects with backoff when the broker goes away.
/// </summary>
internal sealed class FleetMqttClient : IFleetPublisher, IAsyncDisposable
{
    private readonly MqttTopics _topics;
    private readonly ILogger<FleetMqttClient> _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly IMqttClient _client;
    private MqttClientOptions? _options;
    private Func<string, ReadOnlySequence<byte>, Task>? _onStatus;
    private Task _reconnectLoop = Task.CompletedTask;

    public FleetMqttClient(MqttTopics topics, ILogger<FleetMqttClient> logger)
    {
        _topics = topics;
        _logger = logger;
        _client = new MqttClientFactory().CreateMqttClient();
        _client.ApplicationMessageReceivedAsync += e =>
        {
            var handler = _onStatus;
            return handler is null ? Task.CompletedTask : handler(e.ApplicationMessage.Topic, e.ApplicationMessage.Payload);
        };
    }

    public bool IsConnected => _client.IsConnected;

    /// <summary>Connects (retrying until <paramref name="cancellationToken"/>), subscribes, then keeps the connection up.</summary>
    public async Task StartAsync(MqttEndpoint endpoint, Func<string, ReadOnlySequence<byte>, Task> onStatus, CancellationToken cancellationToken = default)
    {
        _onStatus = onStatus;
        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer(endpoint.Host, endpoint.Port)
            .WithClientId($"edgeupdater-server-{Guid.NewGuid():N}")
            .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500)
            .WithCleanSession(true)
            .WithKeepAlivePeriod(TimeSpan.FromSeconds(30))
            .WithTimeout(TimeSpan.FromSeconds(10));
        if (endpoint.Username is not null)
        {
            builder.WithCredentials(endpoint.Username, endpoint.Password);
        }

        _options = builder.Build();
        var delay = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            try
            {
                await ConnectAndSubscribeAsync(cancellationToken).ConfigureAwait(false);
                break;
            }
            catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                _logger.LogWarning("MQTT broker {Host}:{Port} not reachable yet: {Message}", endpoint.Host, endpoint.Port, e.Message);
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
            }
        }

        _client.DisconnectedAsync += OnDisconnectedAsync;
    }

    /// <summary>Publishes with QoS 1; throws when the broker is not reachable.</summary>
    public async Task PublishAsync(string topic, ReadOnlyMemory<byte> payload, bool retain, CancellationToken cancellationToken = default)
    {
        var message = new MqttApplicationMessageBuilder()
            .WithTopic(topic)
            .WithPayload(payload.ToArray())
            .WithRetainFlag(retain)
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .Build();
        var result = await _client.PublishAsync(message, cancellationToken).ConfigureAwait(false);
        if (!result.IsSuccess)
        {
            throw new InvalidOperationException($"The broker refused the publish to '{topic}': {result.ReasonCode} {result.ReasonString}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        _client.DisconnectedAsync -= OnDisconnectedAsync;
        try
        {
            await _reconnectLoop.ConfigureAwait(false);
            if (_client.IsConnected)
            {
                await _client.DisconnectAsync().ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException)
        {
            // Going away anyway.
        }

        _client.Dispose();
    }

    private async Task ConnectAndSubscribeAsync(CancellationToken cancellationToken)
    {
        var connect = await _client.ConnectAsync(_options!, cancellationToken).ConfigureAwait(false);
        if (connect.ResultCode != MqttClientConnectResultCode.Success)
        {
            throw new InvalidOperationException($"The MQTT broker refused the server's login: {connect.ResultCode} {connect.ReasonString}");
        }

        var subscribe = new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(f => f.WithTopic(_topics.AllDeviceStatus).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce))
            .Build();
        var result = await _client.SubscribeAsync(subscribe, cancellationToken).ConfigureAwait(false);
        foreach (var item in result.Items)
        {
            if (item.ResultCode > MqttClientSubscribeResultCode.GrantedQoS2)
            {
                throw new InvalidOperationException($"The MQTT broker refused the server's subscription to '{item.TopicFilter.Topic}': {item.ResultCode}");
            }
        }
    }

    private Task OnDisconnectedAsync(MqttClientDisconnectedEventArgs e)
    {
        if (_stopping.IsCancellationRequested || !_reconnectLoop.IsCompleted)
        {
            return Task.CompletedTask;
        }

        _logger.LogWarning("Lost the MQTT broker ({Reason}); reconnecting", e.Reason);
        _reconnectLoop = Task.Run(ReconnectAsync);
        return Task.CompletedTask;
    }

    private async Task ReconnectAsync()
    {
        var delay = TimeSpan.FromMilliseconds(200);
        while (!_stopping.IsCancellationRequested && !_client.IsConnected)
        {
            try
            {
                await Task.Delay(delay, _stopping.Token).ConfigureAwait(false);
                await ConnectAndSubscribeAsync(_stopping.Token).ConfigureAwait(false);
                _logger.LogInformation("Reconnected to the MQTT broker");
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or InvalidOperationException or OperationCanceledException)
            {
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
            }
        }
    }
}
