using EdgeUpdater.Agent.Config;
using EdgeUpdater.Agent.State;
using EdgeUpdater.Agent.Tests.Fixtures;
using EdgeUpdater.Protocol;
using EdgeUpdater.Testing;
using EdgeUpdater.Trust.Keys;
using Xunit;

namespace EdgeUpdater.Agent.Tests.EndToEnd;

/// <summary>
/// Test 4 of the issue: bad signature, downgrade, corrupt download, disk full, broker restart
/// mid-download, server down and dropped connections. Each is refused or retried as docs/agent.md says,
/// and the running slot is never touched.
/// </summary>
[Trait("requirement", "root")]
public sealed class FaultTests
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(45);

    [Fact]
    public async Task Manifest_signed_by_an_unknown_key_is_refused_before_any_download()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await DeviceEnvironment.CreateAsync();
        var (v1, v2) = await env.BuildPairAsync();
        using var stranger = SigningKey.Generate();
        var manifest = env.Signer.Sign(v2, "2.0.0", signWith: stranger);
        env.Server.AddRelease(manifest, v2);
        await StartOnV1Async(env, v1);

        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, manifest);
        var failed = await env.WaitForAsync(s => s.State == UpdateState.Failed, StepTimeout, "failed");

        Assert.StartsWith("manifest refused (unknown-key)", failed.LastError, StringComparison.Ordinal);
        Assert.DoesNotContain(env.Server.Requests, r => r.Contains("/v1/images/", StringComparison.Ordinal));
        await AssertRunningSlotUntouchedAsync(env);

        // The refused manifest is remembered: the same notice again does nothing.
        env.Probe.Clear();
        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, manifest);
        await env.Probe.PublishCommandAsync(env.Sandbox.DeviceId, DeviceCommandKind.CheckNow, "cmd-1");
        await Task.Delay(1000, TestContext.Current.CancellationToken);
        Assert.DoesNotContain(env.Probe.Statuses, s => s.State == UpdateState.Verifying);
    }

    [Fact]
    public async Task Downgrade_without_permission_is_refused()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await DeviceEnvironment.CreateAsync();
        var (v1, _) = await env.BuildPairAsync();
        var older = await TestImages.BuildAsync(env.Sandbox.ImagesDirectory, new TestImageOptions { Version = "0.9.0", HttpPort = env.HttpPort });
        await StartOnV1Async(env, v1);

        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, env.Publish(older, "0.9.0"));
        var failed = await env.WaitForAsync(s => s.State == UpdateState.Failed, StepTimeout, "failed");

        Assert.StartsWith("manifest refused (not-newer)", failed.LastError, StringComparison.Ordinal);
        await AssertRunningSlotUntouchedAsync(env);
    }

    [Fact]
    public async Task Image_that_does_not_match_its_manifest_is_retried_then_abandoned_with_the_slot_marked_bad()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await DeviceEnvironment.CreateAsync();
        var (v1, v2) = await env.BuildPairAsync();
        var manifest = env.Signer.Sign(v2, "2.0.0");
        var corrupt = v2 + ".corrupt";
        var bytes = await File.ReadAllBytesAsync(v2, TestContext.Current.CancellationToken);
        bytes[bytes.Length / 2] ^= 0xff;
        await File.WriteAllBytesAsync(corrupt, bytes, TestContext.Current.CancellationToken);
        env.Server.AddRelease(manifest, corrupt);
        await StartOnV1Async(env, v1);

        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, manifest);
        var failed = await env.WaitForAsync(s => s.State == UpdateState.Failed, StepTimeout, "failed");

        Assert.StartsWith("abandoned after 4 attempt(s): image hash mismatch in slot b", failed.LastError, StringComparison.Ordinal);
        Assert.Equal(4, env.Server.Requests.Count(r => r.Contains("/v1/images/", StringComparison.Ordinal)));
        Assert.Equal(SlotState.Bad, env.Sandbox.ReadState().Target("app").B.State);
        await AssertRunningSlotUntouchedAsync(env);
    }

    [Fact]
    public async Task Image_larger_than_the_free_space_is_refused_before_writing()
    {
        Privileges.RequireRoot("a small ext4 file system on a loop device");
        await using var env = await DeviceEnvironment.CreateAsync();
        await using var small = await ScratchMount.LoopExt4Async(Path.Combine(env.Sandbox.Root, "small.ext4"), Path.Combine(env.Sandbox.Root, "small-fs"), 6 << 20);
        var target = env.Sandbox.AppTarget() with { Slots = new SlotPathsConfig { A = small.Combine("app-a.sqfs"), B = small.Combine("app-b.sqfs") } };
        env.Sandbox.Config = env.Sandbox.Config with { Targets = [target] };
        var (v1, v2) = await env.BuildPairAsync(v2Filler: 8 * 1024 * 1024);
        await StartOnV1Async(env, v1);

        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, env.Publish(v2, "2.0.0"));
        var failed = await env.WaitForAsync(s => s.State == UpdateState.Failed, StepTimeout, "failed");

        Assert.StartsWith("not enough space: slot b", failed.LastError, StringComparison.Ordinal);
        Assert.False(File.Exists(target.Slots.B));
        Assert.DoesNotContain(env.Server.Requests, r => r.Contains("/v1/images/", StringComparison.Ordinal));
        await AssertRunningSlotUntouchedAsync(env);
    }

    [Fact]
    public async Task Broker_restart_mid_download_does_not_stop_the_update()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await DeviceEnvironment.CreateAsync();
        env.Sandbox.Config = env.Sandbox.Config with { Download = env.Sandbox.Config.Download with { MaxBytesPerSecond = 1024 * 1024 } };
        var (v1, v2) = await env.BuildPairAsync(v2Filler: 4 * 1024 * 1024);
        await StartOnV1Async(env, v1);

        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, env.Publish(v2, "2.0.0"));
        await env.WaitForAsync(s => s.State == UpdateState.Downloading, StepTimeout, "downloading");
        await env.Broker.RestartAsync(TimeSpan.FromMilliseconds(500), TestContext.Current.CancellationToken);
        await env.ReconnectProbeAsync();

        var committed = await env.WaitForAsync(s => s.State == UpdateState.Committed, StepTimeout, "committed after the broker restart");
        Assert.Equal("2.0.0", committed.Targets[0].Version);
        Assert.True(env.Sandbox.Output.Split("MQTT connected").Length >= 3, env.Sandbox.Output);
    }

    [Fact]
    public async Task Notice_sent_while_the_agent_is_away_arrives_through_its_persistent_session()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await DeviceEnvironment.CreateAsync();
        var (v1, v2) = await env.BuildPairAsync();
        var agent = await StartOnV1Async(env, v1);
        await agent.StopAsync();

        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, env.Publish(v2, "2.0.0"));
        env.Sandbox.StartAgent();

        var committed = await env.WaitForAsync(s => s.State == UpdateState.Committed, StepTimeout, "committed");
        Assert.Equal("2.0.0", committed.Targets[0].Version);
        Assert.Contains("session present: True", env.Sandbox.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Server_errors_are_retried_with_backoff_then_the_update_completes()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await DeviceEnvironment.CreateAsync();
        var (v1, v2) = await env.BuildPairAsync();
        await StartOnV1Async(env, v1);

        env.Server.Unavailable(2);
        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, env.Publish(v2, "2.0.0"));

        await env.WaitForAsync(s => s.LastError?.StartsWith("attempt 2 failed, retrying in 2 s", StringComparison.Ordinal) == true, StepTimeout, "the second retry announced");
        await env.WaitForAsync(s => s.State == UpdateState.Committed, StepTimeout, "committed");
        Assert.Equal("2.0.0", await env.WaitForServedVersionAsync("2.0.0"));
    }

    [Fact]
    public async Task Manifest_request_that_is_never_answered_times_out_and_is_retried_with_backoff()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await DeviceEnvironment.CreateAsync(s =>
        {
            s.Config = s.Config with { Server = s.Config.Server! with { RequestTimeoutSeconds = 2 } };
            return s;
        });
        var (v1, v2) = await env.BuildPairAsync();
        await StartOnV1Async(env, v1);

        // The server accepts and reads the request and then says nothing: HttpClient.Timeout ends it
        // with a cancellation that is not the agent's shutdown.
        env.Server.StallManifests(2);
        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, env.Publish(v2, "2.0.0"));

        var retrying = await env.WaitForAsync(s => s.LastError?.StartsWith("attempt 2 failed, retrying in 2 s", StringComparison.Ordinal) == true, StepTimeout, "the second retry announced");
        Assert.Contains("HttpClient.Timeout", retrying.LastError, StringComparison.Ordinal);
        var committed = await env.WaitForAsync(s => s.State == UpdateState.Committed, StepTimeout, "committed after the stalled manifest requests");
        Assert.Equal("2.0.0", committed.Targets[0].Version);
        Assert.Equal(3, env.Server.Requests.Count(r => r.Contains("/v1/manifests/", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Manifest_body_that_does_not_hash_to_its_address_is_retried_not_refused()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await DeviceEnvironment.CreateAsync();
        var (v1, v2) = await env.BuildPairAsync();
        await StartOnV1Async(env, v1);

        // A captive portal answers the first two manifest requests with 200 and its login page.
        env.Server.ServeWrongManifests(2);
        var manifest = env.Publish(v2, "2.0.0");
        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, manifest);

        var retrying = await env.WaitForAsync(s => s.LastError?.StartsWith("attempt 2 failed, retrying in 2 s", StringComparison.Ordinal) == true, StepTimeout, "the second retry announced");
        Assert.Contains("not the manifest", retrying.LastError, StringComparison.Ordinal);
        var committed = await env.WaitForAsync(s => s.State == UpdateState.Committed, StepTimeout, "committed once the real manifest arrived");
        Assert.Equal("2.0.0", committed.Targets[0].Version);
        Assert.Equal(3, env.Server.Requests.Count(r => r.Contains("/v1/manifests/", StringComparison.Ordinal)));
        Assert.DoesNotContain(manifest.Sha256, env.Sandbox.ReadState().Target("app").RejectedManifests);
    }

    [Fact]
    public async Task Dropped_download_resumes_with_a_range_request()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await DeviceEnvironment.CreateAsync();
        var (v1, v2) = await env.BuildPairAsync(v2Filler: 2 * 1024 * 1024);
        await StartOnV1Async(env, v1);

        env.Server.DropImageDownloads(1, 1024 * 1024);
        var manifest = env.Publish(v2, "2.0.0");
        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, manifest);
        await env.WaitForAsync(s => s.State == UpdateState.Committed, StepTimeout, "committed");

        var images = env.Server.Requests.Where(r => r.Contains("/v1/images/", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, images.Count);
        // Resumed, not restarted: a Range from what had arrived (how much of the 1 MiB head the agent read
        // before the cut depends on TCP timing, not on the agent) with If-Range.
        var resume = System.Text.RegularExpressions.Regex.Match(images[1], @"bytes=(\d+)- if-range=");
        Assert.True(resume.Success, $"second image request without Range/If-Range: {string.Join(" | ", images)}");
        var from = long.Parse(resume.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(from, 1, 1024 * 1024);
        Assert.Equal(manifest.ImageSha256, env.Sandbox.ReadState().Target("app").B.ImageSha256);
    }

    [Fact]
    public async Task Server_down_for_good_is_abandoned_after_the_configured_attempts()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await DeviceEnvironment.CreateAsync();
        var (v1, v2) = await env.BuildPairAsync();
        env.Sandbox.Config = env.Sandbox.Config with { Server = new ServerConfig { Url = $"http://127.0.0.1:{FreePort.Next()}", RequestTimeoutSeconds = 2 } };
        await StartOnV1Async(env, v1);

        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, env.Publish(v2, "2.0.0"));
        var failed = await env.WaitForAsync(s => s.State == UpdateState.Failed, StepTimeout, "failed");

        Assert.StartsWith("abandoned after 4 attempt(s)", failed.LastError, StringComparison.Ordinal);
        Assert.Contains("Connection refused", failed.LastError, StringComparison.Ordinal);
        await AssertRunningSlotUntouchedAsync(env);
    }

    private static async Task<AgentProcess> StartOnV1Async(DeviceEnvironment env, string v1)
    {
        File.Copy(v1, env.Sandbox.Config.Targets[0].Slots!.A!, overwrite: true);
        var agent = env.Sandbox.StartAgent();
        await env.WaitForAsync(s => s.Targets.Any(t => t.Version == "1.0.0"), StepTimeout, "with 1.0.0 running");
        Assert.Equal("1.0.0", await env.WaitForServedVersionAsync("1.0.0"));
        env.Probe.Clear();
        return agent;
    }

    private static async Task AssertRunningSlotUntouchedAsync(DeviceEnvironment env)
    {
        var target = env.Sandbox.ReadState().Target("app");
        Assert.Equal("a", target.CommittedSlot);
        Assert.Equal(SlotState.Good, target.A.State);
        await using (var stream = File.OpenRead(env.Sandbox.Config.Targets[0].Slots!.A!))
        {
            Assert.Equal(target.A.ImageSha256, Convert.ToHexStringLower(await System.Security.Cryptography.SHA256.HashDataAsync(stream)));
        }

        Assert.Equal("1.0.0", await env.WaitForServedVersionAsync("1.0.0"));
    }
}
