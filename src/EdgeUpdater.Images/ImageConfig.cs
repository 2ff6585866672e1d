using System.Text.Json.Serialization;

namespace EdgeUpdater.Images;

/// <summary>What an image updates: a whole system (A/B root file system, reboot) or an app (overlay mount, restart).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<TargetKind>))]
public enum TargetKind
{
    /// <summary>An application: mounted with an overlay and restarted, no reboot (default).</summary>
    [JsonStringEnumMemberName("app")]
    App,

    /// <summary>The whole system: written to the inactive slot, activated by a trial boot.</summary>
    [JsonStringEnumMemberName("system")]
    System,
}

/// <summary>How health is probed.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<HealthCheckType>))]
public enum HealthCheckType
{
    /// <summary>Run a command; exit code 0 is healthy.</summary>
    [JsonStringEnumMemberName("command")]
    Command,

    /// <summary>HTTP GET; a 2xx status is healthy.</summary>
    [JsonStringEnumMemberName("http")]
    Http,

    /// <summary>TCP connect; an accepted connection is healthy.</summary>
    [JsonStringEnumMemberName("tcp")]
    Tcp,
}

/// <summary>
/// The <c>config.json</c> at the top of an EdgeUpdater image (schema documented in docs/image-config.md).
/// Only <see cref="Name"/> and <see cref="Version"/> are required; <see cref="ImageConfigReader"/> fills
/// every default.
/// </summary>
public sealed record ImageConfig
{
    /// <summary>The schema version this library writes and reads.</summary>
    public const int CurrentSchemaVersion = 1;

    /// <summary>Schema version (default: the current one, 1).</summary>
    public int SchemaVersion { get; set; } = CurrentSchemaVersion;

    /// <summary>Image name: lower case letters, digits, '.', '_' and '-', 1-64 characters, starting with a letter or digit.</summary>
    public string Name { get; set; } = string.Empty;

    /// <summary>Semantic version (semver 2.0), e.g. <c>1.2.3</c> or <c>2.0.0-rc.1+build.5</c>.</summary>
    public string Version { get; set; } = string.Empty;

    /// <summary>Human description (optional).</summary>
    public string? Description { get; set; }

    /// <summary>What the image updates (default <see cref="TargetKind.App"/>).</summary>
    public TargetKind Target { get; set; } = TargetKind.App;

    /// <summary>Program and fixed arguments, an absolute path inside root/ first (default: none).</summary>
    public IReadOnlyList<string> Entrypoint { get; set; } = [];

    /// <summary>Arguments appended to the entrypoint, or the command when there is no entrypoint (default: none).</summary>
    public IReadOnlyList<string> Cmd { get; set; } = [];

    /// <summary>Environment variables (default: none).</summary>
    public IReadOnlyDictionary<string, string> Env { get; set; } = new Dictionary<string, string>();

    /// <summary>Working directory, absolute (default <c>/</c>).</summary>
    public string WorkingDir { get; set; } = "/";

    /// <summary>User to run as: a name, uid, or uid:gid (default <c>root</c>).</summary>
    public string User { get; set; } = "root";

    /// <summary>Persistent volumes: kept across updates (default: none).</summary>
    public IReadOnlyList<VolumeConfig> Volumes { get; set; } = [];

    /// <summary>Health check (default: none: healthy once started).</summary>
    public HealthCheckConfig? HealthCheck { get; set; }

    /// <summary>Which devices may install the image (default: any).</summary>
    public CompatibilityConfig Compatible { get; set; } = new();
}

/// <summary>A persistent volume: a directory on the data partition mounted at <see cref="Path"/>.</summary>
public sealed record VolumeConfig
{
    /// <summary>Volume name, same rules as the image name; names the directory on the data partition.</summary>
    public string Name { get; set; } = string.Empty;

    /// <summary>Absolute mount path inside the image's file system.</summary>
    public string Path { get; set; } = string.Empty;
}

/// <summary>How the agent decides that a new image is healthy.</summary>
public sealed record HealthCheckConfig
{
    /// <summary>Probe type.</summary>
    public HealthCheckType Type { get; set; } = HealthCheckType.Command;

    /// <summary>Command probe: program and arguments.</summary>
    public IReadOnlyList<string> Command { get; set; } = [];

    /// <summary>HTTP probe: URL, http or https (usually on 127.0.0.1).</summary>
    public string? Url { get; set; }

    /// <summary>TCP probe: host (default 127.0.0.1).</summary>
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>TCP probe: port 1-65535.</summary>
    public int Port { get; set; }

    /// <summary>Seconds between probes (default 10).</summary>
    public int IntervalSeconds { get; set; } = 10;

    /// <summary>Seconds one probe may take (default 5).</summary>
    public int TimeoutSeconds { get; set; } = 5;

    /// <summary>Consecutive successes needed (default 1).</summary>
    public int SuccessThreshold { get; set; } = 1;

    /// <summary>Consecutive failures after which the image is unhealthy even before the deadline (default 3).</summary>
    public int Retries { get; set; } = 3;

    /// <summary>Seconds from activation by which the image must be healthy, or it is rolled back (default 300).</summary>
    public int DeadlineSeconds { get; set; } = 300;
}

/// <summary>Which devices the image is for.</summary>
public sealed record CompatibilityConfig
{
    /// <summary>Hardware identifiers (board names) the image runs on; empty means any (default).</summary>
    public IReadOnlyList<string> Hardware { get; set; } = [];

    /// <summary>CPU architectures: arm64, arm, x64, x86, riscv64; empty means any (default).</summary>
    public IReadOnlyList<string> Architectures { get; set; } = [];
}

/// <summary>Source-generated JSON for <see cref="ImageConfig"/> (AOT-clean).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    ReadCommentHandling = System.Text.Json.JsonCommentHandling.Skip,
    AllowTrailingCommas = true)]
[JsonSerializable(typeof(ImageConfig))]
public sealed partial class ImageConfigJsonContext : JsonSerializerContext;
