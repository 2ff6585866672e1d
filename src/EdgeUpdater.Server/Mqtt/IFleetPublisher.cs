namespace EdgeUpdater.Server.Mqtt;

/// <summary>Publishes server-to-device messages (notices, commands) on the fleet's broker.</summary>
internal interface IFleetPublisher
{
    /// <summary>Publishes with QoS 1; throws when the broker cannot take it.</summary>
    Task PublishAsync(string topic, ReadOnlyMemory<byte> payload, bool retain, CancellationToken cancellationToken = default);
}
