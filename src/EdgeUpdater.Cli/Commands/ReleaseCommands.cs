using System.CommandLine;

namespace EdgeUpdater.Cli.Commands;

/// <summary><c>edgeupdater release</c>: Sign and verify release manifests.</summary>
internal static class ReleaseCommands
{
    /// <summary>Builds the <c>release</c> command group.</summary>
    public static Command Create()
    {
        var command = new Command("release", "Sign and verify release manifests.");
        return command;
    }
}
