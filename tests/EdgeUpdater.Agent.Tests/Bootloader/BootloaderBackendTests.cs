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

    public void Dispose() => _directory.Dispose();
}
