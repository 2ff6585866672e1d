using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using EdgeUpdater.Agent.Config;
using EdgeUpdater.Agent.Coordinator;
using EdgeUpdater.Agent.State;
using EdgeUpdater.Protocol;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeUpdater.Agent.Control;

/// <summary>
/// The local control API: line-delimited JSON on a Unix socket in a root-only directory, socket mode
/// 0600. Status and history are answered from the last published state; install, rollback and commit
/// go through the coordinator.
/// </summary>
internal sealed partial class ControlServer : BackgroundService
{
    private const int MaxRequestBytes = 64 * 1024;
    private readonly AgentConfig _config;
    private readonly UpdateCoordinator _coordinator;
    private readonly StatusHub _hub;
    private readonly ILogger<ControlServer> _logger;

    public ControlServer(AgentConfig config, UpdateCoordinator coordinator, StatusHub hub, ILogger<ControlServer> logger)
    {
        _config = config;
        _coordinator = coordinator;
        _hub = hub;
        _logger = logger;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var path = _config.ControlSocket;
        var directory = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(directory))
        {
            // A directory of our own is made root-only; an existing one (say /run) is left as it is:
            // the socket's own mode 0600 already keeps others out (connecting needs write permission).
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        if (File.Exists(path))
        {
            File.Delete(path);
        }

        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        listener.Listen(8);
        LogListening(path);
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var connection = await listener.AcceptAsync(stoppingToken).ConfigureAwait(false);
                _ = ServeAsync(connection, stoppingToken);
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            File.Delete(path);
        }
    }

    private async Task ServeAsync(Socket connection, CancellationToken cancellationToken)
    {
        using (connection)
        {
            var stream = new NetworkStream(connection, ownsSocket: false);
            await using (stream.ConfigureAwait(false))
            {
                using var reader = new StreamReader(stream, Encoding.UTF8, false, 4096, leaveOpen: true);
                while (!cancellationToken.IsCancellationRequested)
                {
                    string? line;
                    try
                    {
                        line = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false);
                    }
                    catch (IOException)
                    {
                        return;
                    }

                    if (line is null)
                    {
                        return;
                    }

                    ControlResponse response;
                    if (line.Length > MaxRequestBytes)
                    {
                        response = Error($"request longer than {MaxRequestBytes} bytes");
                    }
                    else
                    {
                        response = await HandleLineAsync(line, cancellationToken).ConfigureAwait(false);
                    }

                    var bytes = JsonSerializer.SerializeToUtf8Bytes(response, ControlJsonContext.Default.ControlResponse);
                    try
                    {
                        await stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
                        await stream.WriteAsync("\n"u8.ToArray(), cancellationToken).ConfigureAwait(false);
                    }
                    catch (IOException)
                    {
                        return;
                    }
                }
            }
        }
    }

    private async Task<ControlResponse> HandleLineAsync(string line, CancellationToken cancellationToken)
    {
        ControlRequest request;
        try
        {
            request = JsonSerializer.Deserialize(line, ControlJsonContext.Default.ControlRequest) ?? throw new JsonException("null request");
            ProtocolVersion.Check(request.Schema, "control request");
        }
        catch (Exception e) when (e is JsonException or ProtocolException)
        {
            return Error($"malformed request: {e.Message}");
        }

        LogRequest(request.Command.ToString());
        switch (request.Command)
        {
            case ControlCommand.Status:
                return new ControlResponse { Ok = true, Status = _hub.Current, Targets = DescribeTargets() };
            case ControlCommand.History:
                return new ControlResponse
                {
                    Ok = true,
                    History = [.. (_hub.State?.History ?? []).Where(h => request.Target is null || h.Target == request.Target).Select(h => new ControlHistoryEntry
                    {
                        Timestamp = h.Timestamp,
                        Target = h.Target,
                        Event = h.Event,
                        Version = h.Version,
                        Slot = h.Slot,
                        Message = h.Message,
                    })],
                };
            case ControlCommand.Logs:
                return new ControlResponse { Ok = true, Logs = ReadLogTail(Math.Clamp(request.Lines ?? 100, 1, 10_000)) };
            case ControlCommand.CheckNow:
                _coordinator.CheckNow();
                return new ControlResponse { Ok = true, Message = "checking for updates" };
            case ControlCommand.Commit:
                {
                    var error = _coordinator.SetTrialVerdict(request.Target, commit: true, "committed by a technician through the control socket");
                    return error is null ? new ControlResponse { Ok = true, Message = "trial committed" } : Error(error);
                }

            case ControlCommand.Rollback:
                {
                    if (_coordinator.IsTrialRunning(request.Target))
                    {
                        var verdictError = _coordinator.SetTrialVerdict(request.Target, commit: false, "rolled back by a technician through the control socket");
                        return verdictError is null ? new ControlResponse { Ok = true, Message = "trial rolled back" } : Error(verdictError);
                    }

                    var done = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
                    _coordinator.Post(new RollbackRequest(request.Target, "a technician (control socket)", null, done));
                    var error = await WaitAsync(done.Task, cancellationToken).ConfigureAwait(false);
                    return error is null ? new ControlResponse { Ok = true, Message = "rolled back", Status = _hub.Current } : Error(error);
                }

            case ControlCommand.Install:
                {
                    if (request.PayloadPath is null || request.ManifestPath is null || !Path.IsPathRooted(request.PayloadPath) || !Path.IsPathRooted(request.ManifestPath))
                    {
                        return Error("install needs absolute payloadPath and manifestPath");
                    }

                    var accepted = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
                    _coordinator.Post(new LocalInstallRequest(request.Target, request.PayloadPath, request.ManifestPath, accepted));
                    var error = await WaitAsync(accepted.Task, cancellationToken).ConfigureAwait(false);
                    return error is null ? new ControlResponse { Ok = true, Message = "install started; follow it with 'device status'" } : Error(error);
                }

            default:
                return Error($"unknown command {request.Command}");
        }
    }

    // A request queued behind a long step (a trial) must not hang the client forever.
    private static async Task<string?> WaitAsync(Task<string?> task, CancellationToken cancellationToken)
    {
        try
        {
            return await task.WaitAsync(TimeSpan.FromMinutes(10), cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return "the agent is busy; the request stays queued";
        }
    }

    private List<ControlTargetDetail> DescribeTargets()
    {
        var state = _hub.State;
        if (state is null)
        {
            return [];
        }

        return [.. state.Targets.Select(t =>
        {
            var config = _config.Targets.FirstOrDefault(c => c.Name == t.Name);
            return new ControlTargetDetail
            {
                Name = t.Name,
                Kind = t.Kind,
                State = t.Phase,
                CommittedSlot = t.CommittedSlot,
                PendingSlot = t.Pending?.Slot,
                LastError = t.LastError,
                Slots = [Describe("a", t.A, config?.Slots?.A), Describe("b", t.B, config?.Slots?.B)],
            };
        })];
    }

    private static ControlSlotDetail Describe(string name, SlotRecord record, string? path) => new()
    {
        Name = name,
        Path = path,
        State = record.State.ToString().ToLowerInvariant(),
        ImageName = record.Name,
        Version = record.Version,
        ImageSha256 = record.ImageSha256,
    };

    private List<string> ReadLogTail(int lines)
    {
        var file = _config.Log.File;
        if (file is null || !File.Exists(file))
        {
            return [$"(no log file: {file ?? "logging to the console only"})"];
        }

        // Shared read: Serilog keeps the file open for writing.
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        var tail = new Queue<string>();
        while (reader.ReadLine() is { } line)
        {
            tail.Enqueue(line);
            if (tail.Count > lines)
            {
                tail.Dequeue();
            }
        }

        return [.. tail];
    }

    private static ControlResponse Error(string message) => new() { Ok = false, Error = message };

    [LoggerMessage(Level = LogLevel.Information, Message = "Control API listening on {Path}")]
    private partial void LogListening(string path);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Control request {Command}")]
    private partial void LogRequest(string command);
}
