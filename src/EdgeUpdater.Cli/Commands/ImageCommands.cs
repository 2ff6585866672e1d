using System.CommandLine;

namespace EdgeUpdater.Cli.Commands;

/// <summary><c>edgeupdater image</c>: Build, inspect, list, read and extract SquashFS images.</summary>
internal static class ImageCommands
{
    /// <summary>Builds the <c>image</c> command group.</summary>
    public static Command Create()
    {
        var command = new Command("image", "Build, inspect, list, read and extract SquashFS images.");
        return command;
    }
}
