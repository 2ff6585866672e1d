using System.CommandLine;

namespace EdgeUpdater.Cli.Commands;

/// <summary><c>edgeupdater delta</c>: Create, apply and inspect SquashFS-aware deltas.</summary>
internal static class DeltaCommands
{
    /// <summary>Builds the <c>delta</c> command group.</summary>
    public static Command Create()
    {
        var command = new Command("delta", "Create, apply and inspect SquashFS-aware deltas.");
        return command;
    }
}
