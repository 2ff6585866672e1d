using EdgeUpdater.Agent.Bootloader;
using EdgeUpdater.Agent.Config;
using EdgeUpdater.Testing;

namespace EdgeUpdater.Agent.Tests.Fixtures;

/// <summary>
/// A system target's boot side for tests: a real grubenv (grub-editenv) or U-Boot environment file
/// (mkenvimage + fw_setenv with a config pointing at it), a kernel command line file, and the boot
/// script's counting step of docs/bootloader.md done here between agent runs ("power on").
/// </summary>
internal sealed class SimulatedBootloader
{
    private SimulatedBootloader(string directory, BootloaderConfig config, IBootloader bootloader)
    {
        Directory = directory;
        Config = config;
        Bootloader = bootloader;
    }

    public string Directory { get; }

    public BootloaderConfig Config { get; }

    /// <summary>The same backend class the agent uses, reading and writing the real environment.</summary>
    public IBootloader Bootloader { get; }

    public string CommandLinePath => Path.Combine(Directory, "cmdline");

    /// <summary>The boot's identity (<c>/proc/sys/kernel/random/boot_id</c>): new at every power-on.</summary>
    public string BootIdPath => Path.Combine(Directory, "boot_id");

    /// <summary>The agent's reboot command creates this file.</summary>
    public string RebootMarker => Path.Combine(Directory, "reboot-requested");

    public static async Task<SimulatedBootloader> CreateAsync(string directory, string backend)
    {
        System.IO.Directory.CreateDirectory(directory);
        BootloaderConfig config;
        IBootloader bootloader;
        switch (backend)
        {
            case "grub":
                var grubenv = Path.Combine(directory, "grubenv");
                await ExternalTool.RunCheckedAsync("grub-editenv", [grubenv, "create"]);
                await ExternalTool.RunCheckedAsync("grub-editenv", [grubenv, "set", "bootlimit=3"]);
                config = new BootloaderConfig { Backend = "grub", EnvFile = grubenv };
                bootloader = new GrubBootloader(grubenv);
                break;
            case "uboot":
                var env = Path.Combine(directory, "uboot.env");
                var text = Path.Combine(directory, "uboot-env.txt");
                await File.WriteAllTextAsync(text, "bootlimit=3\nbootdelay=0\n");
                await ExternalTool.RunCheckedAsync("mkenvimage", ["-s", "0x4000", "-o", env, text]);
                var fwConfig = Path.Combine(directory, "fw_env.config");
                await File.WriteAllTextAsync(fwConfig, $"{env} 0x0 0x4000\n");
                config = new BootloaderConfig { Backend = "uboot", FwEnvConfig = fwConfig };
                bootloader = new UBootBootloader(fwConfig, directory);
                break;
            default:
                var file = Path.Combine(directory, "bootenv");
                config = new BootloaderConfig { Backend = "file", EnvFile = file };
                bootloader = new FileBootloader(file);
                break;
        }

        var simulated = new SimulatedBootloader(directory, config, bootloader);
        await simulated.PowerOnAsync();
        return simulated;
    }

    /// <summary>The target configuration for the agent, with the reboot command replaced by a marker file.</summary>
    public TargetConfig Target(string slotsDirectory, string name = "rootfs") => new()
    {
        Name = name,
        Kind = "system",
        Slots = new SlotPathsConfig { A = Path.Combine(slotsDirectory, $"{name}-a.sqfs"), B = Path.Combine(slotsDirectory, $"{name}-b.sqfs") },
        Bootloader = Config,
        RebootCommand = ["/bin/sh", "-c", $"touch '{RebootMarker}'"],
        KernelCommandLine = CommandLinePath,
        BootId = BootIdPath,
        OverlayDirectory = Path.Combine(Directory, "rootfs-overlay"),
    };

    /// <summary>
    /// One power-on through the boot script: while a trial is pending, count the boot, or fall back to
    /// the other slot once bootcount has reached bootlimit; then "boot" eu_slot (the kernel command line).
    /// </summary>
    public async Task<string> PowerOnAsync()
    {
        File.Delete(RebootMarker);
        var env = await Bootloader.ReadAsync();
        var slot = env.Slot;
        if (env.UpgradeAvailable)
        {
            if (env.BootCount >= env.BootLimit)
            {
                slot = slot == "a" ? "b" : "a";
                await Bootloader.WriteAsync(BootEnvironment.Committed(slot));
            }
            else
            {
                await Bootloader.WriteAsync(new Dictionary<string, string> { [BootEnvironment.BootCountVariable] = (env.BootCount + 1).ToString(System.Globalization.CultureInfo.InvariantCulture) });
            }
        }

        await File.WriteAllTextAsync(CommandLinePath, $"console=ttyS0 root=/dev/ram0 edgeupdater.slot={slot} quiet\n");
        await File.WriteAllTextAsync(BootIdPath, Guid.NewGuid().ToString() + "\n");
        return slot;
    }

    public async Task WaitForRebootRequestAsync(TimeSpan timeout, Func<string> context)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!File.Exists(RebootMarker))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the agent did not ask for a reboot within {timeout.TotalSeconds} s:\n{context()}");
            }

            await Task.Delay(100);
        }
    }
}
