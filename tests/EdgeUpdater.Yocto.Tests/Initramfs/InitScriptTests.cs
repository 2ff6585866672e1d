using System.Text;
using EdgeUpdater.Testing;
using EdgeUpdater.Yocto.Tests.Images;
using EdgeUpdater.Yocto.Tests.Layer;
using Xunit;

namespace EdgeUpdater.Yocto.Tests.Initramfs;

/// <summary>
/// The initramfs /init (recipes-core/initrdscripts/files/edgeupdater-init.sh) run as on a device:
/// under busybox (its sh and applets only, as the initramfs image installs), against loop devices
/// whose slot partitions hold SquashFS images made by the layer's image command and whose data
/// partition is ext4, in a private mount namespace. Partition names come from a sysfs tree in the
/// kernel's uevent format (see <see cref="PartitionedLoopDisk"/>: the CI kernel cannot parse
/// partition tables); devices, SquashFS, ext4, overlay and mount moves are the real kernel's. It
/// stops just before switch_root (EDGEUPDATER_NO_SWITCH_ROOT=1); the test then looks at the new
/// root from inside the namespace.
/// </summary>
public sealed class InitScriptTests : IClassFixture<InitScriptTests.Disk>
{
    private readonly Disk _disk;

    public InitScriptTests(Disk disk)
    {
        _disk = disk;
    }

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static string ScriptPath => LayerPaths.InLayer("recipes-core", "initrdscripts", "files", "edgeupdater-init.sh");

    [Fact]
    public async Task Script_passes_shellcheck_as_posix_sh()
    {
        var result = await ExternalTool.RunAsync("shellcheck", ["--shell=sh", "--severity=style", ScriptPath], cancellationToken: Token);
        Assert.True(result.ExitCode == 0, result.StandardOutput + result.StandardError);
    }

    [Fact]
    public async Task Boots_the_slot_on_the_command_line_under_an_overlay_that_persists_per_slot()
    {
        Privileges.RequireRoot("loop devices, SquashFS, ext4 and overlay mounts");
        var disk = _disk.Require();

        var first = await BootAsync(disk, "edgeupdater.slot=b", "cat $NEWROOT/etc/slot-test; echo written-on-b > $NEWROOT/etc/local-change");
        Assert.True(first.ExitCode == 0, first.Describe());
        Assert.Equal("b", first.Output.Trim());
        AssertMounted(first, disk, "b");

        var second = await BootAsync(disk, "edgeupdater.slot=b", "cat $NEWROOT/etc/local-change");
        Assert.True(second.ExitCode == 0, second.Describe());
        Assert.Equal("written-on-b", second.Output.Trim());

        var other = await BootAsync(disk, "edgeupdater.slot=a", "cat $NEWROOT/etc/slot-test; test ! -e $NEWROOT/etc/local-change && echo clean; ls $NEWROOT/data/edgeupdater/rootfs");
        Assert.True(other.ExitCode == 0, other.Describe());
        Assert.Equal(["a", "clean", "a", "b"], other.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        AssertMounted(other, disk, "a");
    }

    [Fact]
    public async Task Explicit_device_paths_override_the_partition_labels()
    {
        Privileges.RequireRoot("loop devices and mounts");
        var disk = _disk.Require();
        // Slot a's device given as slot b: the script must mount what the command line names.
        var result = await BootAsync(
            disk,
            $"edgeupdater.slot=b edgeupdater.root_b={disk.Partition("a")} edgeupdater.data={disk.Partition("data")}",
            "cat $NEWROOT/etc/slot-test",
            useLabels: false);
        Assert.True(result.ExitCode == 0, result.Describe());
        Assert.Equal("a", result.Output.Trim());
    }

    [Theory]
    [InlineData("", "edgeupdater.slot is missing")]
    [InlineData("edgeupdater.slot=c", "is not a slot")]
    [InlineData("edgeupdater.slot=a edgeupdater.rootwait=x", "is not a number")]
    [InlineData("edgeupdater.slot=a edgeupdater.root_a=UUID=1234", "unsupported device specification")]
    public async Task Bad_command_lines_stop_the_boot_with_a_reason(string commandLine, string reason)
    {
        Privileges.RequireRoot("the script runs as the initramfs would, as root");
        var disk = _disk.Require();
        var result = await BootAsync(disk, commandLine, "true");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains(reason, result.Errors, StringComparison.Ordinal);
        Assert.DoesNotContain("overlay", result.Mounts, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_slot_device_fails_after_rootwait()
    {
        Privileges.RequireRoot("the script runs as the initramfs would, as root");
        var disk = _disk.Require();
        var result = await BootAsync(disk, "edgeupdater.slot=a edgeupdater.rootwait=1", "true", labels: ("no-such-a", "no-such-b", "data"));
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("not found within 1s", result.Errors, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Partition_label_found_on_two_devices_is_refused()
    {
        Privileges.RequireRoot("the script runs as the initramfs would, as root");
        var disk = _disk.Require();
        var result = await BootAsync(disk, $"edgeupdater.slot=a edgeupdater.root_a=PARTLABEL={disk.Label("twin")}", "true");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains($"partition label {disk.Label("twin")} is on both", result.Errors, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SquashFs_without_config_json_is_not_booted()
    {
        Privileges.RequireRoot("loop devices and mounts");
        var disk = _disk.Require();
        var result = await BootAsync(disk, $"edgeupdater.slot=a edgeupdater.root_a={disk.Partition("plain")}", "true");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("is not an EdgeUpdater image", result.Errors, StringComparison.Ordinal);
        Assert.DoesNotContain("overlay", result.Mounts, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Slot_that_is_not_SquashFS_is_not_booted()
    {
        Privileges.RequireRoot("loop devices and mounts");
        var disk = _disk.Require();
        var result = await BootAsync(disk, $"edgeupdater.slot=a edgeupdater.root_a={disk.Partition("data")}", "true");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("cannot mount slot a", result.Errors, StringComparison.Ordinal);
    }

    private static void AssertMounted(BootResult result, PartitionedLoopDisk disk, string slot)
    {
        // As the namespace saw them just before switch_root: the slot's SquashFS, the overlay on the
        // new root with that slot's upper directory, and the data partition moved to /data.
        var lines = result.Mounts.Split('\n');
        Assert.Contains(lines, l => l.StartsWith(disk.Partition(slot) + " ", StringComparison.Ordinal) && l.Contains(" squashfs ro", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("overlay ", StringComparison.Ordinal) && l.Contains($"/edgeupdater/rootfs/{slot}/upper", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith(disk.Partition("data") + " ", StringComparison.Ordinal) && l.Contains("/newroot/data ext4 rw", StringComparison.Ordinal));
    }

    private async Task<BootResult> BootAsync(
        PartitionedLoopDisk disk, string commandLine, string inspect, bool useLabels = true, (string A, string B, string Data)? labels = null)
    {
        using var run = new TempDirectory("yocto-init");
        var (a, b, data) = labels ?? ("a", "b", "data");
        // The partition names of this disk first; the test's own arguments after them win (the
        // script takes the last occurrence, as the kernel command line is read).
        var line = new StringBuilder("console=ttyS0 ");
        if (useLabels)
        {
            line.Append($"edgeupdater.root_a=PARTLABEL={disk.Label(a)} edgeupdater.root_b=PARTLABEL={disk.Label(b)} edgeupdater.data=PARTLABEL={disk.Label(data)} edgeupdater.rootwait=1 ");
        }

        line.Append(commandLine).Append(" quiet\n");
        await File.WriteAllTextAsync(run.Combine("cmdline"), line.ToString(), Token);
        var newroot = run.Combine("newroot");
        var outside = $"""
            export EDGEUPDATER_CMDLINE={run.Combine("cmdline")} EDGEUPDATER_NEWROOT={newroot} EDGEUPDATER_RUNDIR={run.Combine("run")} EDGEUPDATER_SYSFS={disk.SysfsRoot} EDGEUPDATER_NO_SWITCH_ROOT=1
            PATH={_disk.BusyboxBin} {_disk.BusyboxBin}/sh {ScriptPath} 2>{run.Combine("errors")}
            status=$?
            grep -F {run.Path} /proc/self/mounts > {run.Combine("mounts")}
            if [ $status -ne 0 ]; then exit $status; fi
            NEWROOT={newroot}
            {inspect}
            """;
        var result = await ExternalTool.RunAsync("unshare", ["--mount", "--propagation", "private", "sh", "-c", outside], TimeSpan.FromSeconds(60), cancellationToken: Token);
        var errors = File.Exists(run.Combine("errors")) ? await File.ReadAllTextAsync(run.Combine("errors"), Token) : string.Empty;
        var mounts = File.Exists(run.Combine("mounts")) ? await File.ReadAllTextAsync(run.Combine("mounts"), Token) : string.Empty;
        return new BootResult(result.ExitCode, result.StandardOutput, errors + result.StandardError, mounts);
    }

    private sealed record BootResult(int ExitCode, string Output, string Errors, string Mounts)
    {
        public string Describe() => $"exit {ExitCode}\nstdout:\n{Output}\nstderr:\n{Errors}\nmounts:\n{Mounts}";
    }

    /// <summary>
    /// The disk for all tests of the class: slot images a and b (layer image command), "plain" (a
    /// SquashFS without config.json) and an ext4 data partition; and a directory of busybox applets.
    /// Built only as root; otherwise each test skips through Privileges.RequireRoot.
    /// </summary>
    public sealed class Disk : IAsyncLifetime
    {
        private readonly TempDirectory _directory = new("yocto-initdisk");
        private PartitionedLoopDisk? _disk;

        public string BusyboxBin => _directory.Combine("bin");

        public async ValueTask InitializeAsync()
        {
            if (!Privileges.IsRoot)
            {
                return;
            }

            await CreateBusyboxBinAsync();
            var images = new Dictionary<string, string>();
            foreach (var slot in new[] { "a", "b" })
            {
                var rootfs = _directory.Combine("rootfs-" + slot);
                Directory.CreateDirectory(Path.Combine(rootfs, "etc"));
                Directory.CreateDirectory(Path.Combine(rootfs, "sbin"));
                await File.WriteAllTextAsync(Path.Combine(rootfs, "etc", "slot-test"), slot + "\n");
                var init = Path.Combine(rootfs, "sbin", "init");
                await File.WriteAllTextAsync(init, "#!/bin/sh\necho init\n");
                File.SetUnixFileMode(init, (UnixFileMode)0b111_101_101);
                images[slot] = _directory.Combine(slot + ".edgeupdater");
                (await LayerImageCommand.BuildAsync(rootfs, "{\"name\": \"init-test\", \"version\": \"1.0.0\"}\n", images[slot])).EnsureSuccess("edgeupdater_make_image");
            }

            var plainTree = _directory.Combine("plain");
            Directory.CreateDirectory(Path.Combine(plainTree, "root", "sbin"));
            images["plain"] = _directory.Combine("plain.squashfs");
            await ExternalTool.RunCheckedAsync("mksquashfs", [plainTree, images["plain"], "-quiet", "-no-progress"]);

            var partitions = _directory.Combine("disk");
            Directory.CreateDirectory(partitions);
            _disk = await PartitionedLoopDisk.CreateAsync(partitions, [("a", 8), ("b", 8), ("plain", 4), ("data", 16)]);
            await _disk.AddForeignPartitionAsync("loopfake1", _disk.Label("twin"));
            await _disk.AddForeignPartitionAsync("loopfake2", _disk.Label("twin"));
            foreach (var (name, image) in images)
            {
                await _disk.WriteAsync(name, image);
            }

            await ExternalTool.RunCheckedAsync("mkfs.ext4", ["-q", "-F", _disk.Partition("data")]);
        }

        internal PartitionedLoopDisk Require() => _disk ?? throw new InvalidOperationException("the disk is only built as root");

        public async ValueTask DisposeAsync()
        {
            if (_disk is not null)
            {
                await _disk.DisposeAsync();
            }

            _directory.Dispose();
        }

        private async Task CreateBusyboxBinAsync()
        {
            var busybox = ExternalTool.Require("busybox");
            Directory.CreateDirectory(BusyboxBin);
            var list = await ExternalTool.RunCheckedAsync("busybox", ["--list"]);
            foreach (var applet in list.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                File.CreateSymbolicLink(Path.Combine(BusyboxBin, applet), busybox);
            }
        }
    }
}
