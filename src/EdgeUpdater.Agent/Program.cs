using EdgeUpdater.Agent;
using EdgeUpdater.Agent.Activation;
using EdgeUpdater.Agent.Config;

// edgeupdater-agent [run] [--config PATH]   the daemon
// edgeupdater-agent check-config [--config PATH]
// edgeupdater-agent exec-workload ...       internal: the workload side of a re-exec (see WorkloadExec)
if (args.Length > 0 && args[0] == WorkloadExec.Verb)
{
    return WorkloadExec.Run(args);
}

var verb = args.Length > 0 && !args[0].StartsWith('-') ? args[0] : "run";
var configPath = AgentConfigLoader.DefaultPath;
for (var i = 0; i < args.Length; i++)
{
    if (args[i] is "--config" or "-c" && i + 1 < args.Length)
    {
        configPath = args[++i];
    }
    else if (args[i] is "--help" or "-h")
    {
        Console.WriteLine("usage: edgeupdater-agent [run|check-config] [--config PATH]   (default config: " + AgentConfigLoader.DefaultPath + ")");
        return 0;
    }
}

AgentConfig config;
try
{
    config = AgentConfigLoader.Load(configPath);
}
catch (AgentConfigException e)
{
    await Console.Error.WriteLineAsync(e.Message).ConfigureAwait(false);
    return 3;
}

try
{
    // Read the trust files now so that a bad key or key set stops start-up with the field named.
    AgentHost.LoadTrust(config.Trust!);
}
catch (AgentConfigException e)
{
    await Console.Error.WriteLineAsync($"{configPath}: {e.Message}").ConfigureAwait(false);
    return 3;
}

switch (verb)
{
    case "check-config":
        Console.WriteLine($"{configPath}: OK ({config.Targets.Count} target(s))");
        return 0;
    case "run":
        return await AgentHost.RunAsync(config).ConfigureAwait(false);
    default:
        await Console.Error.WriteLineAsync($"unknown command '{verb}'; try --help").ConfigureAwait(false);
        return 2;
}
