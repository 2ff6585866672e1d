using System.Text.Json;
using System.Text.Json.Serialization;

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
}

/// <summary>
/// The parts of an image's <c>config.json</c> the agent acts on. Agent-side model until
/// EdgeUpdater.Images (issue 2) lands with the schema; <see cref="ImageConfigParser"/> is the seam.
/// </summary>
internal sealed record ImageConfig
{
    public int Schema { get; set; } = 1;

    public string? Name { get; set; }

    public string? Version { get; set; }

    public string Kind { get; set; } = "app";

    public IReadOnlyList<string> Entrypoint { get; set; } = [];

    public IReadOnlyList<string> Cmd { get; set; } = [];

    public IReadOnlyDictionary<string, string> Env { get; set; } = new Dictionary<string, string>();

    public string WorkingDir { get; set; } = "/";

    /// <summary><c>name</c>, <c>uid</c> or <c>uid:gid</c>; resolved against the image's /etc/passwd and /etc/group.</summary>
    public string User { get; set; } = "0";

    /// <summary>Absolute paths inside the root that persist across updates and rollbacks.</summary>
    public IReadOnlyList<string> Volumes { get; set; } = [];

    public HealthCheckSpec? HealthCheck { get; set; }

    /// <summary>The full command line: entrypoint followed by cmd.</summary>
    [JsonIgnore]
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

/// <summary>Parses and checks <c>config.json</c>. Seam to EdgeUpdater.Images: replaced by its parser when it lands.</summary>
internal static class ImageConfigParser
{
    public static ImageConfig Parse(ReadOnlySpan<byte> json, string source)
    {
        ImageConfig config;
        try
        {
            config = JsonSerializer.Deserialize(json, ImageConfigJsonContext.Default.ImageConfig)
                ?? throw new ImageConfigException($"{source}: config.json holds null");
        }
        catch (JsonException e)
        {
            throw new ImageConfigException($"{source}: {e.Path ?? "$"}: {e.Message}", e);
        }

        // Absent lists and maps mean empty; an explicit null in the file means the same.
        config = config with
        {
            Entrypoint = config.Entrypoint ?? [],
            Cmd = config.Cmd ?? [],
            Env = config.Env ?? new Dictionary<string, string>(),
            Volumes = config.Volumes ?? [],
            WorkingDir = config.WorkingDir ?? "/",
            User = config.User ?? "0",
            Kind = config.Kind ?? "app",
        };
        if (config.Kind is not ("app" or "system"))
        {
            throw new ImageConfigException($"{source}: kind: '{config.Kind}' is not 'app' or 'system'");
        }

        if (!config.WorkingDir.StartsWith('/'))
        {
            throw new ImageConfigException($"{source}: workingDir: '{config.WorkingDir}' is not absolute");
        }

        for (var i = 0; i < config.Volumes.Count; i++)
        {
            var volume = config.Volumes[i];
            if (!volume.StartsWith('/') || volume == "/" || volume.Split('/').Contains(".."))
            {
                throw new ImageConfigException($"{source}: volumes[{i}]: '{volume}' must be an absolute path below / without '..'");
            }
        }

        if (config.HealthCheck is { } health)
        {
            var probes = (health.Command is { Count: > 0 } ? 1 : 0) + (health.Http is null ? 0 : 1) + (health.Tcp is null ? 0 : 1);
            if (probes != 1)
            {
                throw new ImageConfigException($"{source}: healthCheck: give exactly one of command, http, tcp (found {probes})");
            }

            if (health.IntervalSeconds < 1 || health.TimeoutSeconds < 1 || health.DeadlineSeconds is < 1)
            {
                throw new ImageConfigException($"{source}: healthCheck: intervalSeconds, timeoutSeconds and deadlineSeconds must be at least 1");
            }
        }

        return config;
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, ReadCommentHandling = JsonCommentHandling.Skip)]
[JsonSerializable(typeof(ImageConfig))]
internal sealed partial class ImageConfigJsonContext : JsonSerializerContext
{
}
