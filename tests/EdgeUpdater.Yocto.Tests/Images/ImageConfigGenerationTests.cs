using System.Text;
using System.Text.Json;
using EdgeUpdater.Images;
using EdgeUpdater.Testing;
using EdgeUpdater.Yocto.Tests.Layer;
using Xunit;

namespace EdgeUpdater.Yocto.Tests.Images;

/// <summary>
/// The python task of classes/edgeupdater-image.bbclass that writes config.json
/// (edgeupdater_write_config), run with python3 outside BitBake: its text exactly as in the class,
/// with a datastore stub that answers getVar from the variables BitBake would have, and bb.fatal /
/// bb.utils.mkdirhier as BitBake defines them. The result must be valid for the project's own
/// config.json reader (EdgeUpdater.Images).
/// </summary>
public sealed class ImageConfigGenerationTests : IDisposable
{
    private readonly TempDirectory _directory = new("yocto-imageconfig");

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task Default_config_is_a_system_image_for_the_machine_and_its_architecture()
    {
        var result = await WriteConfigAsync(new Dictionary<string, string?>
        {
            ["EDGEUPDATER_IMAGE_NAME"] = "edgeupdater-image",
            ["EDGEUPDATER_IMAGE_VERSION"] = "5.0.3",
            ["EDGEUPDATER_IMAGE_HARDWARE"] = "qemuarm64",
            ["EDGEUPDATER_IMAGE_CONFIG"] = string.Empty,
            ["TARGET_ARCH"] = "aarch64",
        });
        result.Tool.EnsureSuccess("edgeupdater_write_config");

        var config = ImageConfigReader.Parse(result.Json);
        Assert.Equal(("edgeupdater-image", "5.0.3", TargetKind.System), (config.Name, config.Version, config.Target));
        Assert.Equal(["qemuarm64"], config.Compatible.Hardware);
        Assert.Equal(["arm64"], config.Compatible.Architectures);
    }

    [Fact]
    public async Task Integrator_config_is_kept_and_completed()
    {
        var source = _directory.Combine("product.json");
        await File.WriteAllTextAsync(source, """
            {"version": "2.1.0", "healthCheck": {"type": "http", "url": "http://127.0.0.1:8080/health", "deadlineSeconds": 120},
             "compatible": {"hardware": ["board-rev2"]}}
            """, Token);
        var result = await WriteConfigAsync(new Dictionary<string, string?>
        {
            ["EDGEUPDATER_IMAGE_NAME"] = "product",
            ["EDGEUPDATER_IMAGE_VERSION"] = "5.0.3",
            ["EDGEUPDATER_IMAGE_HARDWARE"] = "qemux86-64",
            ["EDGEUPDATER_IMAGE_CONFIG"] = source,
            ["TARGET_ARCH"] = "x86_64",
        });
        result.Tool.EnsureSuccess("edgeupdater_write_config");

        var config = ImageConfigReader.Parse(result.Json);
        Assert.Equal(("product", "2.1.0", TargetKind.System), (config.Name, config.Version, config.Target));
        Assert.Equal(HealthCheckType.Http, config.HealthCheck!.Type);
        Assert.Equal(["board-rev2"], config.Compatible.Hardware);
        Assert.Equal(["x64"], config.Compatible.Architectures);
    }

    [Theory]
    [InlineData("{\"name\": ", "EDGEUPDATER_IMAGE_CONFIG")]
    [InlineData("[1, 2]", "a JSON object was expected")]
    public async Task Broken_integrator_config_stops_the_build(string text, string message)
    {
        var source = _directory.Combine("broken.json");
        await File.WriteAllTextAsync(source, text, Token);
        var result = await WriteConfigAsync(new Dictionary<string, string?>
        {
            ["EDGEUPDATER_IMAGE_NAME"] = "product",
            ["EDGEUPDATER_IMAGE_VERSION"] = "1.0.0",
            ["EDGEUPDATER_IMAGE_CONFIG"] = source,
            ["TARGET_ARCH"] = "aarch64",
        });
        Assert.NotEqual(0, result.Tool.ExitCode);
        Assert.Contains(message, result.Tool.StandardError, StringComparison.Ordinal);
    }

    private async Task<(ToolResult Tool, byte[] Json)> WriteConfigAsync(Dictionary<string, string?> variables)
    {
        var workdir = _directory.Combine("work-" + Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(workdir);
        variables["WORKDIR"] = workdir;
        var body = BitBakeFile.Load(LayerImageCommand.ClassPath).Function("edgeupdater_write_config")?.Body
            ?? throw new InvalidOperationException("edgeupdater_write_config is gone from the class");
        var script = new StringBuilder("""
            import json, os, sys

            class DataStore:
                def __init__(self, values):
                    self.values = values
                def getVar(self, name):
                    return self.values.get(name)

            class Utils:
                @staticmethod
                def mkdirhier(path):
                    os.makedirs(path, exist_ok=True)

            class BitBake:
                utils = Utils
                @staticmethod
                def fatal(message):
                    print("ERROR: " + message, file=sys.stderr)
                    sys.exit(1)

            bb = BitBake
            d = DataStore(json.loads(sys.argv[1]))

            def edgeupdater_write_config(d):

            """);
        script.Append(body).Append("\nedgeupdater_write_config(d)\n");
        var path = Path.Combine(workdir, "task.py");
        await File.WriteAllTextAsync(path, script.ToString(), Token);
        var tool = await ExternalTool.RunAsync("python3", [path, JsonSerializer.Serialize(variables)], cancellationToken: Token);
        var output = Path.Combine(workdir, "edgeupdater-image", "config.json");
        return (tool, File.Exists(output) ? await File.ReadAllBytesAsync(output, Token) : []);
    }
}
