using System.Text;
using Xunit;

namespace EdgeUpdater.Images.Tests;

public sealed class ImageConfigReaderTests
{
    private static ImageConfig Parse(string json) => ImageConfigReader.Parse(Encoding.UTF8.GetBytes(json));

    private static ImageException Invalid(string json) => Assert.Throws<ImageException>(() => Parse(json));

    [Fact]
    public void Smallest_config_is_valid_and_gets_every_default()
    {
        var config = Parse("""{"name": "demo", "version": "1.0.0"}""");
        Assert.Equal(ImageConfig.CurrentSchemaVersion, config.SchemaVersion);
        Assert.Equal("demo", config.Name);
        Assert.Equal(TargetKind.App, config.Target);
        Assert.Empty(config.Entrypoint);
        Assert.Empty(config.Cmd);
        Assert.Empty(config.Env);
        Assert.Equal("/", config.WorkingDir);
        Assert.Equal("root", config.User);
        Assert.Empty(config.Volumes);
        Assert.Null(config.HealthCheck);
        Assert.Empty(config.Compatible.Hardware);
        Assert.Empty(config.Compatible.Architectures);
    }

    [Fact]
    public void Full_config_parses()
    {
        var config = Parse("""
            {
              "schemaVersion": 1,
              "name": "gateway",
              "version": "2.1.0-rc.1+build.7",
              "description": "Field gateway",
              "target": "system",
              "entrypoint": ["/usr/bin/gateway"],
              "cmd": ["--listen", "0.0.0.0:8080"],
              "env": {"LOG_LEVEL": "info"},
              "workingDir": "/var/lib/gateway",
              "user": "1000:1000",
              "volumes": [{"name": "data", "path": "/var/lib/gateway"}],
              "healthCheck": {"type": "http", "url": "http://127.0.0.1:8080/health", "intervalSeconds": 5, "deadlineSeconds": 120},
              "compatible": {"hardware": ["rpi4", "imx8mp-evk"], "architectures": ["arm64"]}
            }
            """);
        Assert.Equal(TargetKind.System, config.Target);
        Assert.Equal(HealthCheckType.Http, config.HealthCheck!.Type);
        Assert.Equal(5, config.HealthCheck.IntervalSeconds);
        Assert.Equal(5, config.HealthCheck.TimeoutSeconds);
        Assert.Equal(3, config.HealthCheck.Retries);
        Assert.Equal(120, config.HealthCheck.DeadlineSeconds);
        Assert.Equal("info", config.Env["LOG_LEVEL"]);
        Assert.Equal(["arm64"], config.Compatible.Architectures);
        var again = ImageConfigReader.Parse(ImageConfigReader.Serialize(config));
        Assert.Equal(ImageConfigReader.Serialize(config), ImageConfigReader.Serialize(again));
    }

    [Theory]
    [InlineData("""{"version": "1.0.0"}""", "$.name")]
    [InlineData("""{"name": "demo"}""", "$.version")]
    [InlineData("""{"name": "Demo", "version": "1.0.0"}""", "$.name")]
    [InlineData("""{"name": "demo", "version": "1.0"}""", "$.version")]
    [InlineData("""{"name": "demo", "version": "01.0.0"}""", "$.version")]
    [InlineData("""{"name": "demo", "version": "1.0.0", "schemaVersion": 2}""", "$.schemaVersion")]
    [InlineData("""{"name": "demo", "version": "1.0.0", "target": "vm"}""", "$.target")]
    [InlineData("""{"name": "demo", "version": "1.0.0", "entrypoint": ["gateway"]}""", "$.entrypoint[0]")]
    [InlineData("""{"name": "demo", "version": "1.0.0", "env": {"1BAD": "x"}}""", "$.env.1BAD")]
    [InlineData("""{"name": "demo", "version": "1.0.0", "workingDir": "relative"}""", "$.workingDir")]
    [InlineData("""{"name": "demo", "version": "1.0.0", "user": "bad user"}""", "$.user")]
    [InlineData("""{"name": "demo", "version": "1.0.0", "volumes": [{"name": "d", "path": "/"}]}""", "$.volumes[0].path")]
    [InlineData("""{"name": "demo", "version": "1.0.0", "volumes": [{"name": "d", "path": "/a"}, {"name": "d", "path": "/b"}]}""", "$.volumes[1].name")]
    [InlineData("""{"name": "demo", "version": "1.0.0", "healthCheck": {"type": "tcp"}}""", "$.healthCheck.port")]
    [InlineData("""{"name": "demo", "version": "1.0.0", "healthCheck": {"type": "http", "url": "ftp://x"}}""", "$.healthCheck.url")]
    [InlineData("""{"name": "demo", "version": "1.0.0", "healthCheck": {"type": "command"}}""", "$.healthCheck.command")]
    [InlineData("""{"name": "demo", "version": "1.0.0", "healthCheck": {"type": "tcp", "port": 80, "deadlineSeconds": 0}}""", "$.healthCheck.deadlineSeconds")]
    [InlineData("""{"name": "demo", "version": "1.0.0", "compatible": {"architectures": ["sparc"]}}""", "$.compatible.architectures[0]")]
    [InlineData("""{"name": "demo", "version": "1.0.0", "colour": "red"}""", "$.colour")]
    [InlineData("""{"name": "demo", "version": 1}""", "$.version")]
    [InlineData("""{"name": "demo", """, "$")]
    public void Errors_name_the_json_path(string json, string path)
    {
        var e = Invalid(json);
        Assert.Equal(ImageErrorCategory.InvalidConfig, e.Category);
        Assert.Contains(e.Errors, error => error.StartsWith(path, StringComparison.Ordinal));
    }

    [Fact]
    public void Every_problem_is_reported_at_once()
    {
        var e = Invalid("""{"name": "", "version": "x", "workingDir": "a"}""");
        Assert.Equal(3, e.Errors.Count);
    }
}
