using EdgeUpdater.Images;
using ImagesConfig = EdgeUpdater.Images.ImageConfig;

namespace EdgeUpdater.Agent.Activation;

/// <summary>How a new image proves itself healthy (from its <c>config.json</c>).</summary>
internal sealed record HealthCheckSpec
{
    /// <summary>Command run inside the image's root; exit 0 passes.</summary>
    public IReadOnlyList<string>? Command { get; set; }

    /// <summary>URL that must answer 2xx.</summary>
    public string? Http { get; set; }

    /// <summary><c>host:port</c> that must accept a TCP connection.</summary>
    public string? Tcp { get; set; }

    public int IntervalSeconds { get; set; } = 1;

    /// <summary>Time allowed for one probe.</summary>
    public int TimeoutSeconds { get; set; } = 5;

    /// <summary>Time allowed for the first pass; null uses the agent's default.</summary>
    public int? DeadlineSeconds { get; set; }

    /// <summary>Consecutive passing probes that make the image healthy.</summary>
    public int SuccessThreshold { get; set; } = 1;

    /// <summary>Consecutive failing probes that make it unhealthy before the deadline.</summary>
    public int Retries { get; set; } = 3;
}

/// <summary>A persistent volume: kept under the agent's data directory by <see cref="Name"/>, mounted at <see cref="Path"/>.</summary>
internal sealed record VolumeSpec(string Name, string Path);

/// <summary>
/// The parts of an image's <c>config.json</c> the agent acts on, mapped from EdgeUpdater.Images'
/// model (docs/image-config.md) by <see cref="ImageConfigParser"/>.
/// </summary>
internal sealed record ImageConfig
{
    public string? Name { get; set; }

    public string? Version { get; set; }

    public string Kind { get; set; } = "app";

    public IReadOnlyList<string> Entrypoint { get; set; } = [];

    public IReadOnlyList<string> Cmd { get; set; } = [];

    public IReadOnlyDictionary<string, string> Env { get; set; } = new Dictionary<string, string>();

    public string WorkingDir { get; set; } = "/";

    /// <summary><c>name</c>, <c>uid</c> or <c>uid:gid</c>; resolved against the image's /etc/passwd and /etc/group.</summary>
    public string User { get; set; } = "root";

    /// <summary>Directories inside the root that persist across updates and rollbacks.</summary>
    public IReadOnlyList<VolumeSpec> Volumes { get; set; } = [];

    public HealthCheckSpec? HealthCheck { get; set; }

    /// <summary>The full command line: entrypoint followed by cmd.</summary>
    public IReadOnlyList<string> Command => [.. Entrypoint, .. Cmd];
}

/// <summary>A config.json that cannot be used; the message names the field.</summary>
internal sealed class ImageConfigException : Exception
{
    public ImageConfigException(string message)
        : base(message)
    {
    }

    public ImageConfigException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public ImageConfigException()
    {
    }
}

/// <summary>Parses <c>config.json</c> with EdgeUpdater.Images (schema and validation there) and maps what the agent needs.</summary>
internal static class ImageConfigParser
{
    public static ImageConfig Parse(ReadOnlySpan<byte> json, string source)
    {
        ImagesConfig config;
        try
        {
            config = ImageConfigReader.Parse(json);
        }
        catch (ImageException e)
        {
            throw new ImageConfigException($"{source}: {e.Message}", e);
        }

        return new ImageConfig
        {
            Name = config.Name,
            Version = config.Version,
            Kind = config.Target == TargetKind.System ? "system" : "app",
            Entrypoint = config.Entrypoint,
            Cmd = config.Cmd,
            Env = config.Env,
            WorkingDir = config.WorkingDir,
            User = config.User,
            Volumes = [.. config.Volumes.Select(v => new VolumeSpec(v.Name, v.Path))],
            HealthCheck = config.HealthCheck is { } health ? new HealthCheckSpec
            {
                Command = health.Type == HealthCheckType.Command ? health.Command : null,
                Http = health.Type == HealthCheckType.Http ? health.Url : null,
                Tcp = health.Type == HealthCheckType.Tcp ? $"{health.Host}:{health.Port}" : null,
                IntervalSeconds = health.IntervalSeconds,
                TimeoutSeconds = health.TimeoutSeconds,
                DeadlineSeconds = health.DeadlineSeconds,
                SuccessThreshold = health.SuccessThreshold,
                Retries = health.Retries,
            } : null,
        };
    }
}
