using System.CommandLine;

namespace EdgeUpdater.Cli.Commands;

/// <summary><c>edgeupdater keys</c>: Generate, show and rotate signing keys.</summary>
internal static class KeyCommands
{
    /// <summary>Builds the <c>keys</c> command group.</summary>
    public static Command Create()
    {
        var command = new Command("keys", "Generate, show and rotate signing keys.");
        return command;
    }
}
