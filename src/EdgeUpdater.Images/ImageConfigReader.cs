using System.Text.Json;
using System.Text.RegularExpressions;

namespace EdgeUpdater.Images;

/// <summary>Parses and validates <c>config.json</c>; errors name the JSON path of every problem.</summary>
public static partial class ImageConfigReader
{
    /// <summary>Largest config.json accepted (1 MiB).</summary>
    public const int MaxConfigBytes = 1 << 20;

    private static readonly string[] KnownArchitectures = ["arm64", "arm", "x64", "x86", "riscv64"];

    /// <summary>Parses and validates; throws <see cref="ImageException"/> listing every problem.</summary>
    public static ImageConfig Parse(ReadOnlySpan<byte> json)
    {
        if (json.Length > MaxConfigBytes)
        {
            throw new ImageException(ImageErrorCategory.InvalidConfig, $"config.json is {json.Length} bytes; at most {MaxConfigBytes} are allowed.");
        }

        ImageConfig? config;
        try
        {
            config = JsonSerializer.Deserialize(json, ImageConfigJsonContext.Default.ImageConfig);
        }
        catch (JsonException e)
        {
            var where = string.IsNullOrEmpty(e.Path) ? "$" : e.Path;
            var detail = e.Message.Split(" Path:", 2)[0];
            throw new ImageException(ImageErrorCategory.InvalidConfig, $"config.json {where}: {detail}", [$"{where}: {detail}"], e);
        }

        if (config is null)
        {
            throw new ImageException(ImageErrorCategory.InvalidConfig, "config.json $: expected an object, found null.");
        }

        config = config with
        {
            Entrypoint = config.Entrypoint ?? [],
            Cmd = config.Cmd ?? [],
            Env = config.Env ?? new Dictionary<string, string>(),
            Volumes = config.Volumes ?? [],
            Compatible = config.Compatible ?? new CompatibilityConfig(),
            WorkingDir = config.WorkingDir ?? "/",
            User = config.User ?? "root",
        };
        var errors = Validate(config);
        if (errors.Count > 0)
        {
            throw new ImageException(ImageErrorCategory.InvalidConfig, "config.json is invalid:\n  " + string.Join("\n  ", errors), errors);
        }

        return config;
    }

    /// <summary>Reads and validates a config file.</summary>
    public static ImageConfig ReadFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new ImageException(ImageErrorCategory.NotFound, $"Config file '{path}' does not exist.");
        }

        var length = new FileInfo(path).Length;
        if (length > MaxConfigBytes)
        {
            throw new ImageException(ImageErrorCategory.InvalidConfig, $"Config file '{path}' is {length} bytes; at most {MaxConfigBytes} are allowed.");
        }

        return Parse(File.ReadAllBytes(path));
    }

    /// <summary>Serializes a config (indented, defaults included).</summary>
    public static byte[] Serialize(ImageConfig config) => JsonSerializer.SerializeToUtf8Bytes(config, ImageConfigJsonContext.Default.ImageConfig);

    /// <summary>Every schema violation, each prefixed by its JSON path; empty when valid.</summary>
    public static IReadOnlyList<string> Validate(ImageConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var errors = new List<string>();
        if (config.SchemaVersion < 1 || config.SchemaVersion > ImageConfig.CurrentSchemaVersion)
        {
            errors.Add($"$.schemaVersion: {config.SchemaVersion} is not supported; this version reads schema 1 to {ImageConfig.CurrentSchemaVersion}.");
        }

        if (!NamePattern().IsMatch(config.Name ?? string.Empty))
        {
            errors.Add($"$.name: '{config.Name}' must be 1-64 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit.");
        }

        if (!SemVerPattern().IsMatch(config.Version ?? string.Empty))
        {
            errors.Add($"$.version: '{config.Version}' is not a semantic version (MAJOR.MINOR.PATCH[-prerelease][+build], e.g. 1.0.0).");
        }

        CheckStrings(config.Entrypoint, "$.entrypoint", errors);
        CheckStrings(config.Cmd, "$.cmd", errors);
        if (config.Entrypoint is { Count: > 0 } entry && !entry[0].StartsWith('/'))
        {
            errors.Add($"$.entrypoint[0]: '{entry[0]}' must be an absolute path inside root/.");
        }

        foreach (var (key, value) in config.Env ?? new Dictionary<string, string>())
        {
            if (!EnvNamePattern().IsMatch(key))
            {
                errors.Add($"$.env.{key}: not a valid variable name (letters, digits, '_', not starting with a digit).");
            }

            if (value is null || value.Contains('\0', StringComparison.Ordinal))
            {
                errors.Add($"$.env.{key}: value must be a string without NUL.");
            }
        }

        if (string.IsNullOrEmpty(config.WorkingDir) || !config.WorkingDir.StartsWith('/'))
        {
            errors.Add($"$.workingDir: '{config.WorkingDir}' must be an absolute path.");
        }

        if (!UserPattern().IsMatch(config.User ?? string.Empty))
        {
            errors.Add($"$.user: '{config.User}' must be a user name, a uid, or uid:gid.");
        }

        var volumeNames = new HashSet<string>(StringComparer.Ordinal);
        var volumePaths = new HashSet<string>(StringComparer.Ordinal);
        var volumes = config.Volumes ?? [];
        for (var i = 0; i < volumes.Count; i++)
        {
            var v = volumes[i];
            var at = $"$.volumes[{i}]";
            if (v is null)
            {
                errors.Add($"{at}: expected an object with name and path.");
                continue;
            }

            if (!NamePattern().IsMatch(v.Name ?? string.Empty))
            {
                errors.Add($"{at}.name: '{v.Name}' must be 1-64 characters of a-z, 0-9, '.', '_', '-'.");
            }
            else if (!volumeNames.Add(v.Name!))
            {
                errors.Add($"{at}.name: '{v.Name}' is used twice.");
            }

            if (string.IsNullOrEmpty(v.Path) || !v.Path.StartsWith('/') || v.Path == "/" || v.Path.Split('/').Contains(".."))
            {
                errors.Add($"{at}.path: '{v.Path}' must be an absolute path other than '/' without '..'.");
            }
            else if (!volumePaths.Add(v.Path.TrimEnd('/')))
            {
                errors.Add($"{at}.path: '{v.Path}' is used twice.");
            }
        }

        if (config.HealthCheck is { } health)
        {
            ValidateHealth(health, errors);
        }

        var compatible = config.Compatible ?? new CompatibilityConfig();
        CheckStrings(compatible.Hardware, "$.compatible.hardware", errors);
        var architectures = compatible.Architectures ?? [];
        for (var i = 0; i < architectures.Count; i++)
        {
            if (!KnownArchitectures.Contains(architectures[i]))
            {
                errors.Add($"$.compatible.architectures[{i}]: '{architectures[i]}' is not one of {string.Join(", ", KnownArchitectures)}.");
            }
        }

        return errors;
    }

    private static void ValidateHealth(HealthCheckConfig health, List<string> errors)
    {
        const string at = "$.healthCheck";
        switch (health.Type)
        {
            case HealthCheckType.Command:
                if (health.Command is null || health.Command.Count == 0)
                {
                    errors.Add($"{at}.command: a command health check needs the program and its arguments.");
                }

                CheckStrings(health.Command, $"{at}.command", errors);
                break;
            case HealthCheckType.Http:
                if (!Uri.TryCreate(health.Url, UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
                {
                    errors.Add($"{at}.url: '{health.Url}' must be an absolute http:// or https:// URL.");
                }

                break;
            case HealthCheckType.Tcp:
                if (health.Port < 1 || health.Port > 65535)
                {
                    errors.Add($"{at}.port: {health.Port} must be 1-65535.");
                }

                if (string.IsNullOrWhiteSpace(health.Host))
                {
                    errors.Add($"{at}.host: must not be empty.");
                }

                break;
        }

        if (health.IntervalSeconds < 1 || health.IntervalSeconds > 3600)
        {
            errors.Add($"{at}.intervalSeconds: {health.IntervalSeconds} must be 1-3600.");
        }

        if (health.TimeoutSeconds < 1 || health.TimeoutSeconds > 3600)
        {
            errors.Add($"{at}.timeoutSeconds: {health.TimeoutSeconds} must be 1-3600.");
        }

        if (health.SuccessThreshold < 1 || health.SuccessThreshold > 100)
        {
            errors.Add($"{at}.successThreshold: {health.SuccessThreshold} must be 1-100.");
        }

        if (health.Retries < 1 || health.Retries > 1000)
        {
            errors.Add($"{at}.retries: {health.Retries} must be 1-1000.");
        }

        if (health.DeadlineSeconds < 1 || health.DeadlineSeconds > 86400)
        {
            errors.Add($"{at}.deadlineSeconds: {health.DeadlineSeconds} must be 1-86400.");
        }
        else if (health.DeadlineSeconds < health.IntervalSeconds)
        {
            errors.Add($"{at}.deadlineSeconds: {health.DeadlineSeconds} is shorter than intervalSeconds {health.IntervalSeconds}; no probe would run.");
        }
    }

    private static void CheckStrings(IReadOnlyList<string>? values, string at, List<string> errors)
    {
        if (values is null)
        {
            return;
        }

        for (var i = 0; i < values.Count; i++)
        {
            if (string.IsNullOrEmpty(values[i]) || values[i].Contains('\0', StringComparison.Ordinal))
            {
                errors.Add($"{at}[{i}]: must be a non-empty string without NUL.");
            }
        }
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,63}$")]
    private static partial Regex NamePattern();

    [GeneratedRegex(@"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$")]
    private static partial Regex SemVerPattern();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex EnvNamePattern();

    [GeneratedRegex("^([a-z_][a-z0-9_-]{0,31}|[0-9]+(:[0-9]+)?)$")]
    private static partial Regex UserPattern();
}
