using System.Reflection;
using System.Runtime.InteropServices;

namespace EdgeUpdater.Agent;

/// <summary>What this agent build reports about itself.</summary>
internal static class AgentIdentity
{
    public static string Version { get; } =
        typeof(AgentIdentity).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <summary>Debian-style architecture name: amd64 is reported as x64, like .NET runtime identifiers.</summary>
    public static string Architecture { get; } = RuntimeInformation.OSArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.X64 => "x64",
        System.Runtime.InteropServices.Architecture.Arm64 => "arm64",
        System.Runtime.InteropServices.Architecture.Arm => "arm",
        var other => other.ToString().ToLowerInvariant(),
    };
}
