using System.Text.Json.Serialization;

namespace EdgeUpdater.Agent.Config;

/// <summary>The agent's configuration file (<c>/etc/edgeupdater/agent.json</c>); documented in docs/agent-config.md.</summary>
// Setters, not init: source-generated JSON assigns every init-only property, so a member absent from
// the file would overwrite its default with null.
internal sealed record AgentConfig
{
    public string? DeviceId { get; set; }

    public string? Group { get; set; }

    public string? Hardware { get; set; }

    /// <summary>CPU architecture reported and checked against manifests; defaults to the running one.</summary>
    public string? Architecture { get; set; }

    public ServerConfig? Server { get; set; }

    public BrokerConfig? Broker { get; set; }

    public TrustConfig? Trust { get; set; }

    /// <summary>State journal, downloads, overlay uppers and mount points.</summary>
    public string StateDirectory { get; set; } = "/var/lib/edgeupdater";

    /// <summary>Persistent volumes, kept across updates and rollbacks.</summary>
    public string? DataDirectory { get; set; }

    public string ControlSocket { get; set; } = "/run/edgeupdater/agent.sock";

    public LogConfig Log { get; set; } = new();

    public DownloadConfig Download { get; set; } = new();

    public HealthConfig Health { get; set; } = new();

    public GpioConfig? Gpio { get; set; }

    public IReadOnlyList<TargetConfig> Targets { get; set; } = [];

    [JsonIgnore]
    public string EffectiveDataDirectory => DataDirectory ?? Path.Combine(StateDirectory, "data");
}

internal sealed record ServerConfig
{
    /// <summary>Base URL of the repository (manifests, images, deltas are GETs below it).</summary>
    public string? Url { get; set; }

    public int RequestTimeoutSeconds { get; set; } = 30;
}

internal sealed record BrokerConfig
{
    public string? Host { get; set; }

    public int Port { get; set; } = 1883;

    public bool Tls { get; set; }

    public string? Username { get; set; }

    public string? Password { get; set; }

    public string TopicPrefix { get; set; } = Protocol.MqttTopics.DefaultPrefix;

    public int KeepAliveSeconds { get; set; } = 30;

    /// <summary>How long the broker keeps the session (subscriptions, queued QoS 1 notices) while the device is away.</summary>
    public long SessionExpirySeconds { get; set; } = 7 * 24 * 3600;

    public int ReconnectMinSeconds { get; set; } = 1;

    public int ReconnectMaxSeconds { get; set; } = 60;
}

internal sealed record TrustConfig
{
    /// <summary>Pinned root public keys: PEM files (<c>-----BEGIN PUBLIC KEY-----</c>, Ed25519).</summary>
    public IReadOnlyList<string> RootKeys { get; set; } = [];

    /// <summary>How many of the pinned roots must have signed the first key set.</summary>
    public int RootThreshold { get; set; } = 1;

    /// <summary>The key set chain (signed envelopes), oldest first; the first is signed by the pinned roots.</summary>
    public IReadOnlyList<string> KeySets { get; set; } = [];
}

internal sealed record LogConfig
{
    /// <summary>Rolling log file; null for console only.</summary>
    public string? File { get; set; } = "/var/log/edgeupdater/agent.log";

    public long FileSizeLimitBytes { get; set; } = 1024 * 1024;

    public int RetainedFiles { get; set; } = 5;

    /// <summary>Verbose, Debug, Information, Warning, Error.</summary>
    public string Level { get; set; } = "Information";
}

internal sealed record DownloadConfig
{
    /// <summary>Bandwidth cap in bytes per second; 0 for none.</summary>
    public long MaxBytesPerSecond { get; set; }

    /// <summary>Attempts per update for retryable failures before it is abandoned.</summary>
    public int MaxAttempts { get; set; } = 8;

    public int InitialBackoffSeconds { get; set; } = 2;

    public int MaxBackoffSeconds { get; set; } = 300;

    /// <summary>Space kept free on the file system of a file slot or the download directory.</summary>
    public long ReserveBytes { get; set; } = 1024 * 1024;

    /// <summary>Ask the server for a delta from the running image before the full image.</summary>
    public bool PreferDelta { get; set; } = true;

    /// <summary>
    /// Which delta level to ask the server for: <c>any</c> (none named: the server's <c>fast</c> at first, its
    /// <c>best</c> once made), <c>fast</c> (more bytes, little work on the device: for slow CPUs on fast links)
    /// or <c>best</c> (fewest bytes, the device recompresses what changed: for metered or slow links).
    /// </summary>
    public string DeltaLevel { get; set; } = "any";

    /// <summary>New-image bytes a delta apply writes between two resume checkpoints (state directory).</summary>
    public long DeltaCheckpointBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>Seconds a download's body may send nothing before the connection counts as lost (and the download resumes later).</summary>
    public int IdleTimeoutSeconds { get; set; } = 60;
}

internal sealed record HealthConfig
{
    /// <summary>Deadline used when the image's health check names none.</summary>
    public int DefaultDeadlineSeconds { get; set; } = 120;

    /// <summary>With no health check in the image: the workload must stay up this long.</summary>
    public int GraceSeconds { get; set; } = 5;

    /// <summary>How many times an interrupted app trial is restarted before it is rolled back.</summary>
    public int TrialLimit { get; set; } = 2;
}

internal sealed record GpioConfig
{
    /// <summary>GPIO chip number (<c>/dev/gpiochipN</c>).</summary>
    public int Chip { get; set; }

    public int? LedPin { get; set; }

    public bool LedActiveLow { get; set; }

    public int? ButtonPin { get; set; }

    /// <summary>True when pressing the button pulls the line low.</summary>
    public bool ButtonActiveLow { get; set; } = true;

    public int LongPressSeconds { get; set; } = 5;
}

internal sealed record TargetConfig
{
    public string? Name { get; set; }

    /// <summary><c>app</c> or <c>system</c>.</summary>
    public string? Kind { get; set; }

    public SlotPathsConfig? Slots { get; set; }

    public BootloaderConfig? Bootloader { get; set; }

    /// <summary>System targets: the command that reboots the device.</summary>
    public IReadOnlyList<string> RebootCommand { get; set; } = ["systemctl", "reboot"];

    /// <summary>
    /// System targets: where the initramfs keeps each slot's overlay (<c>DIR/&lt;slot&gt;/upper</c>). The
    /// directory of a newly written slot is deleted before activation so the new image starts clean.
    /// </summary>
    public string OverlayDirectory { get; set; } = "/data/edgeupdater/rootfs";

    /// <summary>System targets: where the booted slot is read (<c>edgeupdater.slot=</c>); tests point it at a file.</summary>
    public string KernelCommandLine { get; set; } = "/proc/cmdline";

    /// <summary>System targets: where the identity of this boot is read (new on every boot); tests point it at a file.</summary>
    public string BootId { get; set; } = "/proc/sys/kernel/random/boot_id";
}

internal sealed record SlotPathsConfig
{
    public string? A { get; set; }

    public string? B { get; set; }
}

internal sealed record BootloaderConfig
{
    /// <summary><c>grub</c>, <c>uboot</c> or <c>file</c>.</summary>
    public string? Backend { get; set; }

    /// <summary>grub: the grubenv file; file: the key=value file.</summary>
    public string? EnvFile { get; set; }

    /// <summary>uboot: the fw_env.config to pass with <c>-c</c> (default /etc/fw_env.config).</summary>
    public string? FwEnvConfig { get; set; }

    /// <summary>Directory holding grub-editenv or fw_printenv/fw_setenv when not on PATH.</summary>
    public string? ToolDirectory { get; set; }
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
