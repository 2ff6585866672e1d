namespace EdgeUpdater.Agent.Activation;

/// <summary>How to start this agent again (for <c>exec-workload</c>): the AOT binary itself, or <c>dotnet exec edgeupdater-agent.dll</c>.</summary>
internal static class AgentExecutable
{
    public const string AssemblyFileName = "edgeupdater-agent.dll";

    public static IReadOnlyList<string> Resolve()
    {
        var process = Environment.ProcessPath ?? throw new InvalidOperationException("the agent's own executable path is unknown");
        var name = Path.GetFileNameWithoutExtension(process);
        if (name == "edgeupdater-agent")
        {
            return [process];
        }

        // Under the dotnet host (development, tests) re-run the managed assembly the same way.
        var assembly = Path.Combine(AppContext.BaseDirectory, AssemblyFileName);
        var dotnet = name == "dotnet" ? process : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
        return [dotnet, "exec", assembly];
    }
}
