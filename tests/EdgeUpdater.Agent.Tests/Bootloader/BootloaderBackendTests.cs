using EdgeUpdater.Agent.Bootloader;
using EdgeUpdater.Agent.Tests.Fixtures;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Agent.Tests.Bootloader;

/// <summary>Each backend against its real tool and file: the variables of docs/bootloader.md round-trip, other variables survive.</summary>
public sealed class BootloaderBackendTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    [Theory]
    [InlineData("grub")]
    [InlineData("uboot")]
    [InlineData("file")]
    public async Task Trial_then_commit_round_trips_and_keeps_other_variables(string backend)
    {
        var boot = await SimulatedBootloader.CreateAsync(_directory.Combine(backend), backend);
        var bootloader = boot.Bootloader;

        var fresh = await bootloader.ReadAsync(TestContext.Current.CancellationToken);
        Assert.Equal(("a", false, 0), (fresh.Slot, fresh.UpgradeAvailable, fresh.BootCount));

        await bootloader.WriteAsync(BootEnvironment.Trial("b"), TestContext.Current.CancellationToken);
        var trial = await bootloader.ReadAsync(TestContext.Current.CancellationToken);
        Assert.Equal(("b", true, 0), (trial.Slot, trial.UpgradeAvailable, trial.BootCount));

        Assert.Equal("b", await boot.PowerOnAsync());
        Assert.Equal(1, (await bootloader.ReadAsync(TestContext.Current.CancellationToken)).BootCount);

        await bootloader.WriteAsync(BootEnvironment.Committed("b"), TestContext.Current.CancellationToken);
        var committed = await bootloader.ReadAsync(TestContext.Current.CancellationToken);
        Assert.Equal(("b", false, 0), (committed.Slot, committed.UpgradeAvailable, committed.BootCount));
        if (backend != "file")
        {
            Assert.Equal("3", committed.Values["bootlimit"]);
        }
    }

    [Fact]
    public void Missing_or_odd_values_read_as_the_boot_scripts_read_them()
    {
        var odd = BootEnvironment.Parse("eu_slot=c\nupgrade_available=yes\nbootcount=x\nbootlimit=12\n");
        Assert.Equal(("a", false, 0, 3), (odd.Slot, odd.UpgradeAvailable, odd.BootCount, odd.BootLimit));
    }

    [Fact]
    public async Task A_failing_tool_reports_its_exit_code_and_message()
    {
        var bootloader = new UBootBootloader(_directory.Combine("missing-fw_env.config"), _directory.Path);
        var e = await Assert.ThrowsAsync<BootloaderException>(() => bootloader.ReadAsync(TestContext.Current.CancellationToken));
        Assert.Contains("fw_printenv", e.Message, StringComparison.Ordinal);
        Assert.Contains("exited with", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Grub_environment_survives_a_cut_in_the_middle_of_grub_editenv_rewriting_it()
    {
        var grubenv = await CreateGrubEnvironmentAsync();

        // grub-editenv opens its file with O_TRUNC and rewrites it: this one is cut off right after the
        // truncation, as a power cut would. Reads go to the real tool.
        var tools = _directory.Combine("cut-tools");
        Directory.CreateDirectory(tools);
        var tool = Path.Combine(tools, "grub-editenv");
        var script = $"#!/bin/sh\nif [ \"$2\" = set ]; then : > \"$1\"; kill -9 $$; fi\nexec {ToolRunner.Locate(null, "grub-editenv")} \"$@\"\n";
        await File.WriteAllTextAsync(tool, script, TestContext.Current.CancellationToken);
        File.SetUnixFileMode(tool, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var cut = new GrubBootloader(grubenv, tools);

        var e = await Assert.ThrowsAsync<BootloaderException>(() => cut.WriteAsync(BootEnvironment.Trial("b"), TestContext.Current.CancellationToken));
        Assert.Contains("exited with 137", e.Message, StringComparison.Ordinal);

        var after = await new GrubBootloader(grubenv).ReadAsync(TestContext.Current.CancellationToken);
        Assert.Equal(("a", false, "3"), (after.Slot, after.UpgradeAvailable, after.Values["bootlimit"]));
        Assert.Equal(1024, new FileInfo(grubenv).Length);
        Assert.False(File.Exists(cut.PendingFile));
    }

    [Fact]
    public async Task Grub_write_ignores_and_replaces_a_torn_copy_left_by_an_earlier_cut()
    {
        var grubenv = await CreateGrubEnvironmentAsync();
        var bootloader = new GrubBootloader(grubenv);
        var header = (await File.ReadAllBytesAsync(grubenv, TestContext.Current.CancellationToken))[..100];
        await File.WriteAllBytesAsync(bootloader.PendingFile, header, TestContext.Current.CancellationToken);

        var before = await bootloader.ReadAsync(TestContext.Current.CancellationToken);
        Assert.Equal(("a", "3"), (before.Slot, before.Values["bootlimit"]));

        await bootloader.WriteAsync(BootEnvironment.Trial("b"), TestContext.Current.CancellationToken);

        var written = await bootloader.ReadAsync(TestContext.Current.CancellationToken);
        Assert.Equal(("b", true, 0, "3"), (written.Slot, written.UpgradeAvailable, written.BootCount, written.Values["bootlimit"]));
        Assert.Equal(1024, new FileInfo(grubenv).Length);
        Assert.False(File.Exists(bootloader.PendingFile));
    }

    public void Dispose() => _directory.Dispose();

    private async Task<string> CreateGrubEnvironmentAsync()
    {
        var grubenv = _directory.Combine("grubenv");
        await ExternalTool.RunCheckedAsync("grub-editenv", [grubenv, "create"]);
        await ExternalTool.RunCheckedAsync("grub-editenv", [grubenv, "set", "bootlimit=3", "eu_slot=a"]);
        return grubenv;
    }
}
