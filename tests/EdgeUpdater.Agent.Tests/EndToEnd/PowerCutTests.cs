using EdgeUpdater.Agent.State;
using EdgeUpdater.Agent.Tests.Fixtures;
using EdgeUpdater.Protocol;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Agent.Tests.EndToEnd;

/// <summary>
/// Test 3 of the issue: for every persisted state of an update, the agent is SIGKILLed right after
/// writing it (EDGEUPDATER_FAULT_KILL_AFTER), restarted, and must end committed or rolled back with
/// consistent slots and the right image hashes.
/// </summary>
[Trait("requirement", "root")]
public sealed class PowerCutTests
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(45);

    [Theory]
    [InlineData("verifying")]
    [InlineData("downloading")]
    [InlineData("download-progress")]
    [InlineData("installing")]
    [InlineData("installed")]
    [InlineData("trial")]
    [InlineData("committed")]
    public async Task Killed_after_persisting_a_state_resumes_to_committed(string checkpoint)
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await DeviceEnvironment.CreateAsync();

        // 5 MB of filler makes the download cross the 4 MiB progress checkpoint.
        var (v1, v2) = await env.BuildPairAsync(v2Filler: 5 * 1024 * 1024);
        env.Sandbox.Provision(v1);
        var manifest = env.Publish(v2, "2.0.0");
        await RunUntilKilledAsync(env, checkpoint, manifest);

        env.Sandbox.StartAgent();
        await env.WaitForAsync(s => s.State == UpdateState.Committed && s.Targets[0].ActiveSlot == "b", StepTimeout, "committed on slot b after the restart");

        var target = env.Sandbox.ReadState().Target("app");
        Assert.Equal("b", target.CommittedSlot);
        Assert.Null(target.Pending);
        Assert.Equal(SlotState.Good, target.A.State);
        Assert.Equal(SlotState.Good, target.B.State);
        Assert.Equal(manifest.ImageSha256, target.B.ImageSha256);
        Assert.Equal(manifest.ImageSha256, await Sha256Async(env.Sandbox.SlotPath("b")));
        Assert.Equal(target.A.ImageSha256, await Sha256Async(env.Sandbox.SlotPath("a")));
        Assert.Equal("2.0.0", await env.WaitForServedVersionAsync("2.0.0"));
    }

    [Theory]
    [InlineData("trial")]
    [InlineData("rolled-back")]
    public async Task Killed_during_a_failing_trial_ends_rolled_back_on_the_old_slot(string checkpoint)
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await DeviceEnvironment.CreateAsync();
        var (v1, v2) = await env.BuildPairAsync(v2Health: TestImages.FailingCommandHealth(deadlineSeconds: 2));
        env.Sandbox.Provision(v1);
        var manifest = env.Publish(v2, "2.0.0");
        await RunUntilKilledAsync(env, checkpoint, manifest);

        env.Sandbox.StartAgent();
        await env.WaitForAsync(s => s.State == UpdateState.RolledBack && s.Targets[0].ActiveSlot == "a", StepTimeout, "rolled back to slot a after the restart");

        var target = env.Sandbox.ReadState().Target("app");
        Assert.Equal("a", target.CommittedSlot);
        Assert.Null(target.Pending);
        Assert.Equal(SlotState.Good, target.A.State);
        Assert.Equal(SlotState.Bad, target.B.State);
        Assert.Equal(target.A.ImageSha256, await Sha256Async(env.Sandbox.SlotPath("a")));
        Assert.Equal("1.0.0", await env.WaitForServedVersionAsync("1.0.0"));
    }

    [Fact]
    public async Task Killed_during_the_delta_apply_resumes_from_its_checkpoint_and_commits()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");

        // 1 MiB checkpoints and 5 MiB of new content (several delta sections): the apply checkpoints more than once.
        await using var env = await DeviceEnvironment.CreateAsync(s =>
        {
            s.Config = s.Config with { Download = s.Config.Download with { DeltaCheckpointBytes = 1024 * 1024 } };
            return s;
        });
        var (v1, v2) = await env.BuildPairAsync(v2Filler: 5 * 1024 * 1024, sharedFiller: 2 * 1024 * 1024);
        await env.PublishDeltaAsync(v1, v2);
        env.Sandbox.Provision(v1);
        var manifest = env.Publish(v2, "2.0.0");
        await RunUntilKilledAsync(env, "apply-progress", manifest);
        var killed = env.Sandbox.ReadState().Target("app");

        // The apply runs as the delta downloads: over loopback the download may or may not have ended by then.
        Assert.True(killed.Phase is UpdateState.Downloading or UpdateState.Installing, killed.Phase.ToString());
        Assert.True(killed.Pending!.ApplyOffset > 0);
        Assert.True(File.Exists(Path.Combine(env.Sandbox.StateDirectory, "targets", "app", "apply.checkpoint")));

        env.Sandbox.StartAgent();
        await env.WaitForAsync(s => s.State == UpdateState.Committed && s.Targets[0].ActiveSlot == "b", StepTimeout, "committed on slot b after the restart");

        // Resumed, not restarted: from the checkpoint, with the delta downloaded once and no full image.
        var resumed = System.Text.RegularExpressions.Regex.Match(env.Sandbox.Output, @"delta apply resumed from its checkpoint at byte (\d+) of (\d+)");
        Assert.True(resumed.Success, env.Sandbox.Output);
        Assert.InRange(long.Parse(resumed.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), 1, manifest.ImageSize - 1);
        var deltaRequests = env.Server.Requests.Where(r => r.Contains("/v1/deltas/", StringComparison.Ordinal)).ToList();
        if (killed.Phase == UpdateState.Downloading)
        {
            // The download resumed too, where its own checkpoint was: a range request, never from byte 0 again.
            Assert.Equal(2, deltaRequests.Count);
            if (killed.Pending.DownloadOffset > 0)
            {
                Assert.Matches($@"bytes={killed.Pending.DownloadOffset}- if-range=", deltaRequests[1]);
            }
            else
            {
                Assert.DoesNotContain("bytes=", deltaRequests[1], StringComparison.Ordinal);
            }
        }
        else
        {
            Assert.Single(deltaRequests);
        }

        Assert.DoesNotContain(env.Server.Requests, r => r.Contains("/v1/images/", StringComparison.Ordinal));

        var target = env.Sandbox.ReadState().Target("app");
        Assert.Equal("b", target.CommittedSlot);
        Assert.Equal(manifest.ImageSha256, target.B.ImageSha256);
        Assert.Equal(manifest.ImageSha256, await Sha256Async(env.Sandbox.SlotPath("b")));
        Assert.Equal(target.A.ImageSha256, await Sha256Async(env.Sandbox.SlotPath("a")));
        Assert.Equal("2.0.0", await env.WaitForServedVersionAsync("2.0.0"));
    }

    [Fact]
    public async Task Killed_after_persisting_installed_from_a_delta_commits_and_deletes_the_left_over_delta()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await DeviceEnvironment.CreateAsync();
        var (v1, v2) = await env.BuildPairAsync(v2Filler: 1024 * 1024);
        await env.PublishDeltaAsync(v1, v2);
        env.Sandbox.Provision(v1);
        var manifest = env.Publish(v2, "2.0.0");
        await RunUntilKilledAsync(env, "installed", manifest);

        // The delta goes only after "installed" is durable: had it gone first, a cut in between would
        // leave "installing" with no delta to apply again, and the verified slot would be abandoned.
        var deltaPath = Path.Combine(env.Sandbox.StateDirectory, "targets", "app", "download.delta");
        var killed = env.Sandbox.ReadState().Target("app");
        Assert.Equal(UpdateState.Installed, killed.Phase);
        Assert.NotNull(killed.Pending!.DeltaBaseSha256);
        Assert.True(File.Exists(deltaPath), "the delta was deleted before the installed state was persisted");

        env.Sandbox.StartAgent();
        await env.WaitForAsync(s => s.State == UpdateState.Committed && s.Targets[0].ActiveSlot == "b", StepTimeout, "committed on slot b after the restart");

        Assert.False(File.Exists(deltaPath), "the delta left by the cut was not deleted");
        Assert.False(File.Exists(Path.Combine(env.Sandbox.StateDirectory, "targets", "app", "apply.checkpoint")));
        Assert.Single(env.Server.Requests, r => r.Contains("/v1/deltas/", StringComparison.Ordinal));
        Assert.DoesNotContain(env.Server.Requests, r => r.Contains("/v1/images/", StringComparison.Ordinal));
        var target = env.Sandbox.ReadState().Target("app");
        Assert.Equal(("b", SlotState.Good), (target.CommittedSlot, target.B.State));
        Assert.Equal(manifest.ImageSha256, await Sha256Async(env.Sandbox.SlotPath("b")));
        Assert.Equal("2.0.0", await env.WaitForServedVersionAsync("2.0.0"));
    }

    private static async Task RunUntilKilledAsync(DeviceEnvironment env, string checkpoint, SignedManifest manifest)
    {
        var agent = env.Sandbox.StartAgent(new Dictionary<string, string> { ["EDGEUPDATER_FAULT_KILL_AFTER"] = checkpoint });
        await env.WaitForAsync(s => s.Targets.Any(t => t.Version == "1.0.0"), StepTimeout, "with 1.0.0 running");
        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, manifest);
        await agent.WaitForExitAsync(StepTimeout);
        Assert.Equal(137, agent.ExitCode);
        env.Probe.Clear();
    }

    private static async Task<string> Sha256Async(string path)
    {
        await using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(await System.Security.Cryptography.SHA256.HashDataAsync(stream));
    }
}
