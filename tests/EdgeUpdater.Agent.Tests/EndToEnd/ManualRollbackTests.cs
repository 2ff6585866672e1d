using EdgeUpdater.Agent.State;
using EdgeUpdater.Agent.Tests.Fixtures;
using EdgeUpdater.Protocol;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Agent.Tests.EndToEnd;

/// <summary>An operator's rollback command over MQTT after a committed update: acted on once, and it sticks.</summary>
[Trait("requirement", "root")]
public sealed class ManualRollbackTests
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(45);

    [Fact]
    public async Task Rollback_command_delivered_twice_rolls_back_once()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await DeviceEnvironment.CreateAsync();
        await CommitV2Async(env);

        await env.Probe.PublishCommandAsync(env.Sandbox.DeviceId, DeviceCommandKind.Rollback, "cmd-rollback-1");
        await env.WaitForAsync(s => s.State == UpdateState.RolledBack && s.Targets[0].ActiveSlot == "a", StepTimeout, "rolled back to slot a");
        Assert.Equal("1.0.0", await env.WaitForServedVersionAsync("1.0.0"));

        // QoS 1 redelivers the same command: it must not roll back again onto 2.0.0.
        await env.Probe.PublishCommandAsync(env.Sandbox.DeviceId, DeviceCommandKind.Rollback, "cmd-rollback-1");
        await WaitUntilAsync(
            () => env.Sandbox.Output.Contains("rollback command cmd-rollback-1 was already handled", StringComparison.Ordinal)
                || env.Sandbox.ReadState().Target("app").CommittedSlot == "b",
            "the redelivered command handled",
            env);

        var state = env.Sandbox.ReadState().Target("app");
        Assert.Equal("a", state.CommittedSlot);
        Assert.Equal("1.0.0", await env.WaitForServedVersionAsync("1.0.0"));
        Assert.Single(env.Sandbox.ReadState().History, h => h.Event == UpdateState.RolledBack);
    }

    [Fact]
    public async Task Rollback_command_refuses_the_release_it_leaves_so_its_retained_notice_does_not_reinstall_it()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await DeviceEnvironment.CreateAsync();
        var manifest = await CommitV2Async(env);

        await env.Probe.PublishCommandAsync(env.Sandbox.DeviceId, DeviceCommandKind.Rollback, "cmd-rollback-2");
        await env.WaitForAsync(s => s.State == UpdateState.RolledBack && s.Targets[0].ActiveSlot == "a", StepTimeout, "rolled back to slot a");
        Assert.Contains(manifest.Sha256, env.Sandbox.ReadState().Target("app").RejectedManifests);

        // The group's retained notice still names 2.0.0; it arrives again at every (re)subscription.
        env.Probe.Clear();
        await env.Probe.PublishGroupNoticeAsync(env.Sandbox.Config.Group!, manifest);
        await WaitUntilAsync(
            () => env.Sandbox.Output.Contains($"notice for manifest {manifest.Sha256} ignored", StringComparison.Ordinal)
                || env.Probe.Statuses.Any(s => s.State == UpdateState.Verifying),
            "the retained notice handled",
            env);

        Assert.DoesNotContain(env.Probe.Statuses, s => s.State == UpdateState.Verifying);
        var state = env.Sandbox.ReadState().Target("app");
        Assert.Equal(("a", UpdateState.RolledBack), (state.CommittedSlot, state.Phase));
        Assert.Equal("1.0.0", await env.WaitForServedVersionAsync("1.0.0"));
    }

    /// <summary>Agent on 1.0.0 in slot a updates to 2.0.0 in slot b over MQTT; returns 2.0.0's manifest.</summary>
    private static async Task<SignedManifest> CommitV2Async(DeviceEnvironment env)
    {
        var (v1, v2) = await env.BuildPairAsync();
        env.Sandbox.Provision(v1);
        env.Sandbox.StartAgent();
        await env.WaitForAsync(s => s.Targets.Any(t => t.Version == "1.0.0"), StepTimeout, "with 1.0.0 running");
        var manifest = env.Publish(v2, "2.0.0");
        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, manifest);
        await env.WaitForAsync(s => s.State == UpdateState.Committed && s.Targets[0].ActiveSlot == "b", StepTimeout, "2.0.0 committed");
        Assert.Equal("2.0.0", await env.WaitForServedVersionAsync("2.0.0"));
        env.Probe.Clear();
        return manifest;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what, DeviceEnvironment env)
    {
        await env.WaitUntilAsync(condition, StepTimeout, what);

        // Let a rollback that the condition saw start finish its persist and restart.
        await Task.Delay(500, TestContext.Current.CancellationToken);
    }
}
