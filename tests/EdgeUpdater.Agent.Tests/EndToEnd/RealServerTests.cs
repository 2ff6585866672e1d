using System.Net.Http.Headers;
using System.Net.Http.Json;
using EdgeUpdater.Agent.Config;
using EdgeUpdater.Agent.Tests.Fixtures;
using EdgeUpdater.Protocol;
using EdgeUpdater.Server.Hosting;
using EdgeUpdater.Testing;
using Microsoft.Extensions.Logging;
using Xunit;

namespace EdgeUpdater.Agent.Tests.EndToEnd;

/// <summary>
/// Test 1 of the issue against the real fleet server (in-process, embedded MQTT broker with device
/// credentials and ACL, SQLite): publish both releases, roll out to the device's group, and see the
/// server record the device committed on the new version while the new workload serves. The update
/// travels as a delta the server generates on the device's request (from the image it runs, with its
/// codecs), applied from slot a into slot b.
/// </summary>
[Trait("requirement", "root")]
public sealed class RealServerTests
{
    private const string Token = "agent-test-operator-token-0123456789";
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Rollout_from_the_fleet_server_commits_on_the_device_and_the_server_sees_it()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        using var signer = new ReleaseSigner();
        using var data = new TempDirectory("agent-real-server");
        var (rootKey, keySetFile) = signer.WriteTrustFiles(data.Combine("trust"));
        await using var server = await ServerHost.StartAsync(new ServerOptions
        {
            DataDirectory = data.Combine("server"),
            Http = { Urls = "http://127.0.0.1:0" },
            Mqtt = { BindAddress = "127.0.0.1", Port = 0 },
            Operator = { Tokens = [Token] },
            Trust = { RootKeyFiles = [rootKey] },
            Rollouts = { TickInterval = TimeSpan.FromMilliseconds(200) },
            LogLevel = LogLevel.Warning,
        }, cancellationToken: TestContext.Current.CancellationToken);
        using var http = new HttpClient { BaseAddress = server.HttpUrl, Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);
        (await http.PostAsync(KeySetRoutes.Chain, new ByteArrayContent(await File.ReadAllBytesAsync(keySetFile, TestContext.Current.CancellationToken)), TestContext.Current.CancellationToken)).EnsureSuccessStatusCode();

        await using var sandbox = new AgentSandbox("127.0.0.1", server.MqttPort, server.HttpUrl.ToString(), signer);
        using var credentialsResponse = await http.PutAsJsonAsync(OperatorRoutes.DeviceCredentials(sandbox.DeviceId), new DeviceCredentialRequest { Group = "lab" }, OperatorJsonContext.Default.DeviceCredentialRequest, TestContext.Current.CancellationToken);
        credentialsResponse.EnsureSuccessStatusCode();
        var credentials = (await credentialsResponse.Content.ReadFromJsonAsync(OperatorJsonContext.Default.DeviceCredentialInfo, TestContext.Current.CancellationToken))!;
        sandbox.Config = sandbox.Config with { Broker = sandbox.Config.Broker! with { Username = credentials.DeviceId, Password = credentials.Password } };

        var port = FreePort.Next();
        var v1 = await TestImages.BuildAsync(sandbox.ImagesDirectory, new TestImageOptions { Version = "1.0.0", HttpPort = port, SharedFillerBytes = 1 << 20 });
        var v2 = await TestImages.BuildAsync(sandbox.ImagesDirectory, new TestImageOptions { Version = "2.0.0", HttpPort = port, SharedFillerBytes = 1 << 20 });

        // The server holds the image the device runs (1.0.0), so it can make the delta from it.
        await PublishAsync(http, signer.Sign(v1, "1.0.0"), v1);
        var manifest = signer.Sign(v2, "2.0.0");
        await PublishAsync(http, manifest, v2);

        sandbox.Provision(v1);
        sandbox.StartAgent();
        await WaitForDeviceAsync(http, sandbox, d => d.Online && d.State == UpdateState.Idle, "online and idle on 1.0.0");

        using var started = await http.PostAsJsonAsync(OperatorRoutes.Rollouts, new RolloutRequest { ManifestSha256 = manifest.Sha256, Group = "lab", Target = "app", Phases = [100] }, OperatorJsonContext.Default.RolloutRequest, TestContext.Current.CancellationToken);
        Assert.True(started.IsSuccessStatusCode, await started.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        var rollout = (await started.Content.ReadFromJsonAsync(OperatorJsonContext.Default.RolloutInfo, TestContext.Current.CancellationToken))!;

        var device = await WaitForDeviceAsync(http, sandbox, d => d.State == UpdateState.Committed, "committed");
        Assert.Equal(rollout.Id, device.RolloutId);
        var deadline = DateTime.UtcNow + StepTimeout;
        RolloutInfo? info;
        do
        {
            info = await http.GetFromJsonAsync(OperatorRoutes.Rollout(rollout.Id), OperatorJsonContext.Default.RolloutInfo, TestContext.Current.CancellationToken);
            await Task.Delay(200, TestContext.Current.CancellationToken);
        }
        while (info!.Succeeded < 1 && DateTime.UtcNow < deadline);

        Assert.Equal(1, info.Succeeded);
        using var workload = new HttpClient();
        Assert.Equal("2.0.0", await workload.GetStringAsync(new Uri($"http://127.0.0.1:{port}/version.txt"), TestContext.Current.CancellationToken));

        // It came as a delta a fraction of the image's size, rebuilt into slot b byte for byte; slot a only read.
        var state = sandbox.ReadState();
        var installed = state.History.Last(h => h.Event == UpdateState.Installed).Message!;
        var transfer = System.Text.RegularExpressions.Regex.Match(installed, @"from a delta: (\d+) bytes downloaded for a (\d+)-byte image");
        Assert.True(transfer.Success, installed + "\n" + sandbox.Output);
        Assert.Equal(manifest.ImageSize, long.Parse(transfer.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(long.Parse(transfer.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) * 4 < manifest.ImageSize, installed);
        Assert.Equal(manifest.ImageSha256, TestDeltas.Sha256(sandbox.SlotPath("b")));
        Assert.Equal(TestDeltas.Sha256(v1), TestDeltas.Sha256(sandbox.SlotPath("a")));
    }

    private static async Task PublishAsync(HttpClient http, SignedManifest manifest, string image)
    {
        using var content = new MultipartFormDataContent
        {
            { new ByteArrayContent(manifest.Envelope), "manifest", "manifest" },
            { new ByteArrayContent(await File.ReadAllBytesAsync(image, TestContext.Current.CancellationToken)), "image", "image.sqfs" },
        };
        using var published = await http.PostAsync(OperatorRoutes.Releases, content, TestContext.Current.CancellationToken);
        Assert.True(published.IsSuccessStatusCode, await published.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
    }

    private static async Task<DeviceInfo> WaitForDeviceAsync(HttpClient http, AgentSandbox sandbox, Func<DeviceInfo, bool> predicate, string what)
    {
        var deadline = DateTime.UtcNow + StepTimeout;
        DeviceInfo? last = null;
        while (DateTime.UtcNow < deadline)
        {
            using var response = await http.GetAsync(OperatorRoutes.Device(sandbox.DeviceId));
            if (response.IsSuccessStatusCode)
            {
                last = await response.Content.ReadFromJsonAsync(OperatorJsonContext.Default.DeviceInfo);
                if (last is not null && predicate(last))
                {
                    return last;
                }
            }

            await Task.Delay(200);
        }

        throw new TimeoutException($"the server did not see the device {what}; last: {last}\n{sandbox.Output}");
    }
}
