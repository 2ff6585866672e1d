using System.Text.Json.Serialization;

namespace EdgeUpdater.Agent.Config;

/// <summary>The agent's configuration file (<c>/etc/edgeupdater/agent.json</c>); documented in docs/agent-config.md.</summary>
internal sealed record AgentConfig
{
    public string? DeviceId { get; init; }

    public string? Group { get; init; }

    public string? Hardware { get; init; }

    /// <summary>CPU architecture reported and checked against manifests; defaults to the running one.</summary>
    public string? Architecture { get; init; }

    public ServerConfig? Server { get; init; }

    public BrokerConfig? Broker { get; init; }

    public TrustConfig? Trust { get; init; }

    /// <summary>State journal, downloads, overlay uppers and mount points.</summary>
    public string StateDirectory { get; init; } = "/var/lib/edgeupdater";

    /// <summary>Persistent volumes, kept across updates and rollbacks.</summary>
    public string? DataDirectory { get; init; }

    public string ControlSocket { get; init; } = "/run/edgeupdater/agent.sock";

    public LogConfig Log { get; init; } = new();

    public DownloadConfig Download { get; init; } = new();

    public HealthConfig Health { get; init; } = new();

    public GpioConfig? Gpio { get; init; }

    public IReadOnlyList<TargetConfig> Targets { get; init; } = [];

    [JsonIgnore]
    public string EffectiveDataDirectory => DataDirectory ?? Path.Combine(StateDirectory, "data");
}

internal sealed record ServerConfig
{
    /// <summary>Base URL of the repository (manifests, images, deltas are GETs below it).</summary>
    public string? Url { get; init; }

    public int RequestTimeoutSeconds { get; init; } = 30;
}

internal sealed record BrokerConfig
{
    public string? Host { get; init; }

    public int Port { get; init; } = 1883;

    public bool Tls { get; init; }

    public string? Username { get; init; }

    public string? Password { get; init; }

    public string TopicPrefix { get; init; } = Protocol.MqttTopics.DefaultPrefix;

    public int KeepAliveSeconds { get; init; } = 30;

    /// <summary>How long the broker keeps the session (subscriptions, queued QoS 1 notices) while the device is away.</summary>
    public long SessionExpirySeconds { get; init; } = 7 * 24 * 3600;

    public int ReconnectMinSeconds { get; init; } = 1;

    public int ReconnectMaxSeconds { get; init; } = 60;
}

internal sealed record TrustConfig
{
    /// <summary>Pinned root public keys.</summary>
    public IReadOnlyList<string> RootKeys { get; init; } = [];
}

internal sealed record LogConfig
{
    /// <summary>Rolling log file; null for console only.</summary>
    public string? File { get; init; } = "/var/log/edgeupdater/agent.log";

    public long FileSizeLimitBytes { get; init; } = 1024 * 1024;

    public int RetainedFiles { get; init; } = 5;

    /// <summary>Verbose, Debug, Information, Warning, Error.</summary>
    public string Level { get; init; } = "Information";
}

internal sealed record DownloadConfig
{
    /// <summary>Bandwidth cap in bytes per second; 0 for none.</summary>
    public long MaxBytesPerSecond { get; init; }

    /// <summary>Attempts per update for retryable failures before it is abandoned.</summary>
    public int MaxAttempts { get; init; } = 8;

    public int InitialBackoffSeconds { get; init; } = 2;

    public int MaxBackoffSeconds { get; init; } = 300;

    /// <summary>Space kept free on the file system of a file slot or the download directory.</summary>
    public long ReserveBytes { get; init; } = 1024 * 1024;

    /// <summary>Ask the server for a delta from the running image before the full image.</summary>
    public bool PreferDelta { get; init; } = true;
}

internal sealed record HealthConfig
{
    /// <summary>Deadline used when the image's health check names none.</summary>
    public int DefaultDeadlineSeconds { get; init; } = 120;

    /// <summary>With no health check in the image: the workload must stay up this long.</summary>
    public int GraceSeconds { get; init; } = 5;

    /// <summary>How many times an interrupted app trial is restarted before it is rolled back.</summary>
    public int TrialLimit { get; init; } = 2;
}

internal sealed record GpioConfig
{
    /// <summary>GPIO chip number (<c>/dev/gpiochipN</c>).</summary>
    public int Chip { get; init; }

    public int? LedPin { get; init; }

    public bool LedActiveLow { get; init; }

    public int? ButtonPin { get; init; }

    /// <summary>True when pressing the button pulls the line low.</summary>
    public bool ButtonActiveLow { get; init; } = true;

    public int LongPressSeconds { get; init; } = 5;
}

internal sealed record TargetConfig
{
    public string? Name { get; init; }

    /// <summary><c>app</c> or <c>system</c>.</summary>
    public string? Kind { get; init; }

    public SlotPathsConfig? Slots { get; init; }

    public BootloaderConfig? Bootloader { get; init; }

    /// <summary>System targets: the command that reboots the device.</summary>
    public IReadOnlyList<string> RebootCommand { get; init; } = ["systemctl", "reboot"];

    /// <summary>System targets: where the booted slot is read (<c>edgeupdater.slot=</c>); tests point it at a file.</summary>
    public string KernelCommandLine { get; init; } = "/proc/cmdline";
}

internal sealed record SlotPathsConfig
{
    public string? A { get; init; }

    public string? B { get; init; }
}

internal sealed record BootloaderConfig
{
    /// <summary><c>grub</c>, <c>uboot</c> or <c>file</c>.</summary>
    public string? Backend { get; init; }

    /// <summary>grub: the grubenv file; file: the key=value file.</summary>
    public string? EnvFile { get; init; }

    /// <summary>uboot: the fw_env.config to pass with <c>-c</c> (default /etc/fw_env.config).</summary>
    public string? FwEnvConfig { get; init; }

    /// <summary>Directory holding grub-editenv or fw_printenv/fw_setenv when not on PATH.</summary>
    public string? ToolDirectory { get; init; }
}

/// <summary>Source-generated binding of the configuration file (no reflection; AOT-safe).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    ReadCommentHandling = System.Text.Json.JsonCommentHandling.Skip,
    AllowTrailingCommas = true,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    WriteIndented = true)]
[JsonSerializable(typeof(AgentConfig))]
internal sealed partial class AgentConfigJsonContext : JsonSerializerContext
{
}
