using EdgeUpdater.Agent.State;
using EdgeUpdater.Agent.Tests.Fixtures;
using EdgeUpdater.Delta;
using EdgeUpdater.Protocol;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Agent.Tests.EndToEnd;

/// <summary>
/// Updates that travel as deltas (made by EdgeUpdater.Delta's generator, served over HTTP on loopback):
/// applied from the running slot into the other one, verified against the manifest, committed; a
/// dropped or unusable delta is resumed, requested again or replaced by the full image as docs/agent.md
/// says, and the running slot is never written.
/// </summary>
[Trait("requirement", "root")]
public sealed class DeltaUpdateTests
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(45);

    [Theory]
    [InlineData("any")]
    [InlineData("best")]
    public async Task Notice_installs_the_update_from_a_delta_and_commits(string deltaLevel)
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await DeviceEnvironment.CreateAsync(s =>
        {
            s.Config = s.Config with { Download = s.Config.Download with { DeltaLevel = deltaLevel } };
            return s;
        });
        var (v1, v2) = await env.BuildPairAsync(sharedFiller: 3 * 1024 * 1024);
        var delta = await env.PublishDeltaAsync(v1, v2);
        var running = await StartOnV1Async(env, v1);

        var manifest = env.Publish(v2, "2.0.0");
        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, manifest);
        var committed = await env.WaitForAsync(s => s.State == UpdateState.Committed, StepTimeout, "committed");

        var target = Assert.Single(committed.Targets);
        Assert.Equal(("b", "2.0.0", manifest.ImageSha256), (target.ActiveSlot, target.Version, target.ImageSha256));
        Assert.Equal(manifest.ImageSha256, TestDeltas.Sha256(env.Sandbox.SlotPath("b")));
        Assert.Equal("2.0.0", await env.WaitForServedVersionAsync("2.0.0"));

        // Asked for the delta from the running image with this device's codecs, the newest delta format it
        // reads and the level it is configured for ("any": none named); never for the image.
        var codecs = DeltaCodecs.LocalIdentitiesQuery();
        Assert.NotEmpty(codecs);
        Assert.Equal(codecs, committed.Codecs);
        var request = Assert.Single(env.Server.Requests, r => r.Contains("/v1/deltas/", StringComparison.Ordinal));
        var level = deltaLevel == "any" ? "" : "&level=" + deltaLevel;
        Assert.StartsWith($"GET /v1/deltas/{running}/{manifest.ImageSha256}?codecs={codecs}&format={DeltaFormatVersions.Newest}{level} ", Uri.UnescapeDataString(request), StringComparison.Ordinal);
        Assert.DoesNotContain(env.Server.Requests, r => r.Contains("/v1/images/", StringComparison.Ordinal));

        // The delta is a fraction of the image, and the history says what travelled.
        var deltaLength = new FileInfo(delta).Length;
        Assert.True(deltaLength * 4 < manifest.ImageSize, $"delta {deltaLength} bytes, image {manifest.ImageSize}");
        var state = env.Sandbox.ReadState();
        var installed = state.History.Last(h => h.Event == UpdateState.Installed);
        Assert.Contains($"from a delta: {deltaLength} bytes downloaded for a {manifest.ImageSize}-byte image", installed.Message, StringComparison.Ordinal);

        // Slot a (the base) was only read; the delta and its checkpoint are gone.
        Assert.Equal(running, TestDeltas.Sha256(env.Sandbox.SlotPath("a")));
        Assert.Equal(running, state.Target("app").A.ImageSha256);
        Assert.Empty(Directory.GetFiles(Path.Combine(env.Sandbox.StateDirectory, "targets", "app"), "*.delta"));
        Assert.Empty(Directory.GetFiles(Path.Combine(env.Sandbox.StateDirectory, "targets", "app"), "apply.checkpoint*"));
    }

    [Theory]
    [InlineData("cached")]
    [InlineData("streamed")]
    public async Task Dropped_delta_download_is_resumed_when_cached_and_requested_again_when_streamed(string how)
    {
        var delivery = how == "cached" ? DeltaDelivery.Cached : DeltaDelivery.Streamed;
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await DeviceEnvironment.CreateAsync();
        var (v1, v2) = await env.BuildPairAsync(v2Filler: 512 * 1024, sharedFiller: 1024 * 1024);
        var delta = await env.PublishDeltaAsync(v1, v2, delivery);
        await StartOnV1Async(env, v1);

        env.Server.DropDeltaDownloads(1, 128 * 1024);
        var manifest = env.Publish(v2, "2.0.0");
        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, manifest);
        await env.WaitForAsync(s => s.State == UpdateState.Committed, StepTimeout, "committed");

        var requests = env.Server.Requests.Where(r => r.Contains("/v1/deltas/", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, requests.Count);
        Assert.DoesNotContain("bytes=", requests[0], StringComparison.Ordinal);
        if (delivery == DeltaDelivery.Cached)
        {
            // docs/server.md: a cached delta is resumed with Range + If-Range on its ETag.
            var etag = $"\"{TestDeltas.Sha256(delta)}\"";
            Assert.Matches($@"bytes=[1-9]\d*- if-range={System.Text.RegularExpressions.Regex.Escape(etag)}$", requests[1]);
        }
        else
        {
            // A streamed delta has no ETag: the bytes cannot be matched, so it is asked for again whole.
            Assert.DoesNotContain("bytes=", requests[1], StringComparison.Ordinal);
        }

        Assert.DoesNotContain(env.Server.Requests, r => r.Contains("/v1/images/", StringComparison.Ordinal));
        Assert.Equal(manifest.ImageSha256, TestDeltas.Sha256(env.Sandbox.SlotPath("b")));
        Assert.Contains("from a delta", env.Sandbox.ReadState().History.Last(h => h.Event == UpdateState.Installed).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("flipped", "corrupted")]
    [InlineData("truncated", "truncated")]
    [InlineData("wrong-base", "wrong-base")]
    [InlineData("other-image", "wrong-target")]
    public async Task Unusable_delta_is_refused_with_its_reason_and_the_full_image_is_installed(string damage, string reason)
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await DeviceEnvironment.CreateAsync();
        var (v1, v2) = await env.BuildPairAsync(v2Filler: 256 * 1024, sharedFiller: 1024 * 1024);
        var good = await TestDeltas.CreateAsync(v1, v2, Path.Combine(env.Sandbox.ImagesDirectory, "good.eud"));
        var served = damage switch
        {
            "flipped" => await TestDeltas.FlipBytesAsync(good),
            "truncated" => await TestDeltas.TruncateAsync(good),
            "other-image" => await TestDeltas.CreateAsync(
                v1,
                await TestImages.BuildAsync(env.Sandbox.ImagesDirectory, new TestImageOptions { Version = "2.0.1", HttpPort = env.HttpPort, SharedFillerBytes = 1024 * 1024 }),
                Path.Combine(env.Sandbox.ImagesDirectory, "to-2.0.1.eud")),
            _ => await TestDeltas.CreateAsync(
                await TestImages.BuildAsync(env.Sandbox.ImagesDirectory, new TestImageOptions { Version = "0.9.0", HttpPort = env.HttpPort, SharedFillerBytes = 1024 * 1024 }),
                v2,
                Path.Combine(env.Sandbox.ImagesDirectory, "from-0.9.0.eud")),
        };
        var running = await StartOnV1Async(env, v1);
        env.Server.AddDelta(running, TestDeltas.Sha256(v2), served);

        var manifest = env.Publish(v2, "2.0.0");
        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, manifest);
        var refused = await env.WaitForAsync(s => s.LastError?.StartsWith("delta refused", StringComparison.Ordinal) == true, StepTimeout, "delta refused");
        Assert.StartsWith($"delta refused ({reason}): ", refused.LastError, StringComparison.Ordinal);
        Assert.EndsWith("; downloading the full image", refused.LastError, StringComparison.Ordinal);
        Assert.Equal("a", refused.Targets[0].ActiveSlot);

        var committed = await env.WaitForAsync(s => s.State == UpdateState.Committed, StepTimeout, "committed from the full image");
        Assert.Equal(("b", manifest.ImageSha256), (committed.Targets[0].ActiveSlot, committed.Targets[0].ImageSha256));
        Assert.Single(env.Server.Requests, r => r.Contains("/v1/images/", StringComparison.Ordinal));
        Assert.Equal(manifest.ImageSha256, TestDeltas.Sha256(env.Sandbox.SlotPath("b")));
        Assert.Equal(running, TestDeltas.Sha256(env.Sandbox.SlotPath("a")));
        var history = env.Sandbox.ReadState().History;
        Assert.Contains(history, h => h.Message?.StartsWith($"delta refused ({reason})", StringComparison.Ordinal) == true);
        Assert.Contains("full image:", history.Last(h => h.Event == UpdateState.Installed).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Delta_refused_from_its_header_stops_its_own_download_at_once()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await DeviceEnvironment.CreateAsync();
        var (v1, v2) = await env.BuildPairAsync(sharedFiller: 1024 * 1024);
        var other = await TestImages.BuildAsync(env.Sandbox.ImagesDirectory, new TestImageOptions { Version = "2.0.1", HttpPort = env.HttpPort, FillerBytes = 256 * 1024, SharedFillerBytes = 1024 * 1024 });
        var wrong = await TestDeltas.CreateAsync(v1, other, Path.Combine(env.Sandbox.ImagesDirectory, "to-2.0.1.eud"));
        Assert.True(new FileInfo(wrong).Length > 1024);
        var running = await StartOnV1Async(env, v1);
        env.Server.AddDelta(running, TestDeltas.Sha256(v2), wrong);

        // Its first KiB (the header says another image), then nothing on an open connection: the download alone
        // would wait for download.idleTimeoutSeconds (60 s). The apply refuses the header and stops it.
        env.Server.StallDeltaDownloads(1, 1024);
        var manifest = env.Publish(v2, "2.0.0");
        var noticed = System.Diagnostics.Stopwatch.StartNew();
        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, manifest);
        var refused = await env.WaitForAsync(s => s.LastError?.StartsWith("delta refused", StringComparison.Ordinal) == true, TimeSpan.FromSeconds(20), "delta refused");
        Assert.True(noticed.Elapsed < TimeSpan.FromSeconds(20), noticed.Elapsed.ToString());
        Assert.StartsWith("delta refused (wrong-target): ", refused.LastError, StringComparison.Ordinal);

        await AssertCommittedFromTheFullImageAsync(env, manifest);
        Assert.DoesNotContain(env.Sandbox.ReadState().History, h => h.Message?.Contains("retrying", StringComparison.Ordinal) == true);
    }

    [Fact]
    public async Task Delta_is_applied_while_it_downloads_and_both_resume_where_they_were_after_a_stall()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await CreateStallingEnvironmentAsync();
        var (v1, v2) = await env.BuildPairAsync(v2Filler: 5 * 1024 * 1024, sharedFiller: 2 * 1024 * 1024);
        var delta = await env.PublishDeltaAsync(v1, v2);
        var deltaLength = new FileInfo(delta).Length;
        await StartOnV1Async(env, v1);

        // The first download sends all but the last 16 KiB (the metadata section and a little more), then nothing on an
        // open connection. The apply reads a section once it has all of it (content sections hold up to 4 MiB).
        var stallAt = deltaLength - (16 * 1024);
        env.Server.StallDeltaDownloads(1, stallAt);
        var manifest = env.Publish(v2, "2.0.0");
        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, manifest);

        // Meanwhile what arrived is applied: slot b written and checkpointed while the download still waits.
        var during = await WaitForApplyProgressAsync(env);

        Assert.Equal(UpdateState.Downloading, during.Phase);
        Assert.InRange(during.Pending!.ApplyOffset, 1024 * 1024, manifest.ImageSize - 1);
        Assert.Single(env.Server.Requests, r => r.Contains("/v1/deltas/", StringComparison.Ordinal));

        // The idle timeout drops the connection; the download resumes where it stopped and the apply at its checkpoint.
        await env.WaitForAsync(s => s.State == UpdateState.Committed, StepTimeout, "committed");
        Assert.Equal(manifest.ImageSha256, TestDeltas.Sha256(env.Sandbox.SlotPath("b")));
        var requests = env.Server.Requests.Where(r => r.Contains("/v1/deltas/", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, requests.Count);
        Assert.Matches($@"bytes={stallAt}- if-range=", requests[1]);
        var resumed = System.Text.RegularExpressions.Regex.Match(env.Sandbox.Output, @"delta apply resumed from its checkpoint at byte (\d+) of (\d+)");
        Assert.True(resumed.Success, env.Sandbox.Output);
        Assert.True(long.Parse(resumed.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= during.Pending.ApplyOffset);
        Assert.DoesNotContain(env.Server.Requests, r => r.Contains("/v1/images/", StringComparison.Ordinal));
        Assert.Contains("from a delta", env.Sandbox.ReadState().History.Last(h => h.Event == UpdateState.Installed).Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(Path.Combine(env.Sandbox.StateDirectory, "targets", "app"), "*.delta"));
    }

    [Fact]
    public async Task Delta_that_changed_between_two_attempts_is_applied_whole_once_downloaded()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await CreateStallingEnvironmentAsync();
        var (v1, v2) = await env.BuildPairAsync(v2Filler: 5 * 1024 * 1024, sharedFiller: 2 * 1024 * 1024);
        var fast = await TestDeltas.CreateAsync(v1, v2, Path.Combine(env.Sandbox.ImagesDirectory, "fast.eud"), DeltaLevel.Fast);
        env.Server.AddDelta(TestDeltas.Sha256(v1), TestDeltas.Sha256(v2), fast);
        await StartOnV1Async(env, v1);

        // The first attempt gets all of the fast delta but its last 16 KiB and applies what arrived.
        env.Server.StallDeltaDownloads(1, new FileInfo(fast).Length - (16 * 1024));
        var manifest = env.Publish(v2, "2.0.0");
        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, manifest);
        await WaitForApplyProgressAsync(env);

        // Meanwhile the server's delta for the pair became the best one: another body, another ETag. The resume's
        // If-Range no longer matches and the whole best delta comes back (200).
        await env.PublishDeltaAsync(v1, v2);
        await env.WaitForAsync(s => s.State == UpdateState.Committed, StepTimeout, "committed");

        var requests = env.Server.Requests.Where(r => r.Contains("/v1/deltas/", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, requests.Count);
        Assert.EndsWith($"if-range=\"{TestDeltas.Sha256(fast)}\"", requests[1], StringComparison.Ordinal);
        Assert.Contains("the delta is applied once downloaded: the download stopped after", env.Sandbox.Output, StringComparison.Ordinal);
        Assert.Contains("the server sent the delta again from its start", env.Sandbox.Output, StringComparison.Ordinal);

        // Not refused as a checkpoint of another delta (which would fall back to the full image): applied whole.
        Assert.DoesNotContain(env.Server.Requests, r => r.Contains("/v1/images/", StringComparison.Ordinal));
        Assert.Equal(manifest.ImageSha256, TestDeltas.Sha256(env.Sandbox.SlotPath("b")));
        Assert.Contains("from a delta", env.Sandbox.ReadState().History.Last(h => h.Event == UpdateState.Installed).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Endless_delta_is_cut_off_at_the_image_size_and_the_full_image_is_installed()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await DeviceEnvironment.CreateAsync();
        var (v1, v2) = await env.BuildPairAsync(v2Filler: 256 * 1024);
        var delta = await env.PublishDeltaAsync(v1, v2);
        var running = await StartOnV1Async(env, v1);

        // A good header, then a section that never ends: the apply, reading as the bytes arrive, waits for the
        // section; only the cap on the download stops the server.
        env.Server.AddDelta(running, TestDeltas.Sha256(v2), delta, DeltaDelivery.Endless);

        var manifest = env.Publish(v2, "2.0.0");
        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, manifest);
        var refused = await env.WaitForAsync(s => s.LastError?.StartsWith("delta refused", StringComparison.Ordinal) == true, StepTimeout, "delta refused");
        // Stopped at the cap: without it the agent reads to the server's bound and only the apply refuses the bytes.
        Assert.StartsWith("delta refused (too-large): ", refused.LastError, StringComparison.Ordinal);
        Assert.Contains($"more than the limit of {manifest.ImageSize} bytes", refused.LastError, StringComparison.Ordinal);

        await AssertCommittedFromTheFullImageAsync(env, manifest);

        Assert.Empty(Directory.GetFiles(Path.Combine(env.Sandbox.StateDirectory, "targets", "app"), "*.delta"));
    }

    [Fact]
    public async Task Delta_that_does_not_fit_the_state_directory_is_dropped_and_the_full_image_is_installed()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, a tmpfs of a fixed size");
        await using var env = await DeviceEnvironment.CreateAsync();
        var (v1, v2) = await env.BuildPairAsync(v2Filler: 2 * 1024 * 1024);
        var delta = await env.PublishDeltaAsync(v1, v2);

        // The target's directory (where the delta is staged) on a file system with room for less than the delta;
        // the journal and the slots are elsewhere.
        await using var small = await ScratchMount.TmpfsAsync(Path.Combine(env.Sandbox.StateDirectory, "targets", "app"), 1024 * 1024);
        Assert.True(new FileInfo(delta).Length > 1024 * 1024, $"the delta ({new FileInfo(delta).Length} bytes) must not fit");
        await StartOnV1Async(env, v1);

        var manifest = env.Publish(v2, "2.0.0");
        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, manifest);
        var refused = await env.WaitForAsync(s => s.LastError?.StartsWith("delta refused", StringComparison.Ordinal) == true, StepTimeout, "delta refused");
        Assert.StartsWith("delta refused (no-room): GET ", refused.LastError, StringComparison.Ordinal);
        Assert.Contains("download.delta after ", refused.LastError, StringComparison.Ordinal);
        Assert.EndsWith("; downloading the full image", refused.LastError, StringComparison.Ordinal);

        // At once, not after retries of a download that cannot fit: one delta request, then the image.
        await AssertCommittedFromTheFullImageAsync(env, manifest);
        Assert.DoesNotContain(env.Sandbox.ReadState().History, h => h.Message?.Contains("retrying", StringComparison.Ordinal) == true);

        // The partial delta was deleted: the room is back.
        Assert.Empty(Directory.GetFiles(small.MountPoint, "*.delta"));
    }

    /// <summary>
    /// Waits for the commit and checks that the image came whole, after one delta request: slot b holds it, one
    /// image request, and the history says so.
    /// </summary>
    private static async Task AssertCommittedFromTheFullImageAsync(DeviceEnvironment env, SignedManifest manifest)
    {
        var committed = await env.WaitForAsync(s => s.State == UpdateState.Committed, StepTimeout, "committed from the full image");
        Assert.Equal(("b", manifest.ImageSha256), (committed.Targets[0].ActiveSlot, committed.Targets[0].ImageSha256));
        Assert.Equal(manifest.ImageSha256, TestDeltas.Sha256(env.Sandbox.SlotPath("b")));
        Assert.Single(env.Server.Requests, r => r.Contains("/v1/deltas/", StringComparison.Ordinal));
        Assert.Single(env.Server.Requests, r => r.Contains("/v1/images/", StringComparison.Ordinal));
        Assert.Contains("full image:", env.Sandbox.ReadState().History.Last(h => h.Event == UpdateState.Installed).Message, StringComparison.Ordinal);
    }

    /// <summary>Apply checkpoints every 1 MiB of new image; a download silent for 3 s counts as dropped.</summary>
    private static Task<DeviceEnvironment> CreateStallingEnvironmentAsync() => DeviceEnvironment.CreateAsync(s =>
    {
        s.Config = s.Config with { Download = s.Config.Download with { DeltaCheckpointBytes = 1024 * 1024, IdleTimeoutSeconds = 3 } };
        return s;
    });

    /// <summary>Waits until the state says the delta apply checkpointed, and returns the target then.</summary>
    private static async Task<TargetState> WaitForApplyProgressAsync(DeviceEnvironment env)
    {
        var deadline = DateTime.UtcNow + StepTimeout;
        TargetState target;
        while ((target = env.Sandbox.ReadState().Target("app")).Pending is not { ApplyOffset: > 0 })
        {
            Assert.True(DateTime.UtcNow < deadline, $"no apply progress while the download stalled\n{env.Sandbox.Output}");
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        return target;
    }

    /// <summary>Starts the agent on v1 and returns the running image's SHA-256.</summary>
    private static async Task<string> StartOnV1Async(DeviceEnvironment env, string v1)
    {
        env.Sandbox.Provision(v1);
        env.Sandbox.StartAgent();
        await env.WaitForAsync(s => s.Targets.Any(t => t.Version == "1.0.0"), StepTimeout, "with 1.0.0 running");
        Assert.Equal("1.0.0", await env.WaitForServedVersionAsync("1.0.0"));
        env.Probe.Clear();
        return TestDeltas.Sha256(v1);
    }
}
