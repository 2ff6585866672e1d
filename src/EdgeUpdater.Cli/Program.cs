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
return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
