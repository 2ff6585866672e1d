using System.Text;
using EdgeUpdater.Agent.Config;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Agent.Tests.Config;

public sealed class AgentConfigLoaderTests
{
    private const string Minimal = """
        {
          // Comments are allowed: operators annotate their devices' files.
          "deviceId": "dev-1",
          "hardware": "rpi4",
          "server": { "url": "https://updates.example.net" },
          "broker": { "host": "mqtt.example.net" },
          "trust": { "rootKeys": ["/etc/edgeupdater/root.pub"], "keySets": ["/etc/edgeupdater/keyset-v1.json"] },
          "targets": [ { "name": "app", "kind": "app", "slots": { "a": "/data/app-a.sqfs", "b": "/data/app-b.sqfs" } } ]
        }
        """;

    [Fact]
    public void Minimal_file_binds_with_the_documented_defaults()
    {
        var config = AgentConfigLoader.Parse(Encoding.UTF8.GetBytes(Minimal), "agent.json");
        Assert.Equal("dev-1", config.DeviceId);
        Assert.Equal(1883, config.Broker!.Port);
        Assert.Equal("edgeupdater/v1", config.Broker.TopicPrefix);
        Assert.Equal("/var/lib/edgeupdater", config.StateDirectory);
        Assert.Equal("/var/lib/edgeupdater/data", config.EffectiveDataDirectory);
        Assert.Equal("/run/edgeupdater/agent.sock", config.ControlSocket);
        Assert.Equal(1024 * 1024, config.Log.FileSizeLimitBytes);
        Assert.Equal(5, config.Log.RetainedFiles);
        Assert.Equal(8, config.Download.MaxAttempts);
        Assert.Equal(60, config.Download.IdleTimeoutSeconds);
        Assert.Equal("any", config.Download.DeltaLevel);
        Assert.Equal(["systemctl", "reboot"], config.Targets[0].RebootCommand);
        Assert.Equal("/proc/cmdline", config.Targets[0].KernelCommandLine);
    }

    [Theory]
    [InlineData("\"slots\": { \"a\": \"/data/app-a.sqfs\", \"b\": \"/data/app-b.sqfs\" }", "\"slots\": { \"a\": \"/data/app-a.sqfs\", \"b\": \"relative.sqfs\" }", "targets[0].slots.b: 'relative.sqfs' is not an absolute path")]
    [InlineData("\"slots\": { \"a\": \"/data/app-a.sqfs\", \"b\": \"/data/app-b.sqfs\" }", "\"slots\": { \"a\": \"/data/app-a.sqfs\", \"b\": \"/data/app-a.sqfs\" }", "targets[0].slots.b: '/data/app-a.sqfs' is already targets[0].slots.a")]
    [InlineData("\"kind\": \"app\"", "\"kind\": \"container\"", "targets[0].kind: 'container' is not 'app' or 'system'")]
    [InlineData("\"kind\": \"app\"", "\"kind\": \"system\"", "targets[0].bootloader: missing: a system target needs a bootloader backend")]
    [InlineData("\"deviceId\": \"dev-1\"", "\"deviceId\": \"dev/1\"", "deviceId: 'dev/1' is missing or not 1-128 of [A-Za-z0-9._:-]")]
    [InlineData("\"url\": \"https://updates.example.net\"", "\"url\": \"ftp://x\"", "server.url: 'ftp://x' is not an absolute http(s) URL")]
    [InlineData("\"rootKeys\": [\"/etc/edgeupdater/root.pub\"]", "\"rootKeys\": []", "trust.rootKeys: at least one pinned root key is required")]
    [InlineData("\"host\": \"mqtt.example.net\"", "\"host\": \"mqtt.example.net\", \"port\": 70000", "broker.port: 70000 is outside 1..65535")]
    [InlineData("\"hardware\": \"rpi4\",", "\"hardware\": \"rpi4\", \"download\": { \"idleTimeoutSeconds\": 0 },", "download.idleTimeoutSeconds: 0 is outside 1..3600")]
    [InlineData("\"hardware\": \"rpi4\",", "\"hardware\": \"rpi4\", \"download\": { \"deltaLevel\": \"smallest\" },", "download.deltaLevel: 'smallest' is not 'any', 'fast' or 'best'")]
    public void Invalid_values_are_reported_with_the_field_path(string original, string replacement, string expected)
    {
        var json = Minimal.Replace(original, replacement, StringComparison.Ordinal);
        var e = Assert.Throws<AgentConfigException>(() => AgentConfigLoader.Parse(Encoding.UTF8.GetBytes(json), "agent.json"));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.StartsWith("agent.json: invalid configuration:", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_slot_that_links_to_another_slot_is_refused()
    {
        using var directory = new TempDirectory("edgeupdater-config");
        var slotA = directory.Combine("app-a.sqfs");
        File.WriteAllBytes(slotA, [1]);
        var link = File.CreateSymbolicLink(directory.Combine("by-partlabel-app"), slotA).FullName;
        var json = Minimal.Replace("/data/app-a.sqfs", slotA, StringComparison.Ordinal).Replace("/data/app-b.sqfs", link, StringComparison.Ordinal);

        var e = Assert.Throws<AgentConfigException>(() => AgentConfigLoader.Parse(Encoding.UTF8.GetBytes(json), "agent.json"));

        Assert.Contains($"targets[0].slots.b: '{link}' is already targets[0].slots.a", e.Message, StringComparison.Ordinal);

        // Two distinct existing files are two slots.
        File.Delete(link);
        File.WriteAllBytes(link, [1]);
        Assert.Equal(link, AgentConfigLoader.Parse(Encoding.UTF8.GetBytes(json), "agent.json").Targets[0].Slots!.B);
    }

    [Fact]
    public void Unknown_member_and_wrong_type_name_the_json_path()
    {
        var unknown = Minimal.Replace("\"hardware\": \"rpi4\",", "\"hardware\": \"rpi4\", \"harware\": 1,", StringComparison.Ordinal);
        var e = Assert.Throws<AgentConfigException>(() => AgentConfigLoader.Parse(Encoding.UTF8.GetBytes(unknown), "agent.json"));
        Assert.Contains("harware", e.Message, StringComparison.Ordinal);

        var wrongType = Minimal.Replace("\"host\": \"mqtt.example.net\"", "\"host\": \"mqtt.example.net\", \"port\": \"1883\"", StringComparison.Ordinal);
        e = Assert.Throws<AgentConfigException>(() => AgentConfigLoader.Parse(Encoding.UTF8.GetBytes(wrongType), "agent.json"));
        Assert.StartsWith("agent.json: $.broker.port:", e.Message, StringComparison.Ordinal);
    }
}
