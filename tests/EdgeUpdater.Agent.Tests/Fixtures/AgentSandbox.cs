using System.Text.Json;
using EdgeUpdater.Agent.Activation;
using EdgeUpdater.Agent.Config;
using EdgeUpdater.Agent.Interop.Linux;
using EdgeUpdater.Agent.State;
using EdgeUpdater.Testing;

namespace EdgeUpdater.Agent.Tests.Fixtures;

/// <summary>
/// One device on this machine: a temp tree with the agent's config, state, slots and data, the agent
/// processes started from it, and a clean-up that kills workloads and unmounts what a killed agent left.
/// </summary>
internal sealed class AgentSandbox : IAsyncDisposable
{
    private readonly TempDirectory _directory = new("edgeupdater-agent");
    private readonly List<AgentProcess> _agents = [];

    public AgentSandbox(string? brokerHost, int brokerPort, string? serverUrl, ReleaseSigner signer)
    {
        DeviceId = "dev-" + Guid.NewGuid().ToString("N")[..8];
        Directory.CreateDirectory(SlotsDirectory);
        Directory.CreateDirectory(ImagesDirectory);
        var (rootKey, keySet) = signer.WriteTrustFiles(_directory.Combine("trust"));
        Config = new AgentConfig
        {
            DeviceId = DeviceId,
            Group = "lab",
            Hardware = "test-board",
            Server = serverUrl is null ? null : new ServerConfig { Url = serverUrl, RequestTimeoutSeconds = 5 },
            Broker = brokerHost is null ? null : new BrokerConfig { Host = brokerHost, Port = brokerPort, KeepAliveSeconds = 5, ReconnectMinSeconds = 1, ReconnectMaxSeconds = 2 },
            Trust = new TrustConfig { RootKeys = [rootKey], KeySets = [keySet] },
            StateDirectory = StateDirectory,
            DataDirectory = DataDirectory,
            ControlSocket = SocketPath,
            Log = new LogConfig { File = LogPath, Level = "Debug" },
            Download = new DownloadConfig { InitialBackoffSeconds = 1, MaxBackoffSeconds = 2, MaxAttempts = 4, ReserveBytes = 0 },
            Health = new HealthConfig { DefaultDeadlineSeconds = 20, GraceSeconds = 2, TrialLimit = 2 },
            Targets = [AppTarget()],
        };
    }

    public string Root => _directory.Path;

    public string DeviceId { get; }

    public string StateDirectory => _directory.Combine("state");

    public string DataDirectory => _directory.Combine("data");

    public string SlotsDirectory => _directory.Combine("slots");

    public string ImagesDirectory => _directory.Combine("images");

    public string LogPath => _directory.Combine("log", "agent.log");

    public string SocketPath => _directory.Combine("run", "agent.sock");

    public string ConfigPath => _directory.Combine("agent.json");

    public AgentConfig Config { get; set; }

    /// <summary>Scratch for a test's helpers: how it publishes a release, and the image it publishes next.</summary>
    public Func<string, string, SignedManifest>? Publish { get; set; }

    public string? NextImage { get; set; }

    public TargetConfig AppTarget(string name = "app") => new()
    {
        Name = name,
        Kind = "app",
        Slots = new SlotPathsConfig { A = Path.Combine(SlotsDirectory, $"{name}-a.sqfs"), B = Path.Combine(SlotsDirectory, $"{name}-b.sqfs") },
    };

    public string SlotPath(string slot, string target = "app") =>
        slot == "a" ? Config.Targets.First(t => t.Name == target).Slots!.A! : Config.Targets.First(t => t.Name == target).Slots!.B!;

    /// <summary>Puts the factory image into slot a of a file-slot target, as provisioning would.</summary>
    public void Provision(string imagePath, string target = "app") => File.Copy(imagePath, SlotPath("a", target), overwrite: true);

    public AgentProcess StartAgent(IReadOnlyDictionary<string, string>? environment = null)
    {
        File.WriteAllText(ConfigPath, JsonSerializer.Serialize(Config, AgentConfigJsonContext.Default.AgentConfig));
        var agent = AgentProcess.Start(ConfigPath, environment);
        _agents.Add(agent);
        return agent;
    }

    public AgentState ReadState() => new StateJournal(StateDirectory).Load() ?? throw new InvalidOperationException("no state written yet");

    /// <summary>Everything the agents printed, for assertion messages.</summary>
    public string Output => string.Join("\n--- agent restart ---\n", _agents.Select(a => a.Output));

    public async ValueTask DisposeAsync()
    {
        foreach (var agent in _agents)
        {
            await agent.StopAsync();
            await agent.DisposeAsync();
        }

        if (Environment.GetEnvironmentVariable("EDGEUPDATER_TEST_KEEP_SANDBOX") == "1")
        {
            // Debugging: leave the tree (and its mounts) for a look; the agents are stopped.
            return;
        }

        var targets = Path.Combine(StateDirectory, "targets");
        if (Directory.Exists(targets))
        {
            foreach (var pidFile in Directory.GetFiles(targets, "workload.pid", SearchOption.AllDirectories))
            {
                WorkloadProcess.KillOrphan(pidFile);
            }
        }

        foreach (var mountPoint in MountTable.MountsBelow(Root))
        {
            Libc.Unmount(mountPoint, Libc.MntDetach);
        }

        _directory.Dispose();
    }
}
