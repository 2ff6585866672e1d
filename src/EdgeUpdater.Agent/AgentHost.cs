using System.Device.Gpio;
using System.Device.Gpio.Drivers;
using EdgeUpdater.Agent.Activation;
using EdgeUpdater.Agent.Bootloader;
using EdgeUpdater.Agent.Config;
using EdgeUpdater.Agent.Control;
using EdgeUpdater.Agent.Coordinator;
using EdgeUpdater.Agent.Gpio;
using EdgeUpdater.Agent.Health;
using EdgeUpdater.Agent.Install;
using EdgeUpdater.Agent.Manifest;
using EdgeUpdater.Agent.Notice;
using EdgeUpdater.Agent.State;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Serilog;
using Serilog.Events;

namespace EdgeUpdater.Agent;

/// <summary>Composes the agent: Generic Host with systemd integration, Serilog, and the agent's services.</summary>
internal static class AgentHost
{
    public static async Task<int> RunAsync(AgentConfig config)
    {
        var logger = CreateLogger(config.Log);
        try
        {
            var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { ApplicationName = "edgeupdater-agent" });
            builder.Services.AddSystemd();
            builder.Services.AddSerilog(logger, dispose: false);
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));
            AddAgent(builder.Services, config);
            using var host = builder.Build();
            // Same moment as systemd's READY=1 (the systemd lifetime sends it on ApplicationStarted): after
            // start-up reconciliation, so after a trial boot's verdict.
            host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStarted.Register(
                () => logger.Information("Agent ready: start-up reconciliation done"));
            await host.RunAsync().ConfigureAwait(false);
            return 0;
        }
#pragma warning disable CA1031 // Last line of defence: log why the agent died, then exit non-zero so systemd restarts it.
        catch (Exception e)
#pragma warning restore CA1031
        {
            logger.Fatal(e, "The agent stopped");
            return 1;
        }
        finally
        {
            await logger.DisposeAsync().ConfigureAwait(false);
        }
    }

    public static Serilog.Core.Logger CreateLogger(LogConfig log)
    {
        var configuration = new LoggerConfiguration()
            .MinimumLevel.Is(Enum.Parse<LogEventLevel>(log.Level))
            .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
            .MinimumLevel.Override("System.Net.Http", LogEventLevel.Warning)
            .WriteTo.Console(outputTemplate: "{Timestamp:HH:mm:ss.fff} {Level:u3} {Message:lj}{NewLine}{Exception}");
        if (log.File is not null)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(log.File)!);

            // Size-capped rolling: flash wear and space stay bounded.
            configuration = configuration.WriteTo.File(
                log.File,
                outputTemplate: "{Timestamp:yyyy-MM-dd HH:mm:ss.fff} {Level:u3} {Message:lj}{NewLine}{Exception}",
                fileSizeLimitBytes: log.FileSizeLimitBytes,
                rollOnFileSizeLimit: true,
                retainedFileCountLimit: log.RetainedFiles,
                shared: false,
                flushToDiskInterval: TimeSpan.FromSeconds(5));
        }

        return configuration.CreateLogger();
    }

    public static void AddAgent(IServiceCollection services, AgentConfig config)
    {
        services.AddSingleton(config);
        services.AddSingleton(new StatusHub());
        services.AddSingleton(new StateJournal(config.StateDirectory, Environment.GetEnvironmentVariable(StateJournal.FaultVariable)));
        var trust = LoadTrust(config.Trust!);
        services.AddSingleton<IReleaseVerifier>(trust);
        services.AddSingleton(new KeySetChainSource(trust.InstalledKeySetChain, config.StateDirectory));
        services.AddSingleton<IDeltaApplier>(new SlotDeltaApplier());
        services.AddSingleton(sp =>
        {
            var loggers = sp.GetRequiredService<ILoggerFactory>();
            var agentCommand = AgentExecutable.Resolve();
            return config.Targets.Select(t =>
            {
                var directory = Path.Combine(config.StateDirectory, "targets", t.Name!);
                var app = t.Kind == "app"
                    ? new AppRuntime(t.Name!, directory, Path.Combine(config.EffectiveDataDirectory, t.Name!), agentCommand, loggers.CreateLogger("EdgeUpdater.Agent.Activation"))
                    : null;
                return new TargetRuntime(t, directory, app, t.Kind == "system" ? CreateBootloader(t.Bootloader!, directory) : null);
            }).ToList();
        });
        services.AddSingleton(sp =>
        {
            var http = new HttpClient(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(10) })
            {
                Timeout = TimeSpan.FromSeconds(config.Server?.RequestTimeoutSeconds ?? 30),
            };
            var probes = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
            return new UpdateCoordinator(
                config,
                sp.GetRequiredService<StateJournal>(),
                sp.GetRequiredService<IReleaseVerifier>(),
                sp.GetService<IDeltaApplier>(),
                http,
                new HealthChecker(probes),
                sp.GetRequiredService<StatusHub>(),
                sp.GetRequiredService<List<TargetRuntime>>(),
                sp.GetRequiredService<ILogger<UpdateCoordinator>>(),
                sp.GetRequiredService<KeySetChainSource>());
        });
        services.AddHostedService(sp => sp.GetRequiredService<UpdateCoordinator>());
        services.AddHostedService(sp => new ControlServer(config, sp.GetRequiredService<UpdateCoordinator>(), sp.GetRequiredService<StatusHub>(), sp.GetRequiredService<ILogger<ControlServer>>()));
        if (config.Broker is not null)
        {
            services.AddHostedService(sp => new MqttAgentClient(config, sp.GetRequiredService<UpdateCoordinator>(), sp.GetRequiredService<StatusHub>(), sp.GetRequiredService<ILogger<MqttAgentClient>>()));
        }

        if (config.Gpio is { } gpio)
        {
            services.AddHostedService(sp => new StatusIndicator(
                gpio,
                sp.GetRequiredService<UpdateCoordinator>(),
                sp.GetRequiredService<StatusHub>(),
                () => new GpioController(new LibGpiodDriver(gpio.Chip)),
                sp.GetRequiredService<ILogger<StatusIndicator>>()));
        }

        // AddSystemd registers the notifier only when systemd started the process.
        services.AddHostedService(sp => new SystemdWatchdog(sp.GetService<Microsoft.Extensions.Hosting.Systemd.ISystemdNotifier>(), sp.GetRequiredService<UpdateCoordinator>()));
    }

    /// <summary>Loads the pinned roots and key sets; a bad file stops start-up with the field that names it.</summary>
    public static TrustReleaseVerifier LoadTrust(TrustConfig trust)
    {
        for (var i = 0; i < trust.RootKeys.Count; i++)
        {
            Check(trust.RootKeys[i], $"trust.rootKeys[{i}]", bytes => EdgeUpdater.Trust.Keys.PublicKeyFile.Parse(bytes));
        }

        for (var i = 0; i < trust.KeySets.Count; i++)
        {
            Check(trust.KeySets[i], $"trust.keySets[{i}]", bytes => EdgeUpdater.Trust.Envelopes.SignedEnvelope.Parse(bytes));
        }

        return TrustReleaseVerifier.Load(trust.RootKeys, trust.RootThreshold, trust.KeySets, AgentIdentity.Version);

        static void Check(string path, string field, Action<byte[]> parse)
        {
            try
            {
                parse(File.ReadAllBytes(path));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or EdgeUpdater.Trust.TrustException)
            {
                throw new AgentConfigException($"{field}: {path}: {e.Message}", e);
            }
        }
    }

    private static IBootloader CreateBootloader(BootloaderConfig config, string scratchDirectory) => config.Backend switch
    {
        "grub" => new GrubBootloader(config.EnvFile!, config.ToolDirectory),
        "uboot" => new UBootBootloader(config.FwEnvConfig, scratchDirectory, config.ToolDirectory),
        _ => new FileBootloader(config.EnvFile!),
    };
}
