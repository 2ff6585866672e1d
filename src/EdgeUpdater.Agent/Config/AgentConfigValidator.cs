using EdgeUpdater.Delta;
using EdgeUpdater.Protocol;

namespace EdgeUpdater.Agent.Config;

/// <summary>Hand-written validation: every error names its field, like <c>targets[0].slots.b: ...</c>.</summary>
internal static class AgentConfigValidator
{
    public static IReadOnlyList<string> Validate(AgentConfig config)
    {
        var errors = new List<string>();
        void Error(string field, string message) => errors.Add($"{field}: {message}");

        if (!MqttTopics.IsValidSegment(config.DeviceId))
        {
            Error("deviceId", $"'{config.DeviceId}' is missing or not 1-128 of [A-Za-z0-9._:-]");
        }

        if (config.Group is not null && !MqttTopics.IsValidSegment(config.Group))
        {
            Error("group", $"'{config.Group}' is not 1-128 of [A-Za-z0-9._:-]");
        }

        if (string.IsNullOrWhiteSpace(config.Hardware))
        {
            Error("hardware", "missing; manifests are checked against it");
        }

        if (config.Server is { } server)
        {
            if (!Uri.TryCreate(server.Url, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
            {
                Error("server.url", $"'{server.Url}' is not an absolute http(s) URL");
            }

            if (server.RequestTimeoutSeconds is < 1 or > 3600)
            {
                Error("server.requestTimeoutSeconds", $"{server.RequestTimeoutSeconds} is outside 1..3600");
            }
        }

        if (config.Broker is { } broker)
        {
            if (string.IsNullOrWhiteSpace(broker.Host))
            {
                Error("broker.host", "missing");
            }

            if (broker.Port is < 1 or > 65535)
            {
                Error("broker.port", $"{broker.Port} is outside 1..65535");
            }

            try
            {
                _ = new MqttTopics(broker.TopicPrefix);
            }
            catch (ArgumentException e)
            {
                Error("broker.topicPrefix", e.Message);
            }

            if (broker.ReconnectMinSeconds < 1 || broker.ReconnectMaxSeconds < broker.ReconnectMinSeconds)
            {
                Error("broker.reconnectMaxSeconds", "needs 1 <= reconnectMinSeconds <= reconnectMaxSeconds");
            }

            if (broker.SessionExpirySeconds is < 0 or > uint.MaxValue)
            {
                Error("broker.sessionExpirySeconds", $"{broker.SessionExpirySeconds} is outside 0..{uint.MaxValue}");
            }
        }

        if (config.Trust is null || config.Trust.RootKeys.Count == 0)
        {
            Error("trust.rootKeys", "at least one pinned root key is required: nothing is installed unverified");
        }
        else
        {
            for (var i = 0; i < config.Trust.RootKeys.Count; i++)
            {
                CheckAbsolute(config.Trust.RootKeys[i], $"trust.rootKeys[{i}]", Error);
            }

            if (config.Trust.RootThreshold < 1 || config.Trust.RootThreshold > config.Trust.RootKeys.Count)
            {
                Error("trust.rootThreshold", $"{config.Trust.RootThreshold} is outside 1..{config.Trust.RootKeys.Count} (the number of root keys)");
            }

            if (config.Trust.KeySets.Count == 0)
            {
                Error("trust.keySets", "at least the first key set (signed by the pinned roots) is required");
            }

            for (var i = 0; i < config.Trust.KeySets.Count; i++)
            {
                CheckAbsolute(config.Trust.KeySets[i], $"trust.keySets[{i}]", Error);
            }
        }

        CheckAbsolute(config.StateDirectory, "stateDirectory", Error);
        if (config.DataDirectory is not null)
        {
            CheckAbsolute(config.DataDirectory, "dataDirectory", Error);
        }

        CheckAbsolute(config.ControlSocket, "controlSocket", Error);
        if (config.Log.File is not null)
        {
            CheckAbsolute(config.Log.File, "log.file", Error);
        }

        if (config.Log.FileSizeLimitBytes < 16 * 1024)
        {
            Error("log.fileSizeLimitBytes", $"{config.Log.FileSizeLimitBytes} is below 16384");
        }

        if (config.Log.RetainedFiles is < 1 or > 100)
        {
            Error("log.retainedFiles", $"{config.Log.RetainedFiles} is outside 1..100");
        }

        if (config.Log.Level is not ("Verbose" or "Debug" or "Information" or "Warning" or "Error"))
        {
            Error("log.level", $"'{config.Log.Level}' is not one of Verbose, Debug, Information, Warning, Error");
        }

        if (config.Download.MaxAttempts is < 1 or > 1000)
        {
            Error("download.maxAttempts", $"{config.Download.MaxAttempts} is outside 1..1000");
        }

        if (config.Download.MaxBytesPerSecond < 0)
        {
            Error("download.maxBytesPerSecond", "must not be negative (0 means no cap)");
        }

        if (config.Download.InitialBackoffSeconds < 0 || config.Download.MaxBackoffSeconds < config.Download.InitialBackoffSeconds)
        {
            Error("download.maxBackoffSeconds", "needs 0 <= initialBackoffSeconds <= maxBackoffSeconds");
        }

        if (config.Download.IdleTimeoutSeconds is < 1 or > 3600)
        {
            Error("download.idleTimeoutSeconds", $"{config.Download.IdleTimeoutSeconds} is outside 1..3600");
        }

        if (config.Download.DeltaLevel is not ("any" or "fast" or "best"))
        {
            Error("download.deltaLevel", $"'{config.Download.DeltaLevel}' is not 'any', 'fast' or 'best'");
        }

        if (config.Download.DeltaCheckpointBytes is < 1024 * 1024 or > 1024L * 1024 * 1024)
        {
            Error("download.deltaCheckpointBytes", $"{config.Download.DeltaCheckpointBytes} is outside 1 MiB..1 GiB");
        }

        if (config.Health.DefaultDeadlineSeconds < 1)
        {
            Error("health.defaultDeadlineSeconds", "must be at least 1");
        }

        if (config.Health.TrialLimit < 1)
        {
            Error("health.trialLimit", "must be at least 1");
        }

        if (config.Gpio is { } gpio)
        {
            if (gpio.LedPin is < 0 || gpio.ButtonPin is < 0 || gpio.Chip < 0)
            {
                Error("gpio", "chip and pin numbers must not be negative");
            }

            if (gpio.LongPressSeconds < 1)
            {
                Error("gpio.longPressSeconds", "must be at least 1");
            }
        }

        if (config.Targets.Count == 0)
        {
            Error("targets", "at least one target is required");
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        var slotPaths = new Dictionary<string, string>(StringComparer.Ordinal);

        // The field of an earlier slot at this path, or at the same file or block device under another name
        // (a /dev/disk/by-partlabel link, a second device node): installing into one would overwrite the other,
        // perhaps the running system.
        string? SlotAlreadyNamed(string fullPath) =>
            slotPaths.TryGetValue(fullPath, out var field)
                ? field
                : slotPaths.FirstOrDefault(earlier => FileDeltaTarget.IsBase(fullPath, earlier.Key)).Value;

        for (var i = 0; i < config.Targets.Count; i++)
        {
            var target = config.Targets[i];
            var field = $"targets[{i}]";
            if (!MqttTopics.IsValidSegment(target.Name))
            {
                Error($"{field}.name", $"'{target.Name}' is missing or not 1-128 of [A-Za-z0-9._:-]");
            }
            else if (!names.Add(target.Name!))
            {
                Error($"{field}.name", $"'{target.Name}' is used by an earlier target");
            }

            if (target.Kind is not ("app" or "system"))
            {
                Error($"{field}.kind", $"'{target.Kind}' is not 'app' or 'system'");
            }

            if (target.Slots is null)
            {
                Error($"{field}.slots", "missing; give the paths of slots a and b");
            }
            else
            {
                foreach (var (slot, path) in new[] { ("a", target.Slots.A), ("b", target.Slots.B) })
                {
                    if (string.IsNullOrWhiteSpace(path) || !Path.IsPathRooted(path))
                    {
                        Error($"{field}.slots.{slot}", $"'{path}' is not an absolute path");
                    }
                    else if (SlotAlreadyNamed(Path.GetFullPath(path)) is { } other)
                    {
                        Error($"{field}.slots.{slot}", $"'{path}' is already {other}");
                    }
                    else
                    {
                        slotPaths[Path.GetFullPath(path)] = $"{field}.slots.{slot}";
                    }
                }
            }

            if (target.Kind == "system")
            {
                if (target.Bootloader is null)
                {
                    Error($"{field}.bootloader", "missing: a system target needs a bootloader backend");
                }
                else
                {
                    var backend = target.Bootloader.Backend;
                    if (backend is not ("grub" or "uboot" or "file"))
                    {
                        Error($"{field}.bootloader.backend", $"'{backend}' is not 'grub', 'uboot' or 'file'");
                    }

                    if (backend is "grub" or "file" && string.IsNullOrWhiteSpace(target.Bootloader.EnvFile))
                    {
                        Error($"{field}.bootloader.envFile", $"missing: the {backend} backend needs its environment file");
                    }
                }

                if (target.RebootCommand.Count == 0 || string.IsNullOrWhiteSpace(target.RebootCommand[0]))
                {
                    Error($"{field}.rebootCommand", "missing: a system target reboots into its trial slot");
                }
            }
            else if (target.Bootloader is not null)
            {
                Error($"{field}.bootloader", "only system targets use a bootloader");
            }
        }

        return errors;
    }

    private static void CheckAbsolute(string? path, string field, Action<string, string> error)
    {
        if (string.IsNullOrWhiteSpace(path) || !Path.IsPathRooted(path))
        {
            error(field, $"'{path}' is not an absolute path");
        }
    }
}
