using EdgeUpdater.Agent.Bootloader;
using EdgeUpdater.Agent.State;
using EdgeUpdater.Agent.Tests.Fixtures;
using EdgeUpdater.Protocol;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Agent.Tests.EndToEnd;

/// <summary>
/// Test 5 of the issue: system targets with a real GRUB env file and a real U-Boot env file, the reboot
/// command replaced by a restart of the agent, and the boot script's counting simulated in between.
/// </summary>
[Trait("requirement", "root")]
public sealed class SystemTargetTests
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(45);

    [Theory]
    [InlineData("grub")]
    [InlineData("uboot")]
    public async Task Trial_boot_that_passes_its_health_check_is_committed(string backend)
    {
        Privileges.RequireRoot("loop mounts to read config.json of the slot images");
        await using var env = await DeviceEnvironment.CreateAsync();
        var boot = await SetUpAsync(env, backend, "exit 0");
        await StartTrialAsync(env, boot);

        Assert.Equal("b", await boot.PowerOnAsync());
        var environment = await boot.Bootloader.ReadAsync(TestContext.Current.CancellationToken);
        Assert.True(environment.UpgradeAvailable);
        Assert.Equal(1, environment.BootCount);
        env.Sandbox.StartAgent();
        var committed = await env.WaitForAsync(s => s.State == UpdateState.Committed, StepTimeout, "committed");

        Assert.Equal("b", committed.Targets[0].ActiveSlot);
        Assert.Equal("2.0.0", committed.Targets[0].Version);
        environment = await boot.Bootloader.ReadAsync(TestContext.Current.CancellationToken);
        Assert.Equal(("b", false, 0), (environment.Slot, environment.UpgradeAvailable, environment.BootCount));
        Assert.Equal("b", env.Sandbox.ReadState().Target("rootfs").CommittedSlot);

        // The host reports started (systemd: READY=1, which boot-complete.target waits for) only after
        // the trial's verdict, so systemd's boot assessment carries it.
        var deadline = DateTime.UtcNow + StepTimeout;
        while (!env.Sandbox.Output.Contains("Agent ready", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        var all = env.Sandbox.Output;
        var output = all[(all.LastIndexOf("--- agent restart ---", StringComparison.Ordinal) + 1)..];
        var verdict = output.IndexOf("committed 2.0.0 in slot b", StringComparison.Ordinal);
        var ready = output.IndexOf("Agent ready", StringComparison.Ordinal);
        Assert.True(verdict >= 0 && ready > verdict, $"expected the commit before 'Agent ready':\n{output}");
    }

    [Theory]
    [InlineData("grub")]
    [InlineData("uboot")]
    public async Task Trial_boot_that_fails_its_health_check_is_rolled_back_and_rebooted(string backend)
    {
        Privileges.RequireRoot("loop mounts to read config.json of the slot images");
        await using var env = await DeviceEnvironment.CreateAsync();
        var boot = await SetUpAsync(env, backend, "exit 1");
        await StartTrialAsync(env, boot);

        Assert.Equal("b", await boot.PowerOnAsync());
        var trialAgent = env.Sandbox.StartAgent();
        var rolledBack = await env.WaitForAsync(s => s.State == UpdateState.RolledBack, StepTimeout, "rolled-back");
        Assert.Contains("health command '/bin/sh -c exit 1'", rolledBack.LastError, StringComparison.Ordinal);
        await boot.WaitForRebootRequestAsync(StepTimeout, () => env.Sandbox.Output);
        var environment = await boot.Bootloader.ReadAsync(TestContext.Current.CancellationToken);
        Assert.Equal(("a", false, 0), (environment.Slot, environment.UpgradeAvailable, environment.BootCount));

        await trialAgent.KillAsync();
        Assert.Equal("a", await boot.PowerOnAsync());
        env.Probe.Clear();
        env.Sandbox.StartAgent();
        var back = await env.WaitForAsync(s => s.State == UpdateState.RolledBack && s.Targets[0].ActiveSlot == "a", StepTimeout, "rolled-back, running slot a");
        Assert.Equal("1.0.0", back.Targets[0].Version);
        var state = env.Sandbox.ReadState().Target("rootfs");
        Assert.Equal(("a", SlotState.Good, SlotState.Bad), (state.CommittedSlot, state.A.State, state.B.State));
    }

    /// <summary>
    /// After a rollback to a, a boot where a cannot be loaded and the boot script boots b instead
    /// (docs/bootloader.md step 6) is reported at once, with the device kept up: it is a later boot than the
    /// rollback's (boot_id) and the environment already names a, so rebooting again would not help. Without a
    /// boot id to tell it from a rollback whose reboot did not happen, start-up reboots twice at most, then
    /// reports: rebooting on every boot would leave the device unreachable.
    /// </summary>
    [Theory]
    [InlineData(true, 0)]
    [InlineData(false, 2)]
    public async Task Boot_fallback_after_a_rollback_is_reported_not_rebooted_on_every_boot(bool bootIdKnown, int reboots)
    {
        Privileges.RequireRoot("loop mounts to read config.json of the slot images");
        await using var env = await DeviceEnvironment.CreateAsync();
        var boot = await SetUpAsync(env, "grub", "exit 1");
        if (!bootIdKnown)
        {
            env.Sandbox.Config = env.Sandbox.Config with { Targets = [env.Sandbox.Config.Targets[0] with { BootId = Path.Combine(boot.Directory, "no-boot-id") }] };
        }

        await FailTrialAsync(env, boot);

        // Slot a does not load: every power-on boots b.
        for (var boots = 0; ; boots++)
        {
            Assert.Equal("a", await boot.PowerOnAsync());
            await File.WriteAllTextAsync(boot.CommandLinePath, "console=ttyS0 root=/dev/ram0 edgeupdater.slot=b quiet\n", TestContext.Current.CancellationToken);
            env.Probe.Clear();
            var agent = env.Sandbox.StartAgent();
            if (boots == reboots)
            {
                break;
            }

            await boot.WaitForRebootRequestAsync(StepTimeout, () => env.Sandbox.Output);
            await agent.KillAsync();
        }

        var reported = await env.WaitForAsync(s => s.LastError?.Contains("could not be loaded", StringComparison.Ordinal) == true, StepTimeout, "the boot fallback reported");

        Assert.Equal(UpdateState.RolledBack, reported.State);
        Assert.False(File.Exists(boot.RebootMarker), "the agent rebooted a device whose committed slot does not load");
        var environment = await boot.Bootloader.ReadAsync(TestContext.Current.CancellationToken);
        Assert.Equal(("a", false), (environment.Slot, environment.UpgradeAvailable));
        Assert.Equal("a", env.Sandbox.ReadState().Target("rootfs").CommittedSlot);
    }

    /// <summary>
    /// The rollback was persisted but the agent was killed before its reboot took effect: restarted in the same
    /// boot (same boot_id), on b, it reboots to finish the rollback.
    /// </summary>
    [Fact]
    public async Task Rollback_whose_reboot_did_not_happen_is_finished_by_a_reboot_in_the_same_boot()
    {
        Privileges.RequireRoot("loop mounts to read config.json of the slot images");
        await using var env = await DeviceEnvironment.CreateAsync();
        var boot = await SetUpAsync(env, "grub", "exit 1");
        await FailTrialAsync(env, boot);

        // No power-on: the reboot never happened, the kernel command line and boot id are this boot's.
        File.Delete(boot.RebootMarker);
        env.Probe.Clear();
        env.Sandbox.StartAgent();
        await boot.WaitForRebootRequestAsync(StepTimeout, () => env.Sandbox.Output);

        var environment = await boot.Bootloader.ReadAsync(TestContext.Current.CancellationToken);
        Assert.Equal(("a", false), (environment.Slot, environment.UpgradeAvailable));
        var target = env.Sandbox.ReadState().Target("rootfs");
        Assert.Equal(("a", 1), (target.CommittedSlot, target.RollbackFinishReboots));
    }

    /// <summary>
    /// A rollout's device notice and its retained group notice arrive together: the second one, handled while
    /// the reboot into the trial is under way, must neither ask for another reboot nor count one as failed
    /// (three such counts roll the update back).
    /// </summary>
    [Fact]
    public async Task The_same_notice_while_the_trial_reboot_is_under_way_is_ignored()
    {
        Privileges.RequireRoot("loop mounts to read config.json of the slot images");
        await using var env = await DeviceEnvironment.CreateAsync();
        var boot = await SetUpAsync(env, "grub", "exit 0");
        env.Sandbox.StartAgent();
        await env.WaitForAsync(s => s.Targets.Any(t => t.Version == "1.0.0"), StepTimeout, "with 1.0.0 running");
        var manifest = env.Sandbox.Publish!(env.Sandbox.NextImage!, "2.0.0");
        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, manifest, target: "rootfs");
        await boot.WaitForRebootRequestAsync(StepTimeout, () => env.Sandbox.Output);
        File.Delete(boot.RebootMarker);

        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, manifest, target: "rootfs");
        // Handled either way: ignored, or judged as a trial whose reboot did not happen.
        await env.WaitUntilAsync(
            () => env.Sandbox.Output.Contains("ignored: the reboot to activate it is under way", StringComparison.Ordinal)
                || env.Sandbox.Output.Contains("(again)", StringComparison.Ordinal),
            StepTimeout,
            "the second notice handled");

        Assert.False(File.Exists(boot.RebootMarker), "the agent asked for a second reboot");
        var target = env.Sandbox.ReadState().Target("rootfs");
        Assert.Equal((UpdateState.Trial, 0), (target.Phase, target.Pending!.TrialReboots));
        var environment = await boot.Bootloader.ReadAsync(TestContext.Current.CancellationToken);
        Assert.Equal(("b", true, 0), (environment.Slot, environment.UpgradeAvailable, environment.BootCount));
    }

    [Fact]
    public async Task Trial_boot_whose_health_command_does_not_exist_is_rolled_back_and_rebooted()
    {
        Privileges.RequireRoot("loop mounts to read config.json of the slot images");
        await using var env = await DeviceEnvironment.CreateAsync();
        var boot = await SetUpAsync(env, "grub", new System.Text.Json.Nodes.JsonArray("/nonexistent/health-probe"));
        await StartTrialAsync(env, boot);

        // Process.Start throws for a missing command; that must fail the trial, not end the agent's start-up.
        Assert.Equal("b", await boot.PowerOnAsync());
        env.Sandbox.StartAgent();
        var rolledBack = await env.WaitForAsync(s => s.State == UpdateState.RolledBack, StepTimeout, "rolled-back");
        Assert.Contains("health command '/nonexistent/health-probe'", rolledBack.LastError, StringComparison.Ordinal);
        Assert.Contains("could not be started", rolledBack.LastError, StringComparison.Ordinal);
        await boot.WaitForRebootRequestAsync(StepTimeout, () => env.Sandbox.Output);
        var environment = await boot.Bootloader.ReadAsync(TestContext.Current.CancellationToken);
        Assert.Equal(("a", false, 0), (environment.Slot, environment.UpgradeAvailable, environment.BootCount));
        var state = env.Sandbox.ReadState().Target("rootfs");
        Assert.Equal(("a", SlotState.Good, SlotState.Bad), (state.CommittedSlot, state.A.State, state.B.State));
    }

    [Theory]
    [InlineData("grub")]
    [InlineData("uboot")]
    public async Task Trial_that_never_reaches_the_agent_is_rolled_back_by_the_boot_counter(string backend)
    {
        Privileges.RequireRoot("loop mounts to read config.json of the slot images");
        await using var env = await DeviceEnvironment.CreateAsync();
        var boot = await SetUpAsync(env, backend, "exit 0");
        await StartTrialAsync(env, boot);

        // Three trial boots hang before the agent starts; the fourth power-on falls back.
        Assert.Equal(["b", "b", "b", "a"], [await boot.PowerOnAsync(), await boot.PowerOnAsync(), await boot.PowerOnAsync(), await boot.PowerOnAsync()]);
        var environment = await boot.Bootloader.ReadAsync(TestContext.Current.CancellationToken);
        Assert.Equal(("a", false, 0), (environment.Slot, environment.UpgradeAvailable, environment.BootCount));

        env.Sandbox.StartAgent();
        var rolledBack = await env.WaitForAsync(s => s.State == UpdateState.RolledBack, StepTimeout, "rolled-back");
        Assert.Contains("boot counter exhausted", rolledBack.LastError, StringComparison.Ordinal);
        Assert.Equal("a", rolledBack.Targets[0].ActiveSlot);
        var state = env.Sandbox.ReadState().Target("rootfs");
        Assert.Equal(("a", SlotState.Bad), (state.CommittedSlot, state.B.State));
    }

    [Fact]
    public async Task Notice_while_running_the_fallback_slot_is_abandoned_with_the_reason()
    {
        Privileges.RequireRoot("loop mounts to read config.json of the slot images");
        await using var env = await DeviceEnvironment.CreateAsync();
        var boot = await SetUpAsync(env, "grub", "exit 0");
        var agent = env.Sandbox.StartAgent();
        await env.WaitForAsync(s => s.Targets.Any(t => t.Version == "1.0.0"), StepTimeout, "with 1.0.0 running");
        await agent.KillAsync();

        // docs/bootloader.md step 6: slot a could not be loaded, the boot script booted b for this boot.
        await File.WriteAllTextAsync(boot.CommandLinePath, "console=ttyS0 root=/dev/ram0 edgeupdater.slot=b quiet\n", TestContext.Current.CancellationToken);
        env.Probe.Clear();
        env.Sandbox.StartAgent();
        await env.WaitForAsync(s => s.LastError?.Contains("could not be loaded", StringComparison.Ordinal) == true, StepTimeout, "the boot fallback reported");

        // The update would write slot b, the one running now.
        var manifest = env.Sandbox.Publish!(env.Sandbox.NextImage!, "2.0.0");
        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, manifest, target: "rootfs");
        var failed = await env.WaitForAsync(s => s.State == UpdateState.Failed, StepTimeout, "failed");

        Assert.Contains("refusing to write slot b: it is the running slot", failed.LastError, StringComparison.Ordinal);
        var state = env.Sandbox.ReadState().Target("rootfs");
        Assert.Equal((UpdateState.Failed, "a"), (state.Phase, state.CommittedSlot));
        Assert.Null(state.Pending);
        Assert.DoesNotContain(manifest.Sha256, state.RejectedManifests);
        Assert.False(File.Exists(boot.RebootMarker));
        var environment = await boot.Bootloader.ReadAsync(TestContext.Current.CancellationToken);
        Assert.Equal(("a", false), (environment.Slot, environment.UpgradeAvailable));
    }

    private static Task<SimulatedBootloader> SetUpAsync(DeviceEnvironment env, string backend, string healthExit) =>
        SetUpAsync(env, backend, new System.Text.Json.Nodes.JsonArray("/bin/sh", "-c", healthExit));

    private static async Task<SimulatedBootloader> SetUpAsync(DeviceEnvironment env, string backend, System.Text.Json.Nodes.JsonArray healthCommand)
    {
        var boot = await SimulatedBootloader.CreateAsync(Path.Combine(env.Sandbox.Root, "boot"), backend);
        var target = boot.Target(env.Sandbox.SlotsDirectory);
        env.Sandbox.Config = env.Sandbox.Config with { Targets = [target] };
        var health = new System.Text.Json.Nodes.JsonObject
        {
            ["type"] = "command",
            ["command"] = healthCommand,
            ["intervalSeconds"] = 1,
            ["deadlineSeconds"] = 2,
        };
        var v1 = await TestImages.BuildAsync(env.Sandbox.ImagesDirectory, new TestImageOptions { Version = "1.0.0", Kind = "system", HealthCheck = health });
        var v2 = await TestImages.BuildAsync(env.Sandbox.ImagesDirectory, new TestImageOptions { Version = "2.0.0", Kind = "system", HealthCheck = health });
        File.Copy(v1, target.Slots!.A!);
        env.Sandbox.Publish = (image, version) =>
        {
            var manifest = env.Signer.Sign(image, version, kind: "system", target: "rootfs");
            env.Server.AddRelease(manifest, image);
            return manifest;
        };
        env.Sandbox.NextImage = v2;
        return boot;
    }

    /// <summary>Agent on slot a receives the notice, writes slot b, arms the trial and asks for a reboot; the reboot kills it.</summary>
    /// <summary>A trial of 2.0.0 that fails its health check on slot b: rolled back, the reboot asked for, the agent gone.</summary>
    private static async Task FailTrialAsync(DeviceEnvironment env, SimulatedBootloader boot)
    {
        await StartTrialAsync(env, boot);
        Assert.Equal("b", await boot.PowerOnAsync());
        var trialAgent = env.Sandbox.StartAgent();
        await env.WaitForAsync(s => s.State == UpdateState.RolledBack, StepTimeout, "rolled-back");
        await boot.WaitForRebootRequestAsync(StepTimeout, () => env.Sandbox.Output);
        await trialAgent.KillAsync();
    }

    private static async Task StartTrialAsync(DeviceEnvironment env, SimulatedBootloader boot)
    {
        var agent = env.Sandbox.StartAgent();
        await env.WaitForAsync(s => s.Targets.Any(t => t.Version == "1.0.0"), StepTimeout, "with 1.0.0 running");
        var manifest = env.Sandbox.Publish!(env.Sandbox.NextImage!, "2.0.0");
        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, manifest, target: "rootfs");
        await boot.WaitForRebootRequestAsync(StepTimeout, () => env.Sandbox.Output);
        var environment = await boot.Bootloader.ReadAsync();
        Assert.Equal(("b", true, 0), (environment.Slot, environment.UpgradeAvailable, environment.BootCount));
        Assert.Equal(UpdateState.Trial, env.Sandbox.ReadState().Target("rootfs").Phase);
        await agent.KillAsync();
        env.Probe.Clear();
    }
}
