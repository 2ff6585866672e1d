using System.CommandLine;
using EdgeUpdater.Cli.Commands;

var root = new RootCommand("EdgeUpdater: build, sign, diff and publish SquashFS images; drive the fleet server and devices.");
root.Subcommands.Add(ImageCommands.Create());
root.Subcommands.Add(KeyCommands.Create());
root.Subcommands.Add(ReleaseCommands.Create());
root.Subcommands.Add(DeltaCommands.Create());
root.Subcommands.Add(ServerCommands.CreatePublish());
root.Subcommands.Add(ServerCommands.CreateRollout());
root.Subcommands.Add(DeviceCommands.Create());

var parsed = root.Parse(args);
if (parsed.Errors.Count > 0)
{
    // System.CommandLine would exit 1 here; a wrong command line has its own code (docs/cli.md).
    foreach (var error in parsed.Errors)
    {
        await Console.Error.WriteLineAsync(error.Message).ConfigureAwait(false);
    }

    await Console.Error.WriteLineAsync("Run with --help for usage.").ConfigureAwait(false);
    return ExitCodes.Usage;
}

return await parsed.InvokeAsync().ConfigureAwait(false);
