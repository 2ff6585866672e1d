using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using EdgeUpdater.Protocol;

namespace EdgeUpdater.Cli.Commands;

/// <summary><c>edgeupdater device</c>: Control the agent on this device through its local socket.</summary>
internal static class DeviceCommands
{
    /// <summary>Builds the <c>device</c> command group.</summary>
    public static Command Create()
    {
        var command = new Command("device", "Control the agent on this device through its local socket.");
        command.Subcommands.Add(Simple("status", "Show the device, its targets and both slots of each.", ControlCommand.Status, PrintStatusAsync));
        command.Subcommands.Add(Simple("history", "Show past updates, rollbacks and failures.", ControlCommand.History, PrintHistoryAsync));
        command.Subcommands.Add(Simple("rollback", "Make the other slot the default again (or fail a running trial).", ControlCommand.Rollback, PrintMessageAsync));
        command.Subcommands.Add(Simple("commit", "Accept the running trial now, without waiting for its health check.", ControlCommand.Commit, PrintMessageAsync));
        command.Subcommands.Add(Simple("check-now", "Ask for pending updates now; retry a waiting download at once.", ControlCommand.CheckNow, PrintMessageAsync));
        command.Subcommands.Add(CreateLogs());
        command.Subcommands.Add(CreateInstall());
        return command;
    }

    private static Option<string> SocketOption() => new("--socket")
    {
        Description = $"The agent's control socket (default {ControlApi.DefaultSocketPath}, or $EDGEUPDATER_AGENT_SOCKET).",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("EDGEUPDATER_AGENT_SOCKET") ?? ControlApi.DefaultSocketPath,
    };

    private static Option<string?> TargetOption() => new("--target", "-t") { Description = "Target name; needed when the device has several." };

    private static Option<bool> JsonOption() => new("--json") { Description = "Print the agent's answer as JSON." };

    private static Command Simple(string name, string description, ControlCommand kind, Func<TextWriter, ControlResponse, Task> print)
    {
        var socket = SocketOption();
        var target = TargetOption();
        var json = JsonOption();
        var command = new Command(name, description) { socket, target, json };
        command.SetAction((parse, cancellationToken) => RunAsync(parse, async output =>
        {
            var response = await DeviceClient.SendAsync(parse.GetValue(socket)!, new ControlRequest { Command = kind, Target = parse.GetValue(target) }, cancellationToken).ConfigureAwait(false);
            await WriteAsync(output, response, parse.GetValue(json), print).ConfigureAwait(false);
        }));
        return command;
    }

    private static Command CreateLogs()
    {
        var socket = SocketOption();
        var lines = new Option<int>("--lines", "-n") { Description = "How many lines from the end.", DefaultValueFactory = _ => 100 };
        var json = JsonOption();
        var command = new Command("logs", "Show the last lines of the agent's log.") { socket, lines, json };
        command.SetAction((parse, cancellationToken) => RunAsync(parse, async output =>
        {
            var response = await DeviceClient.SendAsync(parse.GetValue(socket)!, new ControlRequest { Command = ControlCommand.Logs, Lines = parse.GetValue(lines) }, cancellationToken).ConfigureAwait(false);
            await WriteAsync(output, response, parse.GetValue(json), async (o, r) =>
            {
                foreach (var line in r.Logs ?? [])
                {
                    await o.WriteLineAsync(line).ConfigureAwait(false);
                }
            }).ConfigureAwait(false);
        }));
        return command;
    }

    private static Command CreateInstall()
    {
        var payload = new Argument<string>("image-or-delta") { Description = "Image (or delta from the running image) on this device, e.g. on a USB stick." };
        var manifest = new Option<string>("--manifest", "-m") { Description = "The signed manifest of the image.", Required = true };
        var socket = SocketOption();
        var target = TargetOption();
        var json = JsonOption();
        var command = new Command("install", "Install an image from local files, without the server; follow it with 'device status'.") { payload, manifest, socket, target, json };
        command.SetAction((parse, cancellationToken) => RunAsync(parse, async output =>
        {
            // The agent runs elsewhere: hand it absolute paths, and fail here on a typo.
            var payloadPath = Path.GetFullPath(parse.GetValue(payload)!);
            var manifestPath = Path.GetFullPath(parse.GetValue(manifest)!);
            foreach (var path in new[] { payloadPath, manifestPath })
            {
                if (!File.Exists(path))
                {
                    throw new CommandUsageException($"{path} does not exist");
                }
            }

            var request = new ControlRequest { Command = ControlCommand.Install, Target = parse.GetValue(target), PayloadPath = payloadPath, ManifestPath = manifestPath };
            var response = await DeviceClient.SendAsync(parse.GetValue(socket)!, request, cancellationToken).ConfigureAwait(false);
            await WriteAsync(output, response, parse.GetValue(json), PrintMessageAsync).ConfigureAwait(false);
        }));
        return command;
    }

    private static Task<int> RunAsync(ParseResult parse, Func<TextWriter, Task> body) => KeyMaterial.RunAsync(parse, async output =>
    {
        try
        {
            await body(output).ConfigureAwait(false);
            return ExitCodes.Ok;
        }
        catch (DeviceRefusedException e)
        {
            await parse.InvocationConfiguration.Error.WriteLineAsync($"edgeupdater: the agent refused: {e.Message}").ConfigureAwait(false);
            return ExitCodes.Rejected;
        }
    });

    private static async Task WriteAsync(TextWriter output, ControlResponse response, bool json, Func<TextWriter, ControlResponse, Task> print)
    {
        if (json)
        {
            await output.WriteLineAsync(JsonSerializer.Serialize(response, ControlJsonContext.Default.ControlResponse)).ConfigureAwait(false);
        }
        else
        {
            await print(output, response).ConfigureAwait(false);
        }
    }

    private static async Task PrintMessageAsync(TextWriter output, ControlResponse response) =>
        await output.WriteLineAsync(response.Message ?? "done").ConfigureAwait(false);

    private static async Task PrintStatusAsync(TextWriter output, ControlResponse response)
    {
        if (response.Status is { } status)
        {
            await output.WriteLineAsync($"device {status.DeviceId} (group {status.Group ?? "-"}, hardware {status.Hardware}, {status.Architecture}), agent {status.AgentVersion}: {Name(status.State)}").ConfigureAwait(false);
        }

        foreach (var target in response.Targets ?? [])
        {
            await output.WriteLineAsync($"target {target.Name} ({target.Kind}): {Name(target.State)}, committed slot {target.CommittedSlot}{(target.PendingSlot is null ? string.Empty : $", writing/trying slot {target.PendingSlot}")}").ConfigureAwait(false);
            foreach (var slot in target.Slots)
            {
                var sha = slot.ImageSha256 is null ? "-" : slot.ImageSha256[..12];
                await output.WriteLineAsync($"  slot {slot.Name}  {slot.State,-9} {slot.ImageName ?? "-"} {slot.Version ?? "-"}  {sha}  {slot.Path}").ConfigureAwait(false);
            }

            if (target.LastError is not null)
            {
                await output.WriteLineAsync($"  last error: {target.LastError}").ConfigureAwait(false);
            }
        }
    }

    private static async Task PrintHistoryAsync(TextWriter output, ControlResponse response)
    {
        foreach (var entry in response.History ?? [])
        {
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{entry.Timestamp:yyyy-MM-dd HH:mm:ss}Z  {entry.Target,-10} {Name(entry.Event),-12} {entry.Version ?? "-",-10} slot {entry.Slot ?? "-"}  {entry.Message}")).ConfigureAwait(false);
        }
    }

    private static string Name(UpdateState state) => JsonSerializer.Serialize(state, ProtocolJsonContext.Default.UpdateState).Trim('"');
}
