using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using EdgeUpdater.Protocol;
using EdgeUpdater.Server.Fleet;
using EdgeUpdater.Server.Hosting;
using MQTTnet.Protocol;
using MQTTnet.Server;

namespace EdgeUpdater.Server.Mqtt;

/// <summary>
/// The zero-setup MQTT broker (MQTTnet) inside the server. It authenticates devices (user name =
/// device id, password issued by the operator API, or open mode) and enforces <see cref="DeviceAcl"/>
/// on every publish (wills included) and subscribe. The server's own client logs in with a random
/// per-process secret and is privileged.
/// </summary>
internal sealed class EmbeddedBroker : IAsyncDisposable
{
    public const string ServerUsername = "edgeupdater-server";
    private readonly MqttSettings _settings;
    private readonly DeviceAcl _acl;
    private readonly DeviceCredentials _credentials;
    private readonly ILogger<EmbeddedBroker> _logger;
    private readonly byte[] _serverPasswordHash;
    private MqttServer? _server;

    public EmbeddedBroker(ServerOptions options, DeviceAcl acl, DeviceCredentials credentials, ILogger<EmbeddedBroker> logger)
    {
        _settings = options.Mqtt;
        _acl = acl;
        _credentials = credentials;
        _logger = logger;
        ServerPassword = Convert.ToBase64String(RandomNumberGenerator.GetBytes(24));
        _serverPasswordHash = SHA256.HashData(Encoding.UTF8.GetBytes(ServerPassword));
    }

    /// <summary>Password of the privileged server client for this process.</summary>
    public string ServerPassword { get; }

    /// <summary>The TCP port the broker listens on (resolved when configured as 0).</summary>
    public int Port { get; private set; }

    /// <summary>Number of connected clients (the server's own included).</summary>
    public async Task<int> CountClientsAsync() => _server is null ? 0 : (await _server.GetClientsAsync().ConfigureAwait(false)).Count;

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        var address = IPAddress.Parse(_settings.BindAddress);
        Port = _settings.Port == 0 ? PickFreePort(address) : _settings.Port;
        var options = new MqttServerOptionsBuilder()
            .WithDefaultEndpoint()
            .WithDefaultEndpointBoundIPAddress(address)
            .WithDefaultEndpointPort(Port)
            .WithConnectionBacklog(_settings.ConnectionBacklog)
            .WithPersistentSessions(false)
            .Build();
        _server = new MqttServerFactory().CreateMqttServer(options);
        _server.ValidatingConnectionAsync += ValidateConnectionAsync;
        _server.InterceptingPublishAsync += InterceptPublishAsync;
        _server.InterceptingSubscriptionAsync += InterceptSubscriptionAsync;
        await _server.StartAsync().ConfigureAwait(false);
        _logger.LogInformation("Embedded MQTT broker listening on {Address}:{Port} (device authentication: {Mode})", address, Port, _settings.DeviceAuthentication);
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.StopAsync().ConfigureAwait(false);
            _server.Dispose();
            _server = null;
        }
    }

    private async Task ValidateConnectionAsync(ValidatingConnectionEventArgs e)
    {
        var user = e.UserName;
        if (user == ServerUsername)
        {
            var given = SHA256.HashData(Encoding.UTF8.GetBytes(e.Password ?? string.Empty));
            if (!CryptographicOperations.FixedTimeEquals(given, _serverPasswordHash))
            {
                e.ReasonCode = MqttConnectReasonCode.BadUserNameOrPassword;
                return;
            }

            e.SessionItems[MqttIdentity.SessionKey] = new MqttIdentity(ServerUsername, Privileged: true, Group: null);
            return;
        }

        if (_settings.DeviceAuthentication == DeviceAuthentication.Open)
        {
            var id = string.IsNullOrEmpty(user) ? e.ClientId : user;
            if (!MqttTopics.IsValidSegment(id))
            {
                e.ReasonCode = MqttConnectReasonCode.ClientIdentifierNotValid;
                return;
            }

            e.SessionItems[MqttIdentity.SessionKey] = new MqttIdentity(id, Privileged: false, Group: null);
            return;
        }

        var credential = await _credentials.CheckAsync(user, e.Password).ConfigureAwait(false);
        if (credential is null)
        {
            _logger.LogWarning("MQTT login refused for user '{User}' (client id '{ClientId}')", user, e.ClientId);
            e.ReasonCode = MqttConnectReasonCode.BadUserNameOrPassword;
            return;
        }

        e.SessionItems[MqttIdentity.SessionKey] = new MqttIdentity(credential.DeviceId, Privileged: false, credential.Group);
    }

    private Task InterceptPublishAsync(InterceptingPublishEventArgs e)
    {
        if (e.SessionItems[MqttIdentity.SessionKey] is not MqttIdentity identity || !_acl.MayPublish(identity, e.ApplicationMessage.Topic))
        {
            e.ProcessPublish = false;
            e.Response.ReasonCode = MqttPubAckReasonCode.NotAuthorized;
            _logger.LogWarning("MQTT publish by '{Client}' to '{Topic}' refused by the device ACL", e.ClientId, e.ApplicationMessage.Topic);
        }

        return Task.CompletedTask;
    }

    private Task InterceptSubscriptionAsync(InterceptingSubscriptionEventArgs e)
    {
        if (e.SessionItems[MqttIdentity.SessionKey] is not MqttIdentity identity || !_acl.MaySubscribe(identity, e.TopicFilter.Topic))
        {
            e.ProcessSubscription = false;
            e.Response.ReasonCode = MqttSubscribeReasonCode.NotAuthorized;
            _logger.LogWarning("MQTT subscription by '{Client}' to '{Filter}' refused by the device ACL", e.ClientId, e.TopicFilter.Topic);
        }

        return Task.CompletedTask;
    }

    private static int PickFreePort(IPAddress address)
    {
        using var listener = new TcpListener(address, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
