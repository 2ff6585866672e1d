using System.CommandLine;

namespace EdgeUpdater.Cli.Commands;

/// <summary><c>edgeupdater device</c>: Control the agent on this device through its local socket.</summary>
internal static class DeviceCommands
{
    /// <summary>Builds the <c>device</c> command group.</summary>
    public static Command Create()
    {
        var command = new Command("device", "Control the agent on this device through its local socket.");
        return command;
    }
}
