using System.CommandLine;
using System.Net.Sockets;
using System.Text.Json;
using EdgeUpdater.Cli.Commands;
using EdgeUpdater.Protocol;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Cli.Tests;

/// <summary>
/// <c>edgeupdater device ...</c> against a scripted control socket: what goes over the wire, what is
/// printed, which exit code. The real agent behind the socket is tested in EdgeUpdater.Agent.Tests.
/// </summary>
public sealed class DeviceCommandsTests : IDisposable
{
    private readonly TempDirectory _dir = new("cli-device");

    private string SocketPath => _dir.Combine("agent.sock");

    [Fact]
    public async Task Status_prints_device_targets_and_slots()
    {
        var response = new ControlResponse
        {
            Ok = true,
            Status = new DeviceStatus { DeviceId = "dev-1", Group = "lab", Hardware = "rpi4", Architecture = "arm64", AgentVersion = "0.1.0", State = UpdateState.Committed },
            Targets =
            [
                new ControlTargetDetail
                {
                    Name = "app",
                    Kind = "app",
                    State = UpdateState.Committed,
                    CommittedSlot = "b",
                    Slots =
                    [
                        new ControlSlotDetail { Name = "a", State = "good", ImageName = "demo", Version = "1.0.0", ImageSha256 = new string('a', 64), Path = "/data/a.sqfs" },
                        new ControlSlotDetail { Name = "b", State = "good", ImageName = "demo", Version = "2.0.0", ImageSha256 = new string('b', 64), Path = "/data/b.sqfs" },
                    ],
                },
            ],
        };
        using var agent = ScriptedAgent.Start(SocketPath, response);

        var (exit, output, error) = await RunAsync("device", "status", "--socket", SocketPath);

        Assert.True(exit == 0, error);
        Assert.Equal(ControlCommand.Status, (await agent.Request).Command);
        Assert.Contains("device dev-1 (group lab, hardware rpi4, arm64), agent 0.1.0: committed", output, StringComparison.Ordinal);
        Assert.Contains("target app (app): committed, committed slot b", output, StringComparison.Ordinal);
        Assert.Contains("slot b  good      demo 2.0.0  bbbbbbbbbbbb  /data/b.sqfs", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Install_sends_absolute_paths_and_the_target()
    {
        await File.WriteAllTextAsync(_dir.Combine("image.sqfs"), "x", TestContext.Current.CancellationToken);
        await File.WriteAllTextAsync(_dir.Combine("image.manifest"), "{}", TestContext.Current.CancellationToken);
        using var agent = ScriptedAgent.Start(SocketPath, new ControlResponse { Ok = true, Message = "install started" });
        var previous = Environment.CurrentDirectory;
        Environment.CurrentDirectory = _dir.Path;
        try
        {
            var (exit, output, error) = await RunAsync("device", "install", "image.sqfs", "--manifest", "image.manifest", "--target", "app", "--socket", SocketPath);
            Assert.True(exit == 0, error);
            Assert.Equal("install started\n", output);
        }
        finally
        {
            Environment.CurrentDirectory = previous;
        }

        var request = await agent.Request;
        Assert.Equal((ControlCommand.Install, "app", _dir.Combine("image.sqfs"), _dir.Combine("image.manifest")), (request.Command, request.Target, request.PayloadPath, request.ManifestPath));
    }

    [Fact]
    public async Task A_refusal_exits_with_the_rejected_code_and_the_agents_reason()
    {
        using var agent = ScriptedAgent.Start(SocketPath, new ControlResponse { Ok = false, Error = "slot a holds no good image (bad); nothing to roll back to" });
        var (exit, _, error) = await RunAsync("device", "rollback", "--socket", SocketPath);
        Assert.Equal(ExitCodes.Rejected, exit);
        Assert.Contains("the agent refused: slot a holds no good image", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task No_agent_listening_is_a_failure_that_says_where_it_looked()
    {
        var (exit, _, error) = await RunAsync("device", "status", "--socket", SocketPath);
        Assert.Equal(ExitCodes.Failure, exit);
        Assert.Contains($"cannot reach the agent at {SocketPath}", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Install_of_a_missing_file_is_a_usage_error()
    {
        var (exit, _, error) = await RunAsync("device", "install", _dir.Combine("nope.sqfs"), "--manifest", _dir.Combine("nope.json"), "--socket", SocketPath);
        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("nope.sqfs does not exist", error, StringComparison.Ordinal);
    }

    private static async Task<(int Exit, string Output, string Error)> RunAsync(params string[] args)
    {
        var root = new RootCommand("edgeupdater (test)");
        root.Subcommands.Add(DeviceCommands.Create());
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await root.Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, TestContext.Current.CancellationToken);
        return (exit, output.ToString(), error.ToString());
    }

    public void Dispose() => _dir.Dispose();

    /// <summary>Answers one control request with a canned response and keeps the request for assertions.</summary>
    private sealed class ScriptedAgent : IDisposable
    {
        private readonly Socket _listener;

        private ScriptedAgent(Socket listener, Task<ControlRequest> request)
        {
            _listener = listener;
            Request = request;
        }

        public Task<ControlRequest> Request { get; }

        public static ScriptedAgent Start(string path, ControlResponse response)
        {
            var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixDomainSocketEndPoint(path));
            listener.Listen(1);
            return new ScriptedAgent(listener, ServeAsync(listener, response));
        }

        private static async Task<ControlRequest> ServeAsync(Socket listener, ControlResponse response)
        {
            using var connection = await listener.AcceptAsync();
            await using var stream = new NetworkStream(connection);
            using var reader = new StreamReader(stream);
            var line = await reader.ReadLineAsync() ?? throw new InvalidOperationException("no request");
            var request = JsonSerializer.Deserialize(line, ControlJsonContext.Default.ControlRequest)!;
            await stream.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(response, ControlJsonContext.Default.ControlResponse));
            await stream.WriteAsync("\n"u8.ToArray());
            return request;
        }

        public void Dispose() => _listener.Dispose();
    }
}
