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
        await using var env = await Environment.CreateAsync();
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
        var states = env.Probe.Statuses.Select(s => s.State).Distinct().ToList();
        Assert.Equal([UpdateState.Verifying, UpdateState.Downloading, UpdateState.Installing, UpdateState.Installed, UpdateState.Trial, UpdateState.Committed], states.SkipWhile(s => s != UpdateState.Verifying).ToList());

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
        await using var env = await Environment.CreateAsync();
        var (v1, v2) = await env.BuildPairAsync(v2Health: TestImages.FailingCommandHealth());
        env.Sandbox.Provision(v1);
        env.Sandbox.StartAgent();
        await env.WaitForAsync(s => s.Targets.Any(t => t.Version == "1.0.0"), StepTimeout, "with 1.0.0 running");

        await env.Probe.PublishNoticeAsync(env.Sandbox.DeviceId, env.Publish(v2, "2.0.0"));
        var rolledBack = await env.WaitForAsync(s => s.State == UpdateState.RolledBack, StepTimeout, "rolled-back");

        Assert.True(rolledBack.LastError?.Contains("health command '/bin/sh -c exit 1' did not pass within 3 s", StringComparison.Ordinal), env.Sandbox.Output);
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
        await using var env = await Environment.CreateAsync();
        var silentPort = FreePort.Next();
        var (v1, v2) = await env.BuildPairAsync(v2Health: new System.Text.Json.Nodes.JsonObject
        {
            ["http"] = $"http://127.0.0.1:{silentPort}/",
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

    /// <summary>Broker, repository, signer, sandbox and status probe for one test.</summary>
    internal sealed class Environment : IAsyncDisposable
    {
        private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(5) };

        private Environment(MosquittoBroker broker, RepositoryServer server, StatusProbe probe, ReleaseSigner signer, AgentSandbox sandbox)
        {
            Broker = broker;
            Server = server;
            Probe = probe;
            Signer = signer;
            Sandbox = sandbox;
            HttpPort = FreePort.Next();
        }

        public MosquittoBroker Broker { get; }

        public RepositoryServer Server { get; }

        public StatusProbe Probe { get; }

        public ReleaseSigner Signer { get; }

        public AgentSandbox Sandbox { get; }

        public int HttpPort { get; }

        public static async Task<Environment> CreateAsync()
        {
            var broker = await MosquittoBroker.StartAsync();
            var server = await RepositoryServer.StartAsync();
            var probe = await StatusProbe.ConnectAsync(broker.Port);
            var signer = new ReleaseSigner();
            var sandbox = new AgentSandbox("127.0.0.1", broker.Port, server.Url, signer.PublicKeyBase64);
            return new Environment(broker, server, probe, signer, sandbox);
        }

        public async Task<(string V1, string V2)> BuildPairAsync(System.Text.Json.Nodes.JsonObject? v2Health = null, int v2Filler = 0)
        {
            var v1 = await TestImages.BuildAsync(Sandbox.ImagesDirectory, new TestImageOptions { Version = "1.0.0", HttpPort = HttpPort });
            var v2 = await TestImages.BuildAsync(Sandbox.ImagesDirectory, new TestImageOptions { Version = "2.0.0", HttpPort = HttpPort, HealthCheck = v2Health, FillerBytes = v2Filler });
            return (v1, v2);
        }

        public SignedManifest Publish(string image, string version, bool allowDowngrade = false)
        {
            var manifest = Signer.Sign(image, version, allowDowngrade: allowDowngrade);
            Server.AddRelease(manifest, image);
            return manifest;
        }

        /// <summary>Waits for a status; on time-out the message carries everything the agents printed.</summary>
        public async Task<DeviceStatus> WaitForAsync(Func<DeviceStatus, bool> predicate, TimeSpan timeout, string what)
        {
            try
            {
                return await Probe.WaitForAsync(predicate, timeout, what);
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException($"{e.Message}\nagent output:\n{Sandbox.Output}", e);
            }
        }

        /// <summary>Waits until the running workload serves <paramref name="expected"/> at /version.txt; returns what it served last.</summary>
        public async Task<string> WaitForServedVersionAsync(string expected, TimeSpan? timeout = null)
        {
            var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
            var last = "(nothing)";
            while (DateTime.UtcNow < deadline)
            {
                try
                {
                    last = await _http.GetStringAsync(new Uri($"http://127.0.0.1:{HttpPort}/version.txt"));
                    if (last == expected)
                    {
                        return last;
                    }
                }
                catch (HttpRequestException e)
                {
                    last = e.Message;
                }

                await Task.Delay(100);
            }

            return last;
        }

        public async ValueTask DisposeAsync()
        {
            await Sandbox.DisposeAsync();
            await Probe.DisposeAsync();
            await Server.DisposeAsync();
            await Broker.DisposeAsync();
            Signer.Dispose();
            _http.Dispose();
        }
    }
}
