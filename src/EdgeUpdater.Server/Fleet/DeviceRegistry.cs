using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using EdgeUpdater.Protocol;
using EdgeUpdater.Server.Storage;

namespace EdgeUpdater.Server.Fleet;

/// <summary>A status report as received: the device id is the topic's, never the payload's.</summary>
internal sealed record ReceivedStatus(string DeviceId, DeviceStatus? Status, DateTimeOffset ReceivedAt)
{
    /// <summary>True for the last will (or an explicit <c>offline</c> report).</summary>
    public bool Offline => Status is null || Status.State == UpdateState.Offline;
}

/// <summary>
/// Turns MQTT status messages into the device registry. Messages are parsed on the MQTT thread and
/// queued; one writer drains the queue in batches (one transaction per batch, the newest report per
/// device wins), so a fleet reconnecting at once costs a few transactions, not one per message. The
/// rollout engine sees every report, in order, after it is stored.
/// </summary>
internal sealed class DeviceRegistry : IAsyncDisposable
{
    private const int MaxBatch = 2000;
    private readonly Channel<ReceivedStatus> _queue = Channel.CreateUnbounded<ReceivedStatus>(new UnboundedChannelOptions { SingleReader = true });
    private readonly IFleetStore _store;
    private readonly MqttTopics _topics;
    private readonly TimeProvider _time;
    private readonly ILogger<DeviceRegistry> _logger;
    private Func<IReadOnlyList<ReceivedStatus>, CancellationToken, Task>? _observer;
    private Task _writer = Task.CompletedTask;
    private long _received;
    private long _stored;

    public DeviceRegistry(IFleetStore store, MqttTopics topics, TimeProvider time, ILogger<DeviceRegistry> logger)
    {
        _store = store;
        _topics = topics;
        _time = time;
        _logger = logger;
    }

    /// <summary>Status messages accepted so far.</summary>
    public long Received => Interlocked.Read(ref _received);

    /// <summary>Status messages written to the store so far.</summary>
    public long Stored => Interlocked.Read(ref _stored);

    /// <summary>Starts the writer; <paramref name="observer"/> sees each stored batch (the rollout engine).</summary>
    public void Start(Func<IReadOnlyList<ReceivedStatus>, CancellationToken, Task> observer)
    {
        _observer = observer;
        _writer = Task.Run(WriteLoopAsync);
    }

    /// <summary>Accepts one MQTT message on a status topic. Malformed ones are logged and dropped.</summary>
    public Task OnMessageAsync(string topic, ReadOnlySequence<byte> payload)
    {
        var deviceId = _topics.TryParseStatusDeviceId(topic);
        if (deviceId is null || payload.IsEmpty)
        {
            return Task.CompletedTask; // Not ours, or a retained message being cleared.
        }

        var status = Parse(deviceId, payload);
        if (status is null && !IsOfflineWord(payload))
        {
            return Task.CompletedTask;
        }

        Interlocked.Increment(ref _received);
        _queue.Writer.TryWrite(new ReceivedStatus(deviceId, status, _time.GetUtcNow()));
        return Task.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
    }

    private DeviceStatus? Parse(string deviceId, ReadOnlySequence<byte> payload)
    {
        try
        {
            var reader = new Utf8JsonReader(payload);
            var status = JsonSerializer.Deserialize(ref reader, ProtocolJsonContext.Default.DeviceStatus);
            if (status is null)
            {
                return null;
            }

            ProtocolVersion.Check(status.Schema, $"status of device '{deviceId}'");
            if (status.DeviceId != deviceId)
            {
                _logger.LogWarning("Dropped a status on the topic of '{Topic}' that claims to be from '{Claimed}'", deviceId, status.DeviceId);
                return null;
            }

            return status;
        }
        catch (Exception e) when (e is JsonException or ProtocolException)
        {
            if (!IsOfflineWord(payload))
            {
                _logger.LogWarning("Dropped a malformed status from '{Device}': {Message}", deviceId, e.Message);
            }

            return null;
        }
    }

    private static bool IsOfflineWord(ReadOnlySequence<byte> payload) =>
        payload.Length <= 16 && Encoding.UTF8.GetString(payload).Trim().Trim('"') == "offline";

    private async Task WriteLoopAsync()
    {
        var batch = new List<ReceivedStatus>(MaxBatch);
        while (await _queue.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var item))
            {
                batch.Add(item);
            }

            try
            {
                await StoreAsync(batch).ConfigureAwait(false);
                Interlocked.Add(ref _stored, batch.Count);
                if (_observer is not null)
                {
                    await _observer(batch, CancellationToken.None).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _logger.LogError(e, "Storing {Count} device status reports failed; they are lost until the devices report again", batch.Count);
            }
        }
    }

    private async Task StoreAsync(List<ReceivedStatus> batch)
    {
        var latest = new Dictionary<string, ReceivedStatus>(StringComparer.Ordinal);
        foreach (var item in batch)
        {
            latest[item.DeviceId] = item;
        }

        var online = new List<DeviceRecord>(latest.Count);
        foreach (var item in latest.Values)
        {
            if (item.Offline)
            {
                // The will was composed at connect time: keep the rest of the row, only flip online.
                await _store.SetDeviceOfflineAsync(item.DeviceId, item.ReceivedAt).ConfigureAwait(false);
                continue;
            }

            var s = item.Status!;
            online.Add(new DeviceRecord
            {
                DeviceId = item.DeviceId,
                Group = s.Group,
                Hardware = s.Hardware,
                Architecture = s.Architecture,
                AgentVersion = s.AgentVersion,
                State = s.State,
                Online = true,
                LastSeen = item.ReceivedAt,
                LastError = s.LastError,
                RolloutId = s.RolloutId,
                Targets = s.Targets,
                Codecs = s.Codecs,
            });
        }

        await _store.UpsertDevicesAsync(online).ConfigureAwait(false);
    }
}
