using EdgeUpdater.Protocol;

namespace EdgeUpdater.Agent.State;

/// <summary>
/// The latest <see cref="DeviceStatus"/> and the state it came from, handed to whoever reports it
/// (MQTT publisher, LED, control socket). Subscribers get every change; a slow one only misses
/// intermediate states, never the latest.
/// </summary>
internal sealed class StatusHub
{
    private readonly Lock _gate = new();
    private readonly List<Action<DeviceStatus>> _subscribers = [];

    public DeviceStatus? Current { get; private set; }

    public AgentState? State { get; private set; }

    public void Publish(DeviceStatus status, AgentState state)
    {
        Action<DeviceStatus>[] subscribers;
        lock (_gate)
        {
            Current = status;
            State = state;
            subscribers = [.. _subscribers];
        }

        foreach (var subscriber in subscribers)
        {
            subscriber(status);
        }
    }

    public void Subscribe(Action<DeviceStatus> subscriber)
    {
        DeviceStatus? current;
        lock (_gate)
        {
            _subscribers.Add(subscriber);
            current = Current;
        }

        if (current is not null)
        {
            subscriber(current);
        }
    }
}
