using EdgeUpdater.Agent.State;
using EdgeUpdater.Agent.Tests.Fixtures;
using EdgeUpdater.Protocol;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Agent.Tests.EndToEnd;

/// <summary>App targets end to end: real mosquitto, real HTTP on loopback, real loop/squashfs/overlay mounts, the agent as its own process.</summary>
[Trait("requirement", "root")]
public sealed class AppUpdateTests
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Notice_over_mqtt_installs_new_image_and_commits_with_new_workload_running()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await DeviceEnvironment.CreateAsync();
        var (v1, v2) = await env.BuildPairAsync();
        env.Sandbox.Provision(v1);
        var agent = env.Sandbox.StartAgent();
        await env.WaitForAsync(s => s.DeviceId == env.Sandbox.DeviceId && s.Targets.Any(t => t.Version == "1.0.0"), StepTimeout, "with 1.0.0 running");
        Assert.Equal("1.0.0", await env.WaitForServedVersionAsync("1.0.0"));

        var manifest = env.Publish(v2, "2.0.0");
        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, manifest);
        var committed = await env.WaitForAsync(s => s.State == UpdateState.Committed, StepTimeout, "committed");

        Assert.Equal("rollout-2.0.0", committed.RolloutId);
        var target = Assert.Single(committed.Targets);
        Assert.Equal("b", target.ActiveSlot);
        Assert.Equal("2.0.0", target.Version);
        Assert.Equal(manifest.ImageSha256, target.ImageSha256);
        Assert.Equal("2.0.0", await env.WaitForServedVersionAsync("2.0.0"));
        // MQTT carries the latest status (a busy publisher skips intermediate ones), in pipeline order;
        // the state file's history has every transition.
        UpdateState[] pipeline = [UpdateState.Verifying, UpdateState.Downloading, UpdateState.Installing, UpdateState.Installed, UpdateState.Trial, UpdateState.Committed];
        var seen = env.Probe.Statuses.Select(s => s.State).SkipWhile(s => s != UpdateState.Verifying).Distinct().ToList();
        Assert.Equal(seen.OrderBy(s => Array.IndexOf(pipeline, s)), seen);
        Assert.Subset(pipeline.ToHashSet(), seen.ToHashSet());
        Assert.Equal(UpdateState.Committed, seen[^1]);
        var events = env.Sandbox.ReadState().History.Select(h => h.Event).SkipWhile(e => e != UpdateState.Verifying).ToList();
        Assert.Equal([UpdateState.Verifying, UpdateState.Downloading, UpdateState.Installed, UpdateState.Trial, UpdateState.Committed], events);

        // The workload ran as the image's user 'app' (uid 1000), and its /data volume outlived the update.
        var boots = await File.ReadAllLinesAsync(Path.Combine(env.Sandbox.DataDirectory, "app", "data", "boots"), TestContext.Current.CancellationToken);
        Assert.Equal(["1.0.0 1000", "2.0.0 1000"], boots);

        var state = env.Sandbox.ReadState().Target("app");
        Assert.Equal("b", state.CommittedSlot);
        Assert.Equal(SlotState.Good, state.B.State);
        Assert.Equal(SlotState.Good, state.A.State);
        Assert.Null(state.Pending);
        Assert.False(agent.HasExited, agent.Output);
    }

    [Fact]
    public async Task Failing_health_command_rolls_back_to_the_old_workload_with_the_reason()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await DeviceEnvironment.CreateAsync();
        var (v1, v2) = await env.BuildPairAsync(v2Health: TestImages.FailingCommandHealth());
        env.Sandbox.Provision(v1);
        env.Sandbox.StartAgent();
        await env.WaitForAsync(s => s.Targets.Any(t => t.Version == "1.0.0"), StepTimeout, "with 1.0.0 running");

        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, env.Publish(v2, "2.0.0"));
        var rolledBack = await env.WaitForAsync(s => s.State == UpdateState.RolledBack, StepTimeout, "rolled-back");

        Assert.True(rolledBack.LastError?.Contains("health command '/bin/sh -c exit 1' failed 3 time(s) in a row (last: exit code 1)", StringComparison.Ordinal), rolledBack.LastError + "\n" + env.Sandbox.Output);
        await env.WaitForAsync(s => s.State == UpdateState.RolledBack && s.Targets[0].ActiveSlot == "a", StepTimeout, "rolled back and running slot a");
        Assert.Equal("1.0.0", await env.WaitForServedVersionAsync("1.0.0"));
        var state = env.Sandbox.ReadState().Target("app");
        Assert.Equal("a", state.CommittedSlot);
        Assert.Equal(SlotState.Bad, state.B.State);
        Assert.Equal(SlotState.Good, state.A.State);
    }

    [Fact]
    public async Task Http_probe_that_never_answers_rolls_back()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await DeviceEnvironment.CreateAsync();
        var silentPort = FreePort.Next();
        var (v1, v2) = await env.BuildPairAsync(v2Health: new System.Text.Json.Nodes.JsonObject
        {
            ["type"] = "http",
            ["url"] = $"http://127.0.0.1:{silentPort}/",
            ["retries"] = 100,
            ["intervalSeconds"] = 1,
            ["timeoutSeconds"] = 1,
            ["deadlineSeconds"] = 3,
        });
        env.Sandbox.Provision(v1);
        env.Sandbox.StartAgent();
        await env.WaitForAsync(s => s.Targets.Any(t => t.Version == "1.0.0"), StepTimeout, "with 1.0.0 running");

        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, env.Publish(v2, "2.0.0"));
        var rolledBack = await env.WaitForAsync(s => s.State == UpdateState.RolledBack, StepTimeout, "rolled-back");

        Assert.True(rolledBack.LastError?.Contains($"HTTP probe http://127.0.0.1:{silentPort}/ did not pass within 3 s", StringComparison.Ordinal), env.Sandbox.Output);
        await env.WaitForAsync(s => s.Targets[0].ActiveSlot == "a" && s.State == UpdateState.RolledBack, StepTimeout, "running slot a again");
        Assert.Equal("1.0.0", await env.WaitForServedVersionAsync("1.0.0"));
    }
}
