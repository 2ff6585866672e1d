using System.Net;
using System.Net.Http.Json;
using EdgeUpdater.Protocol;
using EdgeUpdater.Server.Hosting;
using EdgeUpdater.Server.Rollouts;
using EdgeUpdater.Server.Tests.Support;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Server.Tests.Rollouts;

/// <summary>Phased rollouts over the embedded broker with simulated devices that answer notices.</summary>
public sealed class RolloutTests : IAsyncDisposable
{
    private const string OldImage = "1111111111111111111111111111111111111111111111111111111111111111";
    private readonly TempDirectory _work = new("rollouts");
    private readonly List<SimulatedDevice> _devices = [];
    private TestServer _server = null!;

    public async ValueTask DisposeAsync()
    {
        foreach (var device in _devices)
        {
            await device.DisposeAsync();
        }

        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        _work.Dispose();
    }

    [Fact]
    public async Task Phases_advance_as_devices_succeed_until_the_whole_group_runs_the_release()
    {
        var release = await StartAsync(10, DeviceBehaviour.Succeed);
        var rollout = await StartRolloutAsync(release, [10, 50, 100], success: 1.0);
        Assert.Equal(RolloutState.Running, rollout.State);
        Assert.Equal(1, rollout.Selected);

        var done = await Eventually.GetAsync(() => GetRolloutAsync(rollout.Id), r => r.State == RolloutState.Completed, "the rollout completes");
        Assert.Equal(10, done.Succeeded);
        Assert.Equal(0, done.Failed);
        Assert.Equal(2, done.CurrentPhase);
        foreach (var device in _devices)
        {
            Assert.True(device.Notices.Reader.TryRead(out var notice), $"{device.Id} got a notice");
            Assert.Equal(rollout.Id, notice.RolloutId);
            Assert.Equal(release.ImageSha256, notice.ImageSha256);
            Assert.Equal("app", notice.Target);
        }

        var states = await Eventually.GetAsync(
            () => _server.Http.GetFromJsonAsync(OperatorRoutes.Devices + "?group=lab", OperatorJsonContext.Default.IReadOnlyListDeviceInfo)!,
            d => d!.All(x => x.State == UpdateState.Committed),
            "the registry shows every device committed");
        Assert.Equal(10, states!.Count);
    }

    [Fact]
    public async Task Failures_past_the_threshold_pause_the_rollout_and_resume_and_abort_work()
    {
        var release = await StartAsync(20, DeviceBehaviour.Fail);
        var rollout = await StartRolloutAsync(release, [10, 50, 100], success: 0.9, failure: 0.2);

        var paused = await Eventually.GetAsync(() => GetRolloutAsync(rollout.Id), r => r.State == RolloutState.Paused, "the rollout pauses itself");
        Assert.Equal(0, paused.CurrentPhase);
        Assert.Equal(2, paused.Selected);
        Assert.InRange(paused.Failed, 1, 2);

        // Outcomes are still recorded while paused.
        paused = await Eventually.GetAsync(() => GetRolloutAsync(rollout.Id), r => r.Failed == 2, "both notified devices report failure");
        Assert.Equal(RolloutState.Paused, paused.State);
        Assert.Contains("failure threshold", paused.PauseReason, StringComparison.Ordinal);
        Assert.Equal(2, _devices.Count(d => d.Notices.Reader.Count > 0));

        // The two that failed will succeed when retried; the others will not answer, so phase 2 stays open.
        foreach (var device in _devices)
        {
            device.Behaviour = device.Notices.Reader.Count > 0 ? DeviceBehaviour.Succeed : DeviceBehaviour.Passive;
        }

        using (var conflict = await _server.Http.PostAsync(OperatorRoutes.RolloutAction(rollout.Id, RolloutAction.Pause), null))
        {
            Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);
        }

        var resumed = await ActAsync(rollout.Id, RolloutAction.Resume);
        Assert.Equal(RolloutState.Running, resumed.State);
        var advanced = await Eventually.GetAsync(() => GetRolloutAsync(rollout.Id), r => r.CurrentPhase == 1 && r.Selected == 10, "resumed, the retried devices succeed and phase 2 starts");
        Assert.Equal(RolloutState.Running, advanced.State);
        Assert.Equal(2, advanced.Succeeded);

        var aborted = await ActAsync(rollout.Id, RolloutAction.Abort);
        Assert.Equal(RolloutState.Aborted, aborted.State);
        using var again = await _server.Http.PostAsync(OperatorRoutes.RolloutAction(rollout.Id, RolloutAction.Resume), null);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
    }

    [Fact]
    public async Task Selection_is_a_fixed_order_and_a_restart_resumes_the_rollout()
    {
        var release = await StartAsync(8, DeviceBehaviour.Passive, mqttPort: FreePort.Next());
        var rollout = await StartRolloutAsync(release, [25, 100], success: 1.0);
        var expected = _devices.Select(d => d.Id).OrderBy(id => RolloutEngine.Rank(rollout.Id, id)).ThenBy(id => id, StringComparer.Ordinal).Take(2).ToHashSet();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var notified = new HashSet<string>();
        foreach (var device in _devices.Where(d => expected.Contains(d.Id)))
        {
            notified.Add((await device.Notices.Reader.ReadAsync(timeout.Token)).RolloutId == rollout.Id ? device.Id : "?");
        }

        Assert.Equal(expected, notified);

        await _server.RestartAsync();
        var afterRestart = await GetRolloutAsync(rollout.Id);
        Assert.Equal(RolloutState.Running, afterRestart.State);
        Assert.Equal(2, afterRestart.Selected);

        // The embedded broker restarted on the same port: the devices reconnect, as agents do.
        var ids = _devices.Select(d => d.Id).ToList();
        foreach (var device in _devices)
        {
            await device.DisposeAsync();
        }

        _devices.Clear();
        foreach (var id in ids)
        {
            var device = await SimulatedDevice.ConnectAsync(_server.Host.MqttHost, _server.Host.MqttPort, _server.Host.Topics, id, "lab", OldImage);
            await device.PublishStatusAsync(UpdateState.Idle);
            _devices.Add(device);
        }

        // The two selected devices report success: phase 2 selects the rest, nobody twice.
        foreach (var device in _devices.Where(d => expected.Contains(d.Id)))
        {
            await device.PublishStatusAsync(UpdateState.Committed, rollout.Id);
        }

        var next = await Eventually.GetAsync(() => GetRolloutAsync(rollout.Id), r => r.CurrentPhase == 1 && r.Selected == 8, "phase 2 selects the rest after the restart");
        Assert.Equal(2, next.Succeeded);
    }

    [Fact]
    public async Task A_rollout_of_an_unknown_release_or_with_bad_phases_is_refused()
    {
        var release = await StartAsync(0, DeviceBehaviour.Passive);
        using var unknown = await _server.Http.PostAsJsonAsync(OperatorRoutes.Rollouts, new RolloutRequest { ManifestSha256 = new string('0', 64), Group = "lab" }, OperatorJsonContext.Default.RolloutRequest);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        using var badPhases = await _server.Http.PostAsJsonAsync(OperatorRoutes.Rollouts, new RolloutRequest { ManifestSha256 = release.ManifestSha256, Group = "lab", Phases = [50, 10] }, OperatorJsonContext.Default.RolloutRequest);
        Assert.Equal(HttpStatusCode.BadRequest, badPhases.StatusCode);
        Assert.Contains("rise", (await badPhases.Content.ReadFromJsonAsync(OperatorJsonContext.Default.ApiError))!.Message, StringComparison.Ordinal);
    }

    private async Task<ReleaseInfo> StartAsync(int devices, DeviceBehaviour behaviour, int mqttPort = 0)
    {
        _server = await TestServer.StartAsync(o =>
        {
            o.Mqtt.DeviceAuthentication = DeviceAuthentication.Open;
            o.Mqtt.Port = mqttPort;
        });
        var image = await TestImages.BuildAsync(_work, "demo", "2.0.0");
        var release = await _server.PublishAsync(image);
        for (var i = 0; i < devices; i++)
        {
            var device = await SimulatedDevice.ConnectAsync(_server.Host.MqttHost, _server.Host.MqttPort, _server.Host.Topics, $"dev-{i:D2}", "lab", OldImage, behaviour: behaviour);
            await device.PublishStatusAsync(UpdateState.Idle);
            _devices.Add(device);
        }

        await Eventually.GetAsync(
            () => _server.Http.GetFromJsonAsync(OperatorRoutes.Devices, OperatorJsonContext.Default.IReadOnlyListDeviceInfo)!,
            d => d!.Count == devices,
            "every device is registered");
        return release;
    }

    private async Task<RolloutInfo> StartRolloutAsync(ReleaseInfo release, double[] phases, double success, double failure = 0.5)
    {
        using var response = await _server.Http.PostAsJsonAsync(
            OperatorRoutes.Rollouts,
            new RolloutRequest { ManifestSha256 = release.ManifestSha256, Group = "lab", Phases = phases, SuccessThreshold = success, FailureThreshold = failure },
            OperatorJsonContext.Default.RolloutRequest);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync(OperatorJsonContext.Default.RolloutInfo))!;
    }

    private async Task<RolloutInfo> GetRolloutAsync(string id) =>
        (await _server.Http.GetFromJsonAsync(OperatorRoutes.Rollout(id), OperatorJsonContext.Default.RolloutInfo))!;

    private async Task<RolloutInfo> ActAsync(string id, RolloutAction action)
    {
        using var response = await _server.Http.PostAsync(OperatorRoutes.RolloutAction(id, action), null);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync(OperatorJsonContext.Default.RolloutInfo))!;
    }
}
