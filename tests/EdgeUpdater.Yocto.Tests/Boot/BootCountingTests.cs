using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Yocto.Tests.Boot;

/// <summary>
/// The A/B boot counting of docs/bootloader.md, run for both boot scripts of the layer (U-Boot
/// boot.scr, GRUB grub.cfg) over sequences of power-ons, with the environment in real storage
/// (fw_setenv/grub-editenv files) and the agent's writes between boots, made either as
/// docs/bootloader.md specifies them ("contract") or by the agent's own backends ("agent"). Each step
/// checks the slot the bootloader chose, what it left in the environment and, for the agent's
/// backends, how the agent reads that environment back.
/// </summary>
public sealed class BootCountingTests : IClassFixture<SlotImagesFixture>, IDisposable
{
    private readonly SlotImagesFixture _slots;
    private readonly TempDirectory _directory = new("yocto-boot");

    public BootCountingTests(SlotImagesFixture slots)
    {
        _slots = slots;
    }

    public static TheoryData<string> Bootloaders => new() { "uboot", "grub" };

    public static TheoryData<string, string> BootloadersAndAgents => new()
    {
        { "uboot", "contract" },
        { "uboot", "agent" },
        { "grub", "contract" },
        { "grub", "agent" },
    };

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public void Dispose() => _directory.Dispose();

    [Theory]
    [MemberData(nameof(Bootloaders))]
    public async Task Committed_slot_boots_every_time_without_writing_the_environment(string bootloader)
    {
        var rig = await CommittedRigAsync(bootloader, "contract", "a");
        for (var boot = 0; boot < 3; boot++)
        {
            var attempt = await rig.PowerOnAsync(Token);
            AssertBooted(attempt, "a");
            Assert.Equal(0, attempt.Saves);
        }

        await AssertEnvironmentAsync(rig, slot: "a", upgradeAvailable: "0", bootcount: "0");
    }

    [Theory]
    [MemberData(nameof(BootloadersAndAgents))]
    public async Task Trial_boot_that_the_agent_commits_stays_on_the_new_slot(string bootloader, string agent)
    {
        var rig = await CommittedRigAsync(bootloader, agent, "a");
        await rig.Agent.ActivateAsync("b", Token);

        var trial = await rig.PowerOnAsync(Token);
        AssertBooted(trial, "b");
        await AssertEnvironmentAsync(rig, slot: "b", upgradeAvailable: "1", bootcount: "1");

        await rig.Agent.CommitAsync("b", Token);
        for (var boot = 0; boot < 2; boot++)
        {
            var attempt = await rig.PowerOnAsync(Token);
            AssertBooted(attempt, "b");
            Assert.Equal(0, attempt.Saves);
        }

        await AssertEnvironmentAsync(rig, slot: "b", upgradeAvailable: "0", bootcount: "0");
    }

    [Theory]
    [MemberData(nameof(BootloadersAndAgents))]
    public async Task Trial_boot_failing_its_health_check_is_rolled_back_by_the_agent(string bootloader, string agent)
    {
        var rig = await CommittedRigAsync(bootloader, agent, "a");
        await rig.Agent.ActivateAsync("b", Token);
        AssertBooted(await rig.PowerOnAsync(Token), "b");

        await rig.Agent.RollbackAsync("a", Token);
        AssertBooted(await rig.PowerOnAsync(Token), "a");
        await AssertEnvironmentAsync(rig, slot: "a", upgradeAvailable: "0", bootcount: "0");
    }

    [Theory]
    [MemberData(nameof(BootloadersAndAgents))]
    public async Task Trial_that_never_reaches_the_agent_falls_back_when_the_counter_is_exhausted(string bootloader, string agent)
    {
        var rig = await CommittedRigAsync(bootloader, agent, "a");
        await rig.Agent.ActivateAsync("b", Token);

        // bootlimit 3: three trial boots of b (the new system hangs or crashes before the agent
        // commits), then the fourth power-on goes back to a for good.
        for (var trial = 1; trial <= 3; trial++)
        {
            AssertBooted(await rig.PowerOnAsync(Token), "b");
            await AssertEnvironmentAsync(rig, slot: "b", upgradeAvailable: "1", bootcount: trial.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        var fallback = await rig.PowerOnAsync(Token);
        AssertBooted(fallback, "a");
        Assert.Contains(fallback.Output, line => line.Contains("falling back", StringComparison.Ordinal));
        await AssertEnvironmentAsync(rig, slot: "a", upgradeAvailable: "0", bootcount: "0");

        // The fallback is permanent: a stays the default.
        var after = await rig.PowerOnAsync(Token);
        AssertBooted(after, "a");
        Assert.Equal(0, after.Saves);
    }

    [Theory]
    [MemberData(nameof(BootloadersAndAgents))]
    public async Task Bootlimit_from_the_environment_sets_the_number_of_trial_boots(string bootloader, string agent)
    {
        var rig = await CommittedRigAsync(bootloader, agent, "b");
        await rig.SetVariablesAsync(new Dictionary<string, string> { ["bootlimit"] = "1" }, Token);
        await rig.Agent.ActivateAsync("a", Token);

        AssertBooted(await rig.PowerOnAsync(Token), "a");
        AssertBooted(await rig.PowerOnAsync(Token), "b");
        await AssertEnvironmentAsync(rig, slot: "b", upgradeAvailable: "0", bootcount: "0", bootlimit: 1);
    }

    [Theory]
    [MemberData(nameof(BootloadersAndAgents))]
    public async Task Trial_slot_whose_kernel_cannot_be_loaded_falls_back_in_the_same_boot(string bootloader, string agent)
    {
        var rig = await CommittedRigAsync(bootloader, agent, "a");
        rig.SetSlotImage("b", _slots.Broken);
        await rig.Agent.ActivateAsync("b", Token);

        // boot.scr tries the other slot at once (second pass), grub.cfg through its fallback entry;
        // both make the fallback permanent, as if the trial boots were used up.
        var attempt = await rig.PowerOnAsync(Token);
        AssertBooted(attempt, "a");
        await AssertEnvironmentAsync(rig, slot: "a", upgradeAvailable: "0", bootcount: "0");
    }

    [Theory]
    [MemberData(nameof(Bootloaders))]
    public async Task Environment_without_any_EdgeUpdater_variable_boots_slot_a(string bootloader)
    {
        var rig = bootloader == "uboot"
            ? (IBootRig)await UBootRig.CreateAsync(_directory.Path, UBootRig.BoardDefaults, _slots, Token)
            : await GrubRig.CreateAsync(_directory.Path, new Dictionary<string, string>(), _slots, Token);

        var attempt = await rig.PowerOnAsync(Token);
        AssertBooted(attempt, "a");
        Assert.Equal(0, attempt.Saves);
    }

    [Theory]
    [MemberData(nameof(Bootloaders))]
    public async Task Garbage_in_eu_slot_boots_slot_a(string bootloader)
    {
        var rig = await CommittedRigAsync(bootloader, "contract", "a");
        await rig.SetVariablesAsync(new Dictionary<string, string> { ["eu_slot"] = "c" }, Token);
        AssertBooted(await rig.PowerOnAsync(Token), "a");
    }

    [Theory]
    [MemberData(nameof(Bootloaders))]
    public async Task Committed_slot_that_cannot_be_loaded_boots_the_other_slot_for_that_boot_only(string bootloader)
    {
        var rig = await CommittedRigAsync(bootloader, "contract", "a");
        rig.SetSlotImage("a", null);

        var attempt = await rig.PowerOnAsync(Token);
        AssertBooted(attempt, "b");
        Assert.Equal(0, attempt.Saves);
        // Nothing was on trial, so nothing is made permanent: the agent sees eu_slot=a while b runs.
        await AssertEnvironmentAsync(rig, slot: "a", upgradeAvailable: "0", bootcount: "0");
    }

    private async Task<IBootRig> CommittedRigAsync(string bootloader, string agent, string slot)
    {
        var rig = await CommittedRigAsync(bootloader, slot);
        if (agent == "agent")
        {
            rig.Agent = rig switch
            {
                UBootRig uboot => AgentBackendSide.ForUBoot(uboot.Environment.ConfigPath, _directory.Combine("agent-scratch")),
                GrubRig grub => AgentBackendSide.ForGrub(grub.Environment.Path),
                _ => throw new InvalidOperationException(),
            };
        }

        return rig;
    }

    private async Task<IBootRig> CommittedRigAsync(string bootloader, string slot)
    {
        var contract = new Dictionary<string, string>
        {
            ["eu_slot"] = slot,
            ["upgrade_available"] = "0",
            ["bootcount"] = "0",
            ["bootlimit"] = "3",
        };
        if (bootloader == "uboot")
        {
            return await UBootRig.CreateAsync(
                _directory.Path,
                new Dictionary<string, string>(UBootRig.BoardDefaults.Concat(contract)),
                _slots,
                Token);
        }

        // Slot a committed is what the recipe deploys; other starting points are written with grub-editenv.
        return slot == "a"
            ? await GrubRig.CreateAsync(_directory.Path, stored: null, _slots, Token)
            : await GrubRig.CreateAsync(_directory.Path, contract, _slots, Token);
    }

    private static void AssertBooted(BootAttempt attempt, string slot)
    {
        Assert.True(attempt.Kernel is not null, "nothing was booted: " + attempt.Describe());
        Assert.True(slot == attempt.Kernel!.Slot, $"slot {slot} expected: " + attempt.Describe());
        var partitionSuffix = slot == "a" ? "2" : "3";
        Assert.EndsWith(partitionSuffix, attempt.Kernel.Partition, StringComparison.Ordinal);
        Assert.StartsWith("/root/boot/", attempt.Kernel.Kernel, StringComparison.Ordinal);
        Assert.Equal("/root/boot/edgeupdater-initramfs.cpio.gz", attempt.Kernel.Initramfs);
    }

    private static async Task AssertEnvironmentAsync(IBootRig rig, string slot, string upgradeAvailable, string bootcount, int bootlimit = 3)
    {
        var environment = await rig.ReadEnvironmentAsync(Token);
        var actual = $"eu_slot={environment.GetValueOrDefault("eu_slot")} upgrade_available={environment.GetValueOrDefault("upgrade_available")} bootcount={environment.GetValueOrDefault("bootcount")}";
        Assert.Equal($"eu_slot={slot} upgrade_available={upgradeAvailable} bootcount={bootcount}", actual);
        if (rig.Agent is AgentBackendSide agent)
        {
            // What the boot script wrote, as the agent reads it (decimal, the same names).
            var view = await agent.ReadAsync(Token);
            Assert.Equal((slot, upgradeAvailable == "1", int.Parse(bootcount, System.Globalization.CultureInfo.InvariantCulture), bootlimit), (view.Slot, view.UpgradeAvailable, view.BootCount, view.BootLimit));
        }
    }
}
