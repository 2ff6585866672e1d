using EdgeUpdater.Server.Hosting;
using Xunit;

namespace EdgeUpdater.Server.Tests.Hosting;

public sealed class ServerOptionsTests
{
    [Fact]
    public void Only_a_data_directory_gives_the_embedded_defaults()
    {
        var options = ServerOptionsLoader.Load(["--data-dir", "/var/lib/edgeupdater"]);
        options.Validate();
        Assert.Equal(BrokerMode.Embedded, options.Mqtt.Mode);
        Assert.Equal(1883, options.Mqtt.Port);
        Assert.Equal(DatabaseProvider.Sqlite, options.Database.Provider);
        Assert.Equal("Data Source=/var/lib/edgeupdater/fleet.db", options.Database.ConnectionString);
        Assert.Equal("http://0.0.0.0:8080", options.Http.Urls);
        Assert.Equal(new Delta.DeltaGeneratorOptions().MaxMetadataTableBytes, options.Deltas.MaxMetadataTableBytes);
    }

    [Fact]
    public void Switches_config_keys_and_repeated_lists_are_read()
    {
        var options = ServerOptionsLoader.Load(
        [
            "--data-dir", "/d", "--mqtt-mode", "external", "--mqtt-host", "broker", "--mqtt-port=1884",
            "--trusted-root", "a.pub", "--trusted-root", "b.pub", "--cache-budget", "500MB", "--Deltas:BestConcurrency", "2",
            "--Deltas:MaxMetadataTables", "16MiB",
        ]);
        options.Validate();
        Assert.Equal(BrokerMode.External, options.Mqtt.Mode);
        Assert.Equal("broker", options.Mqtt.Host);
        Assert.Equal(1884, options.Mqtt.Port);
        Assert.Equal(["a.pub", "b.pub"], options.Trust.RootKeyFiles);
        Assert.Equal(500_000_000, options.Deltas.CacheBudgetBytes);
        Assert.Equal(2, options.Deltas.BestConcurrency);
        Assert.Equal(16 << 20, options.Deltas.MaxMetadataTableBytes);
    }

    [Theory]
    [InlineData(new[] { "--urls", "x" }, "DataDirectory")]
    [InlineData(new[] { "--data-dir", "/d", "--mqtt-mode", "external" }, "Mqtt:Host")]
    [InlineData(new[] { "--data-dir", "/d", "--database", "postgres" }, "Database:ConnectionString")]
    [InlineData(new[] { "--data-dir", "/d", "--cache-budget", "lots" }, "Deltas:CacheBudget")]
    [InlineData(new[] { "--data-dir", "/d", "--Deltas:MaxSizeRatio", "1.5" }, "Deltas:MaxSizeRatio")]
    [InlineData(new[] { "--data-dir", "/d", "--Deltas:BestThreads", "0" }, "Deltas:BestThreads")]
    [InlineData(new[] { "--data-dir", "/d", "--Deltas:MaxMetadataTables", "much" }, "Deltas:MaxMetadataTables")]
    [InlineData(new[] { "--data-dir", "/d", "--urls", "ftp://x" }, "Http:Urls")]
    [InlineData(new[] { "--data-dir", "/d", "--operator-token", "short" }, "Operator:Tokens")]
    [InlineData(new[] { "--data-dir", "/d", "--Rollouts:LeaseDuration", "00:00:03" }, "Rollouts:LeaseDuration")]
    public void A_wrong_setting_is_named_in_the_error(string[] args, string setting)
    {
        var error = Assert.Throws<ServerConfigurationException>(() => ServerOptionsLoader.Load(args).Validate());
        Assert.Equal(setting, error.Setting);
        Assert.StartsWith(setting, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_option_is_refused()
    {
        var error = Assert.Throws<ServerConfigurationException>(() => ServerOptionsLoader.Load(["--data-dir", "/d", "--colour", "red"]));
        Assert.Contains("--colour", error.Message, StringComparison.Ordinal);
    }
}
