using System.Text.Json;

namespace EdgeUpdater.Agent.Config;

/// <summary>A configuration that cannot be used; the message names the field.</summary>
internal sealed class AgentConfigException : Exception
{
    public AgentConfigException(string message)
        : base(message)
    {
    }

    public AgentConfigException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public AgentConfigException()
    {
    }
}

/// <summary>Reads, binds and validates the configuration file.</summary>
/// <remarks>Files the configuration names (keys, key sets) are read by their users, which report the field.</remarks>
internal static class AgentConfigLoader
{
    public const string DefaultPath = "/etc/edgeupdater/agent.json";

    public static AgentConfig Load(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new AgentConfigException($"{path}: cannot read the configuration: {e.Message}", e);
        }

        return Parse(bytes, path);
    }

    public static AgentConfig Parse(ReadOnlySpan<byte> json, string source)
    {
        AgentConfig? config;
        try
        {
            config = JsonSerializer.Deserialize(json, AgentConfigJsonContext.Default.AgentConfig);
        }
        catch (JsonException e)
        {
            // JsonException.Path is "$.targets[0].slots" for the offending member.
            var where = string.IsNullOrEmpty(e.Path) ? "$" : e.Path;
            throw new AgentConfigException($"{source}: {where}: {e.Message}", e);
        }

        if (config is null)
        {
            throw new AgentConfigException($"{source}: the file holds null; expected a JSON object.");
        }

        var errors = AgentConfigValidator.Validate(config);
        if (errors.Count > 0)
        {
            throw new AgentConfigException($"{source}: invalid configuration:\n  " + string.Join("\n  ", errors));
        }

        return config;
    }
}
