using System.CommandLine;

namespace EdgeUpdater.Cli.Commands;

/// <summary><c>edgeupdater publish</c> and <c>edgeupdater rollout</c>: drive the fleet server over HTTP.</summary>
internal static class ServerCommands
{
    /// <summary>Builds <c>publish</c>.</summary>
    public static Command CreatePublish()
    {
        var command = new Command("publish", "Upload an image and its signed manifest to the server.");
        return command;
    }

    /// <summary>Builds the <c>rollout</c> command group.</summary>
    public static Command CreateRollout()
    {
        var command = new Command("rollout", "Start, watch, pause, resume and abort rollouts.");
        return command;
    }
}
