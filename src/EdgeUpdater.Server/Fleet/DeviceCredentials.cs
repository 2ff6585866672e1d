using System.Security.Cryptography;
using System.Text;
using EdgeUpdater.Protocol;
using EdgeUpdater.Server.Mqtt;
using EdgeUpdater.Server.Storage;

namespace EdgeUpdater.Server.Fleet;

/// <summary>
/// Per-device MQTT credentials: user name = device id, a random 192-bit password shown once. Only the
/// password's SHA-256 is stored; a fast hash suffices because the secret is random, not chosen by a
/// person, and it keeps logins cheap when thousands of devices reconnect at once.
/// </summary>
internal sealed class DeviceCredentials
{
    private readonly IFleetStore _store;
    private readonly TimeProvider _time;

    public DeviceCredentials(IFleetStore store, TimeProvider time)
    {
        _store = store;
        _time = time;
    }

    /// <summary>Issues (replacing any previous) credentials for a device.</summary>
    public async Task<DeviceCredentialInfo> IssueAsync(string deviceId, string? group, CancellationToken cancellationToken = default)
    {
        if (!MqttTopics.IsValidSegment(deviceId) || deviceId == EmbeddedBroker.ServerUsername)
        {
            throw new ArgumentException($"'{deviceId}' cannot be a device id: use 1-128 of [A-Za-z0-9._:-], not '{EmbeddedBroker.ServerUsername}'.", nameof(deviceId));
        }

        if (group is not null && !MqttTopics.IsValidSegment(group))
        {
            throw new ArgumentException($"'{group}' cannot be a group name: use 1-128 of [A-Za-z0-9._:-].", nameof(group));
        }

        var password = Base64Url(RandomNumberGenerator.GetBytes(24));
        await _store.SetCredentialAsync(new DeviceCredentialRecord(deviceId, group, Hash(password), _time.GetUtcNow()), cancellationToken).ConfigureAwait(false);
        return new DeviceCredentialInfo { DeviceId = deviceId, Username = deviceId, Password = password, Group = group };
    }

    /// <summary>The credential when <paramref name="password"/> is right for <paramref name="deviceId"/>, else null.</summary>
    public async Task<DeviceCredentialRecord?> CheckAsync(string? deviceId, string? password, CancellationToken cancellationToken = default)
    {
        if (deviceId is null || password is null || !MqttTopics.IsValidSegment(deviceId))
        {
            return null;
        }

        var credential = await _store.GetCredentialAsync(deviceId, cancellationToken).ConfigureAwait(false);
        if (credential is null)
        {
            return null;
        }

        var expected = Convert.FromHexString(credential.PasswordSha256);
        var given = SHA256.HashData(Encoding.UTF8.GetBytes(password));
        return CryptographicOperations.FixedTimeEquals(expected, given) ? credential : null;
    }

    private static string Hash(string password) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(password)));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
