using System.Globalization;
using EdgeUpdater.Protocol;
using Microsoft.Extensions.Logging;

namespace EdgeUpdater.Server.Hosting;

/// <summary>
/// Everything the server can be told, from a JSON config file and the command line (see
/// docs/server.md). Only <see cref="DataDirectory"/> is required; every other setting has an embedded
/// default: SQLite in the data directory, the embedded MQTT broker, HTTP on port 8080.
/// </summary>
public sealed class ServerOptions
{
    /// <summary>Directory for the database file, content store, delta cache and generated secrets.</summary>
    public string DataDirectory { get; set; } = string.Empty;

    /// <summary>HTTP listener.</summary>
    public HttpSettings Http { get; set; } = new();

    /// <summary>MQTT broker (embedded or external) and topic prefix.</summary>
    public MqttSettings Mqtt { get; set; } = new();

    /// <summary>Fleet database.</summary>
    public DatabaseSettings Database { get; set; } = new();

    /// <summary>Keys that release manifests must chain to.</summary>
    public TrustSettings Trust { get; set; } = new();

    /// <summary>Operator API access.</summary>
    public OperatorSettings Operator { get; set; } = new();

    /// <summary>Upload limits and read access to content.</summary>
    public ContentSettings Content { get; set; } = new();

    /// <summary>Delta generation and cache.</summary>
    public DeltaSettings Deltas { get; set; } = new();

    /// <summary>Rollout engine timing.</summary>
    public RolloutSettings Rollouts { get; set; } = new();

    /// <summary>Least severe log level written to the console.</summary>
    public LogLevel LogLevel { get; set; } = LogLevel.Information;

    /// <summary>
    /// Checks every setting and fills in the defaults that depend on the data directory. Throws
    /// <see cref="ServerConfigurationException"/> naming the first wrong setting.
    /// </summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(DataDirectory))
        {
            throw new ServerConfigurationException("DataDirectory", "is required (command line: --data-dir DIR)");
        }

        DataDirectory = Path.GetFullPath(DataDirectory);
        if (string.IsNullOrWhiteSpace(Http.Urls))
        {
            throw new ServerConfigurationException("Http:Urls", "must name at least one URL, for example http://0.0.0.0:8080");
        }

        foreach (var url in Http.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            {
                throw new ServerConfigurationException("Http:Urls", $"'{url}' is not an http:// or https:// URL");
            }
        }

        Mqtt.Validate();
        Database.Validate(DataDirectory);
        Operator.Validate();
        Content.Validate();
        Deltas.Validate();
        Rollouts.Validate();
    }
}

/// <summary>HTTP listener settings.</summary>
public sealed class HttpSettings
{
    /// <summary>Semicolon-separated URLs Kestrel binds; port 0 picks a free port.</summary>
    public string Urls { get; set; } = "http://0.0.0.0:8080";
}

/// <summary>Which broker the fleet uses.</summary>
public enum BrokerMode
{
    /// <summary>The server runs an MQTTnet broker in-process and enforces the device ACL itself.</summary>
    Embedded,

    /// <summary>The server connects as a client to an external broker (mosquitto, EMQX, ...).</summary>
    External,
}

/// <summary>How the embedded broker authenticates devices.</summary>
public enum DeviceAuthentication
{
    /// <summary>User name = device id, password issued by the operator API.</summary>
    Credentials,

    /// <summary>Any client may connect; its identity is its user name, or its client id without one. For labs and benchmarks.</summary>
    Open,
}

/// <summary>MQTT settings.</summary>
public sealed class MqttSettings
{
    /// <summary>Embedded (default) or external broker.</summary>
    public BrokerMode Mode { get; set; } = BrokerMode.Embedded;

    /// <summary>Topic prefix shared with the agents.</summary>
    public string TopicPrefix { get; set; } = MqttTopics.DefaultPrefix;

    /// <summary>Embedded: address the broker listens on.</summary>
    public string BindAddress { get; set; } = "0.0.0.0";

    /// <summary>Embedded: TCP port (0 picks a free one); external: the broker's port.</summary>
    public int Port { get; set; } = 1883;

    /// <summary>External: broker host name.</summary>
    public string? Host { get; set; }

    /// <summary>External: user name of the server's own client (privileged in the broker ACL).</summary>
    public string? Username { get; set; }

    /// <summary>External: password of the server's own client.</summary>
    public string? Password { get; set; }

    /// <summary>Embedded: how devices authenticate.</summary>
    public DeviceAuthentication DeviceAuthentication { get; set; } = DeviceAuthentication.Credentials;

    /// <summary>Embedded: the most simultaneous pending TCP connections.</summary>
    public int ConnectionBacklog { get; set; } = 2000;

    internal void Validate()
    {
        try
        {
            _ = new MqttTopics(TopicPrefix);
        }
        catch (ArgumentException e)
        {
            throw new ServerConfigurationException("Mqtt:TopicPrefix", e.Message);
        }

        if (Port is < 0 or > 65535)
        {
            throw new ServerConfigurationException("Mqtt:Port", $"must be 0-65535, found {Port}");
        }

        if (Mode == BrokerMode.Embedded && !System.Net.IPAddress.TryParse(BindAddress, out _))
        {
            throw new ServerConfigurationException("Mqtt:BindAddress", $"'{BindAddress}' is not an IP address");
        }

        if (Mode == BrokerMode.External)
        {
            if (string.IsNullOrWhiteSpace(Host))
            {
                throw new ServerConfigurationException("Mqtt:Host", "is required when Mqtt:Mode is External");
            }

            if (Port == 0)
            {
                throw new ServerConfigurationException("Mqtt:Port", "must name the external broker's port");
            }
        }

        if (ConnectionBacklog < 1)
        {
            throw new ServerConfigurationException("Mqtt:ConnectionBacklog", "must be at least 1");
        }
    }
}

/// <summary>Database engines.</summary>
public enum DatabaseProvider
{
    /// <summary>A SQLite file (default: fleet.db in the data directory).</summary>
    Sqlite,

    /// <summary>PostgreSQL through Npgsql, for several server replicas.</summary>
    Postgres,
}

/// <summary>Database settings.</summary>
public sealed class DatabaseSettings
{
    /// <summary>Engine.</summary>
    public DatabaseProvider Provider { get; set; } = DatabaseProvider.Sqlite;

    /// <summary>Connection string; for SQLite defaults to the file fleet.db in the data directory.</summary>
    public string? ConnectionString { get; set; }

    internal void Validate(string dataDirectory)
    {
        if (Provider == DatabaseProvider.Postgres && string.IsNullOrWhiteSpace(ConnectionString))
        {
            throw new ServerConfigurationException("Database:ConnectionString", "is required when Database:Provider is Postgres");
        }

        if (Provider == DatabaseProvider.Sqlite && string.IsNullOrWhiteSpace(ConnectionString))
        {
            ConnectionString = $"Data Source={Path.Combine(dataDirectory, "fleet.db")}";
        }
    }
}

/// <summary>Trust settings.</summary>
public sealed class TrustSettings
{
    /// <summary>
    /// Root public key files; manifests must be signed by a release key that chains to one of them.
    /// When empty, every file in <c>trusted-roots/</c> under the data directory is used.
    /// </summary>
    public IList<string> RootKeyFiles { get; set; } = [];

    /// <summary>How many of the root keys must sign the first key set of the chain.</summary>
    public int RootThreshold { get; set; } = 1;
}

/// <summary>Operator API settings.</summary>
public sealed class OperatorSettings
{
    /// <summary>
    /// Bearer tokens that may use the operator API. When empty and no <see cref="TokenFile"/> is set,
    /// the server generates one into <c>operator-token</c> in the data directory (mode 0600).
    /// </summary>
    public IList<string> Tokens { get; set; } = [];

    /// <summary>File holding one token per line.</summary>
    public string? TokenFile { get; set; }

    internal void Validate()
    {
        foreach (var token in Tokens)
        {
            if (token.Length < 16)
            {
                throw new ServerConfigurationException("Operator:Tokens", "each token must be at least 16 characters");
            }
        }

        if (TokenFile is not null && !File.Exists(TokenFile))
        {
            throw new ServerConfigurationException("Operator:TokenFile", $"'{TokenFile}' does not exist");
        }
    }
}

/// <summary>Content settings.</summary>
public sealed class ContentSettings
{
    /// <summary>Largest image accepted by publish.</summary>
    public string MaxImageSize { get; set; } = "16GiB";

    /// <summary>Largest manifest envelope accepted by publish.</summary>
    public string MaxManifestSize { get; set; } = "1MiB";

    internal long MaxImageBytes { get; private set; }

    internal long MaxManifestBytes { get; private set; }

    internal void Validate()
    {
        MaxImageBytes = ByteSize.Parse(MaxImageSize, "Content:MaxImageSize");
        MaxManifestBytes = ByteSize.Parse(MaxManifestSize, "Content:MaxManifestSize");
    }
}

/// <summary>Delta settings.</summary>
public sealed class DeltaSettings
{
    /// <summary>Disk budget of the delta cache; least recently used deltas are evicted past it.</summary>
    public string CacheBudget { get; set; } = "4GiB";

    /// <summary>How many <c>fast</c> deltas may be generated at once (requests wait beyond).</summary>
    public int FastConcurrency { get; set; } = Math.Max(1, Environment.ProcessorCount);

    /// <summary>How many <c>best</c> deltas may be generated at once in the background.</summary>
    public int BestConcurrency { get; set; } = 1;

    /// <summary>Generate the <c>best</c> level in the background after the first <c>fast</c> one.</summary>
    public bool GenerateBest { get; set; } = true;

    /// <summary>
    /// When a release is published, prove in the background (in a <c>best</c> slot, with
    /// <see cref="BestThreads"/>) which of its image's blocks recompress exactly, so that even the first
    /// <c>best</c> delta to it skips that work (on xz images more than half of it).
    /// </summary>
    public bool ProveOnPublish { get; set; } = true;

    /// <summary>
    /// Worker threads of one <c>best</c> generation (default: half the cores, at least one), so that the
    /// background work leaves room for serving. A <c>fast</c> generation uses every core.
    /// </summary>
    public int BestThreads { get; set; } = Math.Max(1, Environment.ProcessorCount / 2);

    /// <summary>
    /// Largest delta served, as a share of the target image's size (default 0.9). A delta above it is
    /// answered <c>not-worthwhile</c>: for a few percent less the device would take on an apply step and
    /// lose the CDN-cacheable image (two unrelated images still give a delta a little under the image,
    /// since the delta encodes the image's padding and tables more compactly).
    /// </summary>
    public double MaxSizeRatio { get; set; } = 0.9;

    /// <summary>
    /// Most bytes of an image's decompressed metadata tables for which a delta patches the tables themselves
    /// (unset: the delta library's 4 MiB, which keeps the device's apply under 64 MiB: it holds about three times that). Larger
    /// tables, some 50,000 files and more, go as their stored bytes patched against the old image's. Raise it
    /// for a fleet whose devices have memory to spare; deltas already cached keep the budget they were made with.
    /// </summary>
    public string? MaxMetadataTables { get; set; }

    internal long CacheBudgetBytes { get; private set; }

    internal long MaxMetadataTableBytes { get; private set; } = new Delta.DeltaGeneratorOptions().MaxMetadataTableBytes;

    internal void Validate()
    {
        CacheBudgetBytes = ByteSize.Parse(CacheBudget, "Deltas:CacheBudget");
        if (MaxMetadataTables is not null)
        {
            MaxMetadataTableBytes = ByteSize.Parse(MaxMetadataTables, "Deltas:MaxMetadataTables");
        }

        if (FastConcurrency < 1)
        {
            throw new ServerConfigurationException("Deltas:FastConcurrency", "must be at least 1");
        }

        if (BestConcurrency < 1)
        {
            throw new ServerConfigurationException("Deltas:BestConcurrency", "must be at least 1");
        }

        if (BestThreads < 1)
        {
            throw new ServerConfigurationException("Deltas:BestThreads", "must be at least 1");
        }

        if (!(MaxSizeRatio > 0 && MaxSizeRatio <= 1))
        {
            throw new ServerConfigurationException("Deltas:MaxSizeRatio", $"must be above 0 and at most 1, found {MaxSizeRatio}");
        }
    }
}

/// <summary>Rollout engine settings.</summary>
public sealed class RolloutSettings
{
    /// <summary>How often the engine re-evaluates running rollouts.</summary>
    public TimeSpan TickInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>A device that was notified but has not started is notified again after this long.</summary>
    public TimeSpan RenotifyAfter { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// How long the rollout engine's leader lease lasts unless renewed (every tick). Replicas sharing a
    /// database run the engine on one of them only; a standby takes over at most this long after the
    /// leader stops renewing (at the next tick after a clean shutdown). At least two ticks.
    /// </summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(10);

    internal void Validate()
    {
        if (TickInterval <= TimeSpan.Zero)
        {
            throw new ServerConfigurationException("Rollouts:TickInterval", "must be positive");
        }

        if (RenotifyAfter <= TimeSpan.Zero)
        {
            throw new ServerConfigurationException("Rollouts:RenotifyAfter", "must be positive");
        }

        if (LeaseDuration < 2 * TickInterval)
        {
            throw new ServerConfigurationException(
                "Rollouts:LeaseDuration",
                $"must be at least two ticks (Rollouts:TickInterval is {TickInterval}) so that one late renewal does not lose the lease; found {LeaseDuration}");
        }
    }
}

/// <summary>A setting that is missing or wrong. The message names the setting.</summary>
public sealed class ServerConfigurationException : Exception
{
    /// <summary>Creates the exception for <paramref name="setting"/>.</summary>
    public ServerConfigurationException(string setting, string problem)
        : base($"{setting} {problem}.")
    {
        Setting = setting;
    }

    /// <summary>Creates the exception.</summary>
    public ServerConfigurationException()
    {
        Setting = string.Empty;
    }

    /// <summary>Creates the exception.</summary>
    public ServerConfigurationException(string message, Exception innerException)
        : base(message, innerException)
    {
        Setting = string.Empty;
    }

    /// <summary>The setting's configuration key, for example <c>Mqtt:Host</c>.</summary>
    public string Setting { get; }
}

/// <summary>Parses sizes like <c>4GiB</c>, <c>500MB</c>, <c>1048576</c>.</summary>
internal static class ByteSize
{
    public static long Parse(string text, string setting)
    {
        var value = text.Trim();
        var units = new (string Suffix, long Factor)[]
        {
            ("TiB", 1L << 40), ("GiB", 1L << 30), ("MiB", 1L << 20), ("KiB", 1L << 10),
            ("TB", 1_000_000_000_000), ("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1_000), ("B", 1),
        };
        long factor = 1;
        foreach (var (suffix, f) in units)
        {
            if (value.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            {
                factor = f;
                value = value[..^suffix.Length].Trim();
                break;
            }
        }

        if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) || number < 0 || number * factor > long.MaxValue)
        {
            throw new ServerConfigurationException(setting, $"'{text}' is not a size (examples: 1048576, 500MB, 4GiB)");
        }

        return (long)(number * factor);
    }
}
