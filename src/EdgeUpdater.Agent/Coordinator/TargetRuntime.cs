using EdgeUpdater.Agent.Activation;
using EdgeUpdater.Agent.Bootloader;
using EdgeUpdater.Agent.Config;
using EdgeUpdater.Agent.Slots;

namespace EdgeUpdater.Agent.Coordinator;

/// <summary>The live parts of one configured target: its slots, and its app runtime or bootloader.</summary>
internal sealed class TargetRuntime
{
    public TargetRuntime(TargetConfig config, string directory, AppRuntime? app, IBootloader? bootloader)
    {
        Config = config;
        Directory = directory;
        App = app;
        Bootloader = bootloader;
        A = new Slot("a", config.Slots!.A!);
        B = new Slot("b", config.Slots!.B!);
        Mount = app?.Mount ?? new ImageMount(directory);
    }

    public TargetConfig Config { get; }

    public string Name => Config.Name!;

    public bool IsApp => Config.Kind == "app";

    /// <summary>A reboot asked for longer ago than this did not take; the state may be judged again.</summary>
    private const long RebootGraceMilliseconds = 5 * 60 * 1000;

    /// <summary>
    /// System targets: when (<see cref="Environment.TickCount64"/>) this process last ran the reboot command
    /// successfully. Not persisted: the reboot ends the process, and a process started without one judges the
    /// state afresh.
    /// </summary>
    public long? RebootRequestedAt { get; set; }

    /// <summary>The reboot this process asked for, within the last few minutes, is under way.</summary>
    public bool RebootUnderWay => RebootRequestedAt is { } at && Environment.TickCount64 - at < RebootGraceMilliseconds;

    /// <summary>The target's directory under the state directory.</summary>
    public string Directory { get; }

    public AppRuntime? App { get; }

    public IBootloader? Bootloader { get; }

    /// <summary>Where images are mounted to read their config.json (the app runtime's own mount for app targets).</summary>
    public ImageMount Mount { get; }

    public Slot A { get; }

    public Slot B { get; }

    public Slot Slot(string name) => name == "a" ? A : B;

    /// <summary>Download area for deltas.</summary>
    public string DeltaPath => Path.Combine(Directory, "download.delta");

    /// <summary>Resume point of an interrupted delta apply (EdgeUpdater.Delta's checkpoint file).</summary>
    public string ApplyCheckpointPath => Path.Combine(Directory, "apply.checkpoint");

    /// <summary>Deletes the downloaded delta and its apply checkpoint (a new update, a fallback, or done).</summary>
    public void DeleteDeltaFiles()
    {
        if (!System.IO.Directory.Exists(Directory))
        {
            return;
        }

        File.Delete(DeltaPath);
        File.Delete(ApplyCheckpointPath);
        File.Delete(ApplyCheckpointPath + ".tmp");
    }

    /// <summary>System targets: the slot the kernel command line says was booted, or null.</summary>
    public string? ReadBootedSlot()
    {
        try
        {
            foreach (var word in File.ReadAllText(Config.KernelCommandLine).Split((char[])[' ', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries))
            {
                if (word.StartsWith("edgeupdater.slot=", StringComparison.Ordinal))
                {
                    var slot = word["edgeupdater.slot=".Length..];
                    return slot is "a" or "b" ? slot : null;
                }
            }
        }
        catch (IOException)
        {
        }

        return null;
    }

    /// <summary>System targets: the identity of this boot (the kernel's boot_id), or null when it cannot be read.</summary>
    public string? ReadBootId()
    {
        try
        {
            var id = File.ReadAllText(Config.BootId).Trim();
            return id.Length > 0 ? id : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
