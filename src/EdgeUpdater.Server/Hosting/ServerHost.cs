using EdgeUpdater.Protocol;
using EdgeUpdater.Server.Console;
using EdgeUpdater.Server.Content;
using EdgeUpdater.Server.Deltas;
using EdgeUpdater.Server.Fleet;
using EdgeUpdater.Server.Mqtt;
using EdgeUpdater.Server.Releases;
using EdgeUpdater.Server.Rollouts;
using EdgeUpdater.Server.Storage;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace EdgeUpdater.Server.Hosting;

/// <summary>
/// The server, started in-process: the executable uses it, and so do tests (this project's and the
/// agent's end-to-end tests) with <c>Http:Urls = http://127.0.0.1:0</c> and <c>Mqtt:Port = 0</c>.
/// Dispose stops everything in order and leaves the data directory consistent for a restart.
/// </summary>
public sealed class ServerHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private bool _disposed;

    private ServerHost(WebApplication app, ServerOptions options)
    {
        _app = app;
        Options = options;
    }

    /// <summary>The validated options the server runs with.</summary>
    public ServerOptions Options { get; }

    /// <summary>Base URL of the HTTP API (a wildcard bind address is reported as 127.0.0.1).</summary>
    public Uri HttpUrl { get; private set; } = null!;

    /// <summary>Every URL Kestrel bound.</summary>
    public IReadOnlyList<Uri> HttpUrls { get; private set; } = [];

    /// <summary>Host name or address of the MQTT broker devices should use from this machine.</summary>
    public string MqttHost { get; private set; } = "127.0.0.1";

    /// <summary>Port of the MQTT broker (the embedded one's actual port when configured as 0).</summary>
    public int MqttPort { get; private set; }

    /// <summary>A valid operator bearer token (the first configured, or the generated one).</summary>
    public string OperatorToken { get; private set; } = string.Empty;

    /// <summary>The MQTT topic set in use.</summary>
    public MqttTopics Topics => Services.GetRequiredService<MqttTopics>();

    internal IServiceProvider Services => _app.Services;

    /// <summary>Starts the server with the given options; returns once HTTP and MQTT accept connections.</summary>
    public static Task<ServerHost> StartAsync(ServerOptions options, CancellationToken cancellationToken = default) =>
        StartAsync(options, configureServices: null, cancellationToken);

    /// <summary>As <see cref="StartAsync(ServerOptions, CancellationToken)"/>, with service overrides (tests replace the library seams).</summary>
    internal static async Task<ServerHost> StartAsync(ServerOptions options, Action<IServiceCollection>? configureServices, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Directory.CreateDirectory(options.DataDirectory);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ApplicationName = typeof(ServerHost).Assembly.GetName().Name,
            ContentRootPath = options.DataDirectory,
            Args = [],
        });
        builder.WebHost.UseUrls(options.Http.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        builder.WebHost.ConfigureKestrel(k => k.AddServerHeader = false);
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss ";
        });
        builder.Logging.SetMinimumLevel(options.LogLevel);
        builder.Logging.AddFilter("Microsoft.AspNetCore", options.LogLevel <= LogLevel.Information ? LogLevel.Warning : options.LogLevel);
        builder.Logging.AddFilter("Microsoft.Hosting", options.LogLevel <= LogLevel.Information ? LogLevel.Warning : options.LogLevel);

        var services = builder.Services;
        services.AddSingleton(options);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(new MqttTopics(options.Mqtt.TopicPrefix));
        services.AddSingleton<DeviceAcl>();
        services.AddSingleton<IFleetStore>(_ => options.Database.Provider == DatabaseProvider.Postgres
            ? new PostgresFleetStore(options.Database.ConnectionString!)
            : new SqliteFleetStore(options.Database.ConnectionString!));
        services.AddSingleton(new ContentStore(options.DataDirectory));
        services.AddSingleton(sp => new DeltaCache(Path.Combine(options.DataDirectory, "deltas"), options.Deltas.CacheBudgetBytes, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<TrustStore>();
        services.AddSingleton<IReleaseVerifier, TrustReleaseVerifier>();
        services.AddSingleton<IImageValidator, SquashFsImageValidator>();
        services.AddSingleton(sp => new ReproductionRecords(Path.Combine(options.DataDirectory, "reproduction"), sp.GetRequiredService<ILogger<ReproductionRecords>>()));
        services.AddSingleton<IDeltaGenerator, LibraryDeltaGenerator>();
        services.AddSingleton<DeltaService>();
        services.AddSingleton<ReleaseService>();
        services.AddSingleton<DeviceCredentials>();
        services.AddSingleton<OperatorTokens>();
        services.AddSingleton<EmbeddedBroker>();
        services.AddSingleton<FleetMqttClient>();
        services.AddSingleton<IFleetPublisher>(sp => sp.GetRequiredService<FleetMqttClient>());
        services.AddSingleton<DeviceRegistry>();
        services.AddSingleton<RolloutEngine>();
        configureServices?.Invoke(services);

        var app = builder.Build();
        ContentEndpoints.Map(app);
        DeltaEndpoints.Map(app);
        OperatorEndpoints.Map(app);
        ConsoleEndpoints.Map(app);

        var host = new ServerHost(app, options);
        try
        {
            await host.InitializeAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await host.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return host;
    }

    /// <summary>Completes when the host is asked to stop (Ctrl+C, SIGTERM) or <paramref name="cancellationToken"/> fires.</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellationToken = default) => _app.WaitForShutdownAsync(cancellationToken);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        var services = _app.Services;
        try
        {
            await _app.StopAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        // Explicit order: stop deciding, stop receiving, flush what was received, then the broker and the store.
        await DisposeIfCreatedAsync<RolloutEngine>(services).ConfigureAwait(false);
        await DisposeIfCreatedAsync<FleetMqttClient>(services).ConfigureAwait(false);
        await DisposeIfCreatedAsync<DeviceRegistry>(services).ConfigureAwait(false);
        await DisposeIfCreatedAsync<EmbeddedBroker>(services).ConfigureAwait(false);
        await DisposeIfCreatedAsync<DeltaService>(services).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }

    private static async Task DisposeIfCreatedAsync<T>(IServiceProvider services)
        where T : class, IAsyncDisposable
    {
        await services.GetRequiredService<T>().DisposeAsync().ConfigureAwait(false);
    }

    private async Task InitializeAsync(CancellationToken cancellationToken)
    {
        var services = _app.Services;
        var logger = services.GetRequiredService<ILogger<ServerHost>>();
        await services.GetRequiredService<IFleetStore>().MigrateAsync(cancellationToken).ConfigureAwait(false);
        var trust = services.GetRequiredService<TrustStore>();
        await trust.LoadRootsAsync(Options, cancellationToken).ConfigureAwait(false);
        if (trust.Roots is null)
        {
            logger.LogWarning("No trusted root key configured (Trust:RootKeyFiles or {Directory}): publishing is refused until one is", Path.Combine(Options.DataDirectory, "trusted-roots"));
        }
        services.GetRequiredService<ContentStore>().DeleteLeftovers();
        services.GetRequiredService<DeltaCache>().Load();
        OperatorToken = services.GetRequiredService<OperatorTokens>().First;

        var mqtt = Options.Mqtt;
        MqttEndpoint endpoint;
        if (mqtt.Mode == BrokerMode.Embedded)
        {
            var broker = services.GetRequiredService<EmbeddedBroker>();
            await broker.StartAsync(cancellationToken).ConfigureAwait(false);
            MqttHost = mqtt.BindAddress switch
            {
                "0.0.0.0" => "127.0.0.1",
                "::" => "::1",
                var address => address,
            };
            MqttPort = broker.Port;
            endpoint = new MqttEndpoint(MqttHost, MqttPort, EmbeddedBroker.ServerUsername, broker.ServerPassword);
        }
        else
        {
            MqttHost = mqtt.Host!;
            MqttPort = mqtt.Port;
            endpoint = new MqttEndpoint(mqtt.Host!, mqtt.Port, mqtt.Username, mqtt.Password);
        }

        var engine = services.GetRequiredService<RolloutEngine>();
        var registry = services.GetRequiredService<DeviceRegistry>();
        await engine.LoadAsync(cancellationToken).ConfigureAwait(false);
        registry.Start(engine.ObserveAsync);
        await services.GetRequiredService<FleetMqttClient>().StartAsync(endpoint, registry.OnMessageAsync, cancellationToken).ConfigureAwait(false);
        await engine.StartAsync(cancellationToken).ConfigureAwait(false);

        await _app.StartAsync(cancellationToken).ConfigureAwait(false);
        var addresses = services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        HttpUrls = addresses.Select(a => new Uri(a.Replace("://0.0.0.0:", "://127.0.0.1:", StringComparison.Ordinal).Replace("://[::]:", "://[::1]:", StringComparison.Ordinal))).ToList();
        HttpUrl = HttpUrls.Count > 0 ? HttpUrls[0] : throw new InvalidOperationException("Kestrel bound no address.");
        logger.LogInformation(
            "edgeupdater-server ready: HTTP {Urls}, MQTT {Mode} {Host}:{Port}, database {Database}, data {Data}",
            string.Join(", ", HttpUrls),
            mqtt.Mode,
            MqttHost,
            MqttPort,
            Options.Database.Provider,
            Options.DataDirectory);
    }
}
