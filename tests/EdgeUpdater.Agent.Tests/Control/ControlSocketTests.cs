using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using EdgeUpdater.Agent.Tests.Fixtures;
using EdgeUpdater.Protocol;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Agent.Tests.Control;

/// <summary>The technician's path: the control socket of a real agent, with no server and no broker (install from a USB stick).</summary>
[Trait("requirement", "root")]
public sealed class ControlSocketTests
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(45);

    [Fact]
    public async Task Local_install_commits_then_rollback_returns_to_the_old_slot_all_over_the_socket()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        using var signer = new ReleaseSigner();
        await using var sandbox = new AgentSandbox(null, 0, null, signer);
        var port = FreePort.Next();
        var v1 = await TestImages.BuildAsync(sandbox.ImagesDirectory, new TestImageOptions { Version = "1.0.0", HttpPort = port });
        var v2 = await TestImages.BuildAsync(sandbox.ImagesDirectory, new TestImageOptions { Version = "2.0.0", HttpPort = port });
        var manifestPath = Path.Combine(sandbox.ImagesDirectory, "v2.manifest.json");
        await File.WriteAllBytesAsync(manifestPath, signer.Sign(v2, "2.0.0").Envelope, TestContext.Current.CancellationToken);
        sandbox.Provision(v1);
        sandbox.StartAgent();
        await WaitForAsync(sandbox, r => r.Targets is [var first, ..] && first.Slots[0].Version == "1.0.0", "1.0.0 adopted");

        // The socket is for root only.
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(sandbox.SocketPath));

        var install = await SendAsync(sandbox, new ControlRequest { Command = ControlCommand.Install, PayloadPath = v2, ManifestPath = manifestPath });
        Assert.True(install.Ok, install.Error);
        var committed = await WaitForAsync(sandbox, r => r.Status?.State == UpdateState.Committed, "committed");
        Assert.Equal("b", committed.Targets![0].CommittedSlot);
        Assert.Equal("2.0.0", committed.Targets[0].Slots[1].Version);

        var rollback = await SendAsync(sandbox, new ControlRequest { Command = ControlCommand.Rollback });
        Assert.True(rollback.Ok, rollback.Error);
        var rolledBack = await WaitForAsync(sandbox, r => r.Status?.State == UpdateState.RolledBack && r.Targets![0].CommittedSlot == "a", "rolled back to a");
        Assert.Contains("requested by a technician", rolledBack.Targets![0].LastError, StringComparison.Ordinal);
        Assert.Equal("1.0.0", await ServedVersionAsync(port));

        var history = await SendAsync(sandbox, new ControlRequest { Command = ControlCommand.History });
        Assert.Equal(
            [UpdateState.Committed, UpdateState.Verifying, UpdateState.Downloading, UpdateState.Installed, UpdateState.Trial, UpdateState.Committed, UpdateState.RolledBack],
            history.History!.Select(h => h.Event).ToList());

        var logs = await SendAsync(sandbox, new ControlRequest { Command = ControlCommand.Logs, Lines = 5 });
        Assert.Equal(5, logs.Logs!.Count);

        var nothing = await SendAsync(sandbox, new ControlRequest { Command = ControlCommand.Commit });
        Assert.False(nothing.Ok);
        Assert.Equal("no trial is running", nothing.Error);
    }

    [Fact]
    public async Task Local_delta_install_is_abandoned_when_the_delta_is_corrupt_and_commits_from_a_good_one()
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        using var signer = new ReleaseSigner();
        await using var sandbox = new AgentSandbox(null, 0, null, signer);
        var port = FreePort.Next();
        var v1 = await TestImages.BuildAsync(sandbox.ImagesDirectory, new TestImageOptions { Version = "1.0.0", HttpPort = port, SharedFillerBytes = 1 << 20 });
        var v2 = await TestImages.BuildAsync(sandbox.ImagesDirectory, new TestImageOptions { Version = "2.0.0", HttpPort = port, SharedFillerBytes = 1 << 20 });
        var delta = await TestDeltas.CreateAsync(v1, v2, Path.Combine(sandbox.ImagesDirectory, "v1-v2.eud"));
        var corrupt = await TestDeltas.FlipBytesAsync(delta);
        var manifestPath = Path.Combine(sandbox.ImagesDirectory, "v2.manifest.json");
        await File.WriteAllBytesAsync(manifestPath, signer.Sign(v2, "2.0.0").Envelope, TestContext.Current.CancellationToken);
        sandbox.Provision(v1);
        sandbox.StartAgent();
        await WaitForAsync(sandbox, r => r.Targets is [var first, ..] && first.Slots[0].Version == "1.0.0", "1.0.0 adopted");

        // A USB stick has no full image to fall back to: the update fails with the reason, slot a untouched.
        Assert.True((await SendAsync(sandbox, new ControlRequest { Command = ControlCommand.Install, PayloadPath = corrupt, ManifestPath = manifestPath })).Ok);
        var failed = await WaitForAsync(sandbox, r => r.Status?.State == UpdateState.Failed, "failed");
        Assert.StartsWith("delta refused (corrupted): ", failed.Targets![0].LastError, StringComparison.Ordinal);
        Assert.Equal("a", failed.Targets[0].CommittedSlot);
        Assert.Equal(TestDeltas.Sha256(v1), TestDeltas.Sha256(sandbox.SlotPath("a")));
        Assert.Equal("1.0.0", await ServedVersionAsync(port));

        Assert.True((await SendAsync(sandbox, new ControlRequest { Command = ControlCommand.Install, PayloadPath = delta, ManifestPath = manifestPath })).Ok);
        var committed = await WaitForAsync(sandbox, r => r.Status?.State == UpdateState.Committed, "committed");
        Assert.Equal(("b", "2.0.0"), (committed.Targets![0].CommittedSlot, committed.Targets[0].Slots[1].Version));
        Assert.Equal(TestDeltas.Sha256(v2), TestDeltas.Sha256(sandbox.SlotPath("b")));
        var history = await SendAsync(sandbox, new ControlRequest { Command = ControlCommand.History });
        Assert.Contains(history.History!, h => h.Message?.StartsWith($"slot b verified ({TestDeltas.Sha256(v2)}): built from the local delta {delta}", StringComparison.Ordinal) == true);
    }

    private static async Task<ControlResponse> WaitForAsync(AgentSandbox sandbox, Func<ControlResponse, bool> predicate, string what)
    {
        var deadline = DateTime.UtcNow + StepTimeout;
        ControlResponse? last = null;
        while (DateTime.UtcNow < deadline)
        {
            if (File.Exists(sandbox.SocketPath))
            {
                try
                {
                    last = await SendAsync(sandbox, new ControlRequest { Command = ControlCommand.Status });
                    if (predicate(last))
                    {
                        return last;
                    }
                }
                catch (SocketException)
                {
                }
            }

            await Task.Delay(200);
        }

        throw new TimeoutException($"no status {what}; last: {(last is null ? "none" : JsonSerializer.Serialize(last, ControlJsonContext.Default.ControlResponse))}\n{sandbox.Output}");
    }

    /// <summary>What the workload serves once it answers (it restarts after a rollback).</summary>
    private static async Task<string> ServedVersionAsync(int port)
    {
        using var http = new HttpClient();
        var deadline = DateTime.UtcNow + StepTimeout;
        while (true)
        {
            try
            {
                return await http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/version.txt"));
            }
            catch (HttpRequestException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }

    private static async Task<ControlResponse> SendAsync(AgentSandbox sandbox, ControlRequest request)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(sandbox.SocketPath));
        await using var stream = new NetworkStream(socket);
        await stream.WriteAsync(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(request, ControlJsonContext.Default.ControlRequest) + "\n"));
        using var reader = new StreamReader(stream);
        return JsonSerializer.Deserialize(await reader.ReadLineAsync() ?? "null", ControlJsonContext.Default.ControlResponse)!;
    }
}
