using Microsoft.Extensions.Configuration;

namespace EdgeUpdater.Server.Hosting;

/// <summary>
/// Builds <see cref="ServerOptions"/> from an optional JSON file (<c>--config</c>), then the command
/// line on top. Command-line switches are the short names below or any full key
/// (<c>--Mqtt:Port 1884</c>).
/// </summary>
internal static class ServerOptionsLoader
{
    /// <summary>Short switches and the configuration keys they set. List-valued keys may repeat.</summary>
    private static readonly Dictionary<string, string> Switches = new(StringComparer.Ordinal)
    {
        ["--data-dir"] = "DataDirectory",
        ["--urls"] = "Http:Urls",
        ["--mqtt-mode"] = "Mqtt:Mode",
        ["--mqtt-port"] = "Mqtt:Port",
        ["--mqtt-bind"] = "Mqtt:BindAddress",
        ["--mqtt-host"] = "Mqtt:Host",
        ["--mqtt-username"] = "Mqtt:Username",
        ["--mqtt-password"] = "Mqtt:Password",
        ["--mqtt-prefix"] = "Mqtt:TopicPrefix",
        ["--device-auth"] = "Mqtt:DeviceAuthentication",
        ["--database"] = "Database:Provider",
        ["--connection-string"] = "Database:ConnectionString",
        ["--trusted-root"] = "Trust:RootKeyFiles",
        ["--operator-token"] = "Operator:Tokens",
        ["--operator-token-file"] = "Operator:TokenFile",
        ["--cache-budget"] = "Deltas:CacheBudget",
        ["--max-image-size"] = "Content:MaxImageSize",
    };

    private static readonly HashSet<string> ListKeys = new(StringComparer.Ordinal) { "Trust:RootKeyFiles", "Operator:Tokens" };

    /// <summary>Usage text for <c>--help</c>.</summary>
    public static string Usage =>
        """
        edgeupdater-server: image repository, on-the-fly deltas, MQTT fleet and rollouts.

        usage: edgeupdater-server --data-dir DIR [options]

          --config FILE               JSON settings file (same keys as below, nested)
          --data-dir DIR              data directory (database, content, delta cache)   [required]
          --urls URLS                 HTTP listen URLs, ';'-separated      (default http://0.0.0.0:8080)
          --mqtt-mode embedded|external                                    (default embedded)
          --mqtt-port N               embedded listen port / external broker port (default 1883)
          --mqtt-bind ADDRESS         embedded broker listen address       (default 0.0.0.0)
          --mqtt-host HOST            external broker host
          --mqtt-username U           external: the server's user (privileged in the ACL)
          --mqtt-password P           external: its password
          --mqtt-prefix PREFIX        topic prefix                          (default edgeupdater/v1)
          --device-auth credentials|open   embedded broker device login     (default credentials)
          --database sqlite|postgres                                       (default sqlite)
          --connection-string CS      database connection string (default: DIR/fleet.db)
          --trusted-root FILE         root public key file; repeatable (default: DIR/trusted-roots/*)
          --operator-token TOKEN      operator bearer token; repeatable (default: generated into DIR/operator-token)
          --operator-token-file FILE  file with one operator token per line
          --cache-budget SIZE         delta cache disk budget, e.g. 4GiB   (default 4GiB)
          --max-image-size SIZE       largest image publish accepts        (default 16GiB)

        Any setting can also be given by its full key, e.g. --Deltas:BestConcurrency 2.
        """;

    /// <summary>Reads the options; throws <see cref="ServerConfigurationException"/> on bad input.</summary>
    public static ServerOptions Load(IReadOnlyList<string> args)
    {
        string? configFile = null;
        var values = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        var listCounts = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string key;
            string? value;
            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            var name = eq > 0 ? arg[..eq] : arg;
            if (!name.StartsWith("--", StringComparison.Ordinal))
            {
                throw new ServerConfigurationException(arg, "is not an option (options start with --; see --help)");
            }

            if (eq > 0)
            {
                value = arg[(eq + 1)..];
            }
            else if (i + 1 < args.Count)
            {
                value = args[++i];
            }
            else
            {
                throw new ServerConfigurationException(name, "needs a value");
            }

            if (name == "--config")
            {
                configFile = value;
                continue;
            }

            key = Switches.TryGetValue(name, out var mapped) ? mapped : name[2..];
            if (!key.Contains(':', StringComparison.Ordinal) && !Switches.ContainsValue(key) && key is not ("DataDirectory" or "LogLevel"))
            {
                throw new ServerConfigurationException(name, "is not a known option (see --help)");
            }

            if (ListKeys.Contains(key))
            {
                var index = listCounts.GetValueOrDefault(key);
                listCounts[key] = index + 1;
                values[$"{key}:{index}"] = value;
            }
            else
            {
                values[key] = value;
            }
        }

        var builder = new ConfigurationBuilder();
        if (configFile is not null)
        {
            if (!File.Exists(configFile))
            {
                throw new ServerConfigurationException("--config", $"file '{configFile}' does not exist");
            }

            builder.AddJsonFile(Path.GetFullPath(configFile), optional: false, reloadOnChange: false);
        }

        builder.AddInMemoryCollection(values);
        var configuration = builder.Build();
        var options = new ServerOptions();
        try
        {
            configuration.Bind(options, binder => binder.ErrorOnUnknownConfiguration = true);
        }
        catch (InvalidOperationException e)
        {
            throw new ServerConfigurationException($"Invalid configuration: {e.Message}", e);
        }

        return options;
    }
}
