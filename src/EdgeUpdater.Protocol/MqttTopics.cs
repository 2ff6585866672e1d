namespace EdgeUpdater.Protocol;

/// <summary>
/// The MQTT topic tree shared by server and agents (see docs/protocol.md). Every topic sits under a
/// configurable prefix so that several fleets or protocol generations can share one broker.
/// </summary>
public sealed class MqttTopics
{
    /// <summary>The prefix used when none is configured.</summary>
    public const string DefaultPrefix = "edgeupdater/v1";

    /// <summary>Creates the topic set for <paramref name="prefix"/> (no leading or trailing slash).</summary>
    public MqttTopics(string prefix = DefaultPrefix)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(prefix);
        if (prefix.StartsWith('/') || prefix.EndsWith('/') || prefix.Contains('+', StringComparison.Ordinal) || prefix.Contains('#', StringComparison.Ordinal))
        {
            throw new ArgumentException($"MQTT topic prefix '{prefix}' must not start or end with '/' nor contain wildcards.", nameof(prefix));
        }

        Prefix = prefix;
    }

    /// <summary>The prefix every topic starts with.</summary>
    public string Prefix { get; }

    /// <summary>Server to one device: an <see cref="UpdateNotice"/>.</summary>
    public string DeviceNotice(string deviceId) => $"{Prefix}/devices/{CheckSegment(deviceId, nameof(deviceId))}/notice";

    /// <summary>Server to a group, retained: an <see cref="UpdateNotice"/>.</summary>
    public string GroupNotice(string group) => $"{Prefix}/groups/{CheckSegment(group, nameof(group))}/notice";

    /// <summary>Server to one device: a <see cref="DeviceCommand"/>.</summary>
    public string DeviceCommand(string deviceId) => $"{Prefix}/devices/{CheckSegment(deviceId, nameof(deviceId))}/command";

    /// <summary>Device to server, retained, with last will <c>offline</c>: a <see cref="DeviceStatus"/>.</summary>
    public string DeviceStatus(string deviceId) => $"{Prefix}/devices/{CheckSegment(deviceId, nameof(deviceId))}/status";

    /// <summary>Subscription filter for the status of every device.</summary>
    public string AllDeviceStatus => $"{Prefix}/devices/+/status";

    /// <summary>Everything a device may publish to: its own subtree.</summary>
    public string DeviceSubtree(string deviceId) => $"{Prefix}/devices/{CheckSegment(deviceId, nameof(deviceId))}/#";

    /// <summary>
    /// Reads the device id out of a status topic, or returns null when <paramref name="topic"/> is not
    /// a device status topic under this prefix.
    /// </summary>
    public string? TryParseStatusDeviceId(string topic)
    {
        ArgumentNullException.ThrowIfNull(topic);
        var head = Prefix + "/devices/";
        const string tail = "/status";
        if (!topic.StartsWith(head, StringComparison.Ordinal) || !topic.EndsWith(tail, StringComparison.Ordinal))
        {
            return null;
        }

        var id = topic[head.Length..^tail.Length];
        return IsValidSegment(id) ? id : null;
    }

    /// <summary>
    /// True when <paramref name="value"/> can be one topic level: 1 to 128 characters of letters,
    /// digits, '-', '_', '.', ':'. Device ids and group names are restricted to this so that an id can
    /// never inject a wildcard or another level into a topic or an ACL pattern.
    /// </summary>
    public static bool IsValidSegment(string? value)
    {
        if (string.IsNullOrEmpty(value) || value.Length > 128 || value is "." or "..")
        {
            return false;
        }

        foreach (var c in value)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':'))
            {
                return false;
            }
        }

        return true;
    }

    private static string CheckSegment(string value, string name)
    {
        if (!IsValidSegment(value))
        {
            throw new ArgumentException($"'{value}' is not a valid topic level: use 1-128 of [A-Za-z0-9._:-].", name);
        }

        return value;
    }
}
