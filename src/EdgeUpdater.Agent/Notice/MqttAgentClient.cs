using System.Buffers;
using System.Text.Json;
using EdgeUpdater.Agent.Config;
using EdgeUpdater.Agent.Coordinator;
using EdgeUpdater.Agent.State;
using EdgeUpdater.Protocol;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MQTTnet;
using MQTTnet.Exceptions;
using MQTTnet.Protocol;

namespace EdgeUpdater.Agent.Notice;

/// <summary>
/// The agent's MQTT side: a persistent session (clean start off, session expiry) so QoS 1 notices sent
/// while the device was away are delivered on reconnect; a retained last will <c>offline</c>; the
/// latest status published retained after every change; reconnect with exponential backoff.
/// </summary>
internal sealed partial class MqttAgentClient : BackgroundService
{
    private readonly AgentConfig _config;
    private readonly BrokerConfig _broker;
    private readonly MqttTopics _topics;
    private readonly UpdateCoordinator _coordinator;
    private readonly StatusHub _hub;
    private readonly ILogger<MqttAgentClient> _logger;
    private readonly IMqttClient _client;
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Lock _gate = new();
    private DeviceStatus? _unpublished;
    private bool _resubscribe;

    public MqttAgentClient(AgentConfig config, UpdateCoordinator coordinator, StatusHub hub, ILogger<MqttAgentClient> logger)
    {
        _config = config;
        _broker = config.Broker!;
        _topics = new MqttTopics(_broker.TopicPrefix);
        _coordinator = coordinator;
        _hub = hub;
        _logger = logger;
        _client = new MqttClientFactory().CreateMqttClient();
        _client.ApplicationMessageReceivedAsync += OnMessageAsync;
        _client.DisconnectedAsync += _ =>
        {
            _wake.Release();
            return Task.CompletedTask;
        };
        coordinator.CheckNowRequested += (_, _) =>
        {
            lock (_gate)
            {
                _resubscribe = true;
            }

            _wake.Release();
        };
        hub.Subscribe(status =>
        {
            lock (_gate)
            {
                _unpublished = status;
            }

            _wake.Release();
        });
    }

    public bool IsConnected => _client.IsConnected;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            if (!_client.IsConnected)
            {
                try
                {
                    await ConnectAsync(stoppingToken).ConfigureAwait(false);
                    failures = 0;
                }
                catch (Exception e) when (e is MqttCommunicationException or OperationCanceledException or IOException or InvalidOperationException && !stoppingToken.IsCancellationRequested)
                {
                    failures++;
                    var delay = TimeSpan.FromSeconds(Math.Min(_broker.ReconnectMaxSeconds, _broker.ReconnectMinSeconds * Math.Pow(2, Math.Min(failures - 1, 16))));
                    LogConnectFailed(_broker.Host!, _broker.Port, e.Message, delay.TotalSeconds);
                    await WaitAsync(delay, stoppingToken).ConfigureAwait(false);
                    continue;
                }
            }

            try
            {
                await FlushAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is MqttCommunicationException or InvalidOperationException && !stoppingToken.IsCancellationRequested)
            {
                LogPublishFailed(e.Message);
            }

            await WaitAsync(TimeSpan.FromSeconds(_broker.KeepAliveSeconds), stoppingToken).ConfigureAwait(false);
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        if (_client.IsConnected)
        {
            try
            {
                // A clean stop: publish the last status and disconnect normally (no last will).
                await FlushAsync(cancellationToken).ConfigureAwait(false);
                await _client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().WithReason(MqttClientDisconnectOptionsReason.NormalDisconnection).Build(), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is MqttCommunicationException or OperationCanceledException)
            {
                LogPublishFailed(e.Message);
            }
        }
    }

    public override void Dispose()
    {
        _client.Dispose();
        _wake.Dispose();
        base.Dispose();
    }

    private async Task WaitAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        try
        {
            await _wake.WaitAsync(delay, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task ConnectAsync(CancellationToken cancellationToken)
    {
        var offline = new DeviceStatus
        {
            DeviceId = _config.DeviceId!,
            Group = _config.Group,
            Hardware = _config.Hardware,
            State = UpdateState.Offline,
            Timestamp = DateTimeOffset.UtcNow,
        };
        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer(_broker.Host, _broker.Port)
            .WithClientId(_config.DeviceId)
            .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500)
            .WithCleanStart(false)
            .WithSessionExpiryInterval((uint)_broker.SessionExpirySeconds)
            .WithKeepAlivePeriod(TimeSpan.FromSeconds(_broker.KeepAliveSeconds))
            .WithTimeout(TimeSpan.FromSeconds(10))
            .WithWillTopic(_topics.DeviceStatus(_config.DeviceId!))
            .WithWillPayload(JsonSerializer.SerializeToUtf8Bytes(offline, ProtocolJsonContext.Default.DeviceStatus))
            .WithWillRetain(true)
            .WithWillQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce);
        if (_broker.Username is not null)
        {
            builder.WithCredentials(_broker.Username, _broker.Password);
        }

        if (_broker.Tls)
        {
            builder.WithTlsOptions(tls => tls.UseTls());
        }

        var result = await _client.ConnectAsync(builder.Build(), cancellationToken).ConfigureAwait(false);
        LogConnected(_broker.Host!, _broker.Port, result.IsSessionPresent);
        await SubscribeAsync(cancellationToken).ConfigureAwait(false);
        lock (_gate)
        {
            _unpublished ??= _hub.Current;
        }
    }

    private async Task SubscribeAsync(CancellationToken cancellationToken)
    {
        // Subscribing again after a session resumes is harmless and covers a broker that lost the session.
        var subscribe = new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(_topics.DeviceNotice(_config.DeviceId!), MqttQualityOfServiceLevel.AtLeastOnce)
            .WithTopicFilter(_topics.DeviceCommand(_config.DeviceId!), MqttQualityOfServiceLevel.AtLeastOnce);
        if (_config.Group is not null)
        {
            subscribe.WithTopicFilter(_topics.GroupNotice(_config.Group), MqttQualityOfServiceLevel.AtLeastOnce);
        }

        await _client.SubscribeAsync(subscribe.Build(), cancellationToken).ConfigureAwait(false);
    }

    private async Task FlushAsync(CancellationToken cancellationToken)
    {
        bool resubscribe;
        lock (_gate)
        {
            resubscribe = _resubscribe;
            _resubscribe = false;
        }

        if (resubscribe && _client.IsConnected && _config.Group is not null)
        {
            // Retained group notices are delivered again on a fresh subscription.
            await _client.UnsubscribeAsync(_topics.GroupNotice(_config.Group), cancellationToken).ConfigureAwait(false);
            await SubscribeAsync(cancellationToken).ConfigureAwait(false);
        }

        while (_client.IsConnected)
        {
            DeviceStatus? status;
            lock (_gate)
            {
                status = _unpublished;
                _unpublished = null;
            }

            if (status is null)
            {
                return;
            }

            var message = new MqttApplicationMessageBuilder()
                .WithTopic(_topics.DeviceStatus(_config.DeviceId!))
                .WithPayload(JsonSerializer.SerializeToUtf8Bytes(status, ProtocolJsonContext.Default.DeviceStatus))
                .WithRetainFlag(true)
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
                .Build();
            try
            {
                await _client.PublishAsync(message, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                lock (_gate)
                {
                    _unpublished ??= status;
                }

                throw;
            }
        }
    }

    private Task OnMessageAsync(MqttApplicationMessageReceivedEventArgs e)
    {
        var topic = e.ApplicationMessage.Topic;
        var payload = e.ApplicationMessage.Payload.ToArray();
        try
        {
            if (topic == _topics.DeviceCommand(_config.DeviceId!))
            {
                var command = JsonSerializer.Deserialize(payload, ProtocolJsonContext.Default.DeviceCommand) ?? throw new JsonException("null command");
                ProtocolVersion.Check(command.Schema, "command");
                LogCommand(command.Kind.ToString(), command.Id);
                switch (command.Kind)
                {
                    case DeviceCommandKind.Rollback:
                        _coordinator.Post(new RollbackRequest(command.Target, $"operator command {command.Id}", command.Id, null));
                        break;
                    case DeviceCommandKind.CheckNow:
                        _coordinator.CheckNow();
                        break;
                }
            }
            else if (payload.Length > 0)
            {
                var notice = JsonSerializer.Deserialize(payload, ProtocolJsonContext.Default.UpdateNotice) ?? throw new JsonException("null notice");
                ProtocolVersion.Check(notice.Schema, "notice");
                if (!HttpRoutes.IsSha256(notice.ManifestSha256) || !HttpRoutes.IsSha256(notice.ImageSha256))
                {
                    throw new ProtocolException("notice hashes are not lowercase hex SHA-256");
                }

                LogNotice(topic, notice.Target, notice.Version);
                _coordinator.Post(new NoticeRequest(notice));
            }
        }
        catch (Exception ex) when (ex is JsonException or ProtocolException)
        {
            LogBadMessage(topic, ex.Message);
        }

        return Task.CompletedTask;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT connected to {Host}:{Port} (session present: {SessionPresent})")]
    private partial void LogConnected(string host, int port, bool sessionPresent);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT connection to {Host}:{Port} failed: {Reason}; retrying in {Seconds} s")]
    private partial void LogConnectFailed(string host, int port, string reason, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "MQTT publish failed: {Reason}; will retry")]
    private partial void LogPublishFailed(string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Notice on {Topic}: {Target} {Version}")]
    private partial void LogNotice(string topic, string target, string version);

    [LoggerMessage(Level = LogLevel.Information, Message = "Command {Kind} ({Id})")]
    private partial void LogCommand(string kind, string id);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Ignoring a malformed message on {Topic}: {Reason}")]
    private partial void LogBadMessage(string topic, string reason);
}
