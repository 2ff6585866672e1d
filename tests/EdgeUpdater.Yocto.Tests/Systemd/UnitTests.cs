using EdgeUpdater.Testing;
using EdgeUpdater.Yocto.Tests.Layer;
using Xunit;

namespace EdgeUpdater.Yocto.Tests.Systemd;

/// <summary>
/// The agent's systemd unit (from the release tarball) and the layer's boot-complete.target drop-in,
/// installed into a root directory by the agent recipe's own do_install (from a release-shaped
/// tarball directory), next to this machine's systemd units, and checked with
/// <c>systemd-analyze verify --root</c>: loading must produce no message at all (verify only exits
/// non-zero for errors; an unknown key or a bad value is a printed warning, and fails here too).
/// </summary>
public sealed class UnitTests : IDisposable
{
    private const string UnitDirectory = "/usr/lib/systemd/system";
    private readonly TempDirectory _directory = new("yocto-units");

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static string AgentRecipe => LayerPaths.InLayer("recipes-core", "edgeupdater", "edgeupdater-agent_0.1.0.bb");

    private static string ReleaseUnit => LayerPaths.InRepository("scripts", "release", "edgeupdater-agent.service");

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task Units_installed_by_the_recipe_verify_without_any_message()
    {
        var root = await InstallAsync(File.ReadAllText(ReleaseUnit));
        var result = await VerifyAsync(root, "edgeupdater-agent.service", "boot-complete.target");
        Assert.True(result.ExitCode == 0 && result.StandardOutput.Length == 0 && result.StandardError.Length == 0, Describe(result));
    }

    [Fact]
    public async Task Unit_is_a_notify_service_with_a_watchdog_that_runs_what_the_recipe_installs()
    {
        var root = await InstallAsync(File.ReadAllText(ReleaseUnit));
        var unit = ReadUnit(Path.Combine(root, UnitDirectory.TrimStart('/'), "edgeupdater-agent.service"));
        Assert.Equal("notify", unit["Service.Type"]);
        Assert.Matches(@"^\d+(s|min)?$", unit["Service.WatchdogSec"]);
        Assert.Contains("boot-complete.target", unit["Unit.Before"], StringComparison.Ordinal);

        // ExecStart names the link do_install made, and the link leads to the binary beside libsodium.so.
        var executable = unit["Service.ExecStart"].Split(' ')[0];
        var installed = new FileInfo(Path.Combine(root, executable.TrimStart('/')));
        Assert.NotNull(installed.LinkTarget);
        var target = Path.GetFullPath(Path.Combine(installed.DirectoryName!, installed.LinkTarget!));
        Assert.Equal(Path.Combine(root, "usr", "libexec", "edgeupdater", "edgeupdater-agent"), target);
        Assert.True(File.Exists(Path.Combine(Path.GetDirectoryName(target)!, "libsodium.so")));

        var dropIn = ReadUnit(Path.Combine(root, UnitDirectory.TrimStart('/'), "boot-complete.target.d", "edgeupdater.conf"));
        Assert.Equal("edgeupdater-agent.service", dropIn["Unit.Requires"]);
        Assert.Equal("edgeupdater-agent.service", dropIn["Unit.After"]);
    }

    [Theory]
    [InlineData("WatchdogSec=60s", "WatchdogSecs=60s", "Unknown key")]
    [InlineData("Type=notify", "Type=notified", "Failed to parse service type")]
    [InlineData("ExecStart=/usr/bin/edgeupdater-agent", "ExecStart=/usr/sbin/edgeupdater-agent", "is not executable")]
    public async Task Verify_catches_a_broken_unit(string find, string replace, string message)
    {
        var root = await InstallAsync(File.ReadAllText(ReleaseUnit).Replace(find, replace, StringComparison.Ordinal));
        var result = await VerifyAsync(root, "edgeupdater-agent.service");
        Assert.Contains(message, result.StandardError + result.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Recipe_refuses_a_release_whose_sums_do_not_match()
    {
        var stage = await StageReleaseAsync(File.ReadAllText(ReleaseUnit));
        await File.AppendAllTextAsync(Path.Combine(stage, "libsodium.so"), "tampered", Token);
        var result = await RunInstallAsync(stage, _directory.Combine("root-tampered"));
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("libsodium.so: FAILED", result.StandardOutput + result.StandardError, StringComparison.Ordinal);
    }

    private static async Task<ToolResult> VerifyAsync(string root, params string[] units) =>
        await ExternalTool.RunAsync("systemd-analyze", ["verify", $"--root={root}", "--man=no", .. units], TimeSpan.FromMinutes(1), cancellationToken: Token);

    private static string Describe(ToolResult result) =>
        $"systemd-analyze verify exited {result.ExitCode}\nstdout:\n{result.StandardOutput}\nstderr:\n{result.StandardError}";

    /// <summary>Section.Key to value; a key set twice keeps the last value.</summary>
    private static Dictionary<string, string> ReadUnit(string path)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var section = string.Empty;
        foreach (var raw in File.ReadAllLines(path))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#') || line.StartsWith(';'))
            {
                continue;
            }

            if (line.StartsWith('['))
            {
                section = line.Trim('[', ']');
                continue;
            }

            var equals = line.IndexOf('=', StringComparison.Ordinal);
            values[$"{section}.{line[..equals]}"] = line[(equals + 1)..];
        }

        return values;
    }

    /// <summary>
    /// A root with this machine's systemd units (the OS the unit's dependencies come from) plus what the
    /// agent recipe's do_install puts there from a release directory shipping <paramref name="unit"/>.
    /// </summary>
    private async Task<string> InstallAsync(string unit)
    {
        var stage = await StageReleaseAsync(unit);
        var root = _directory.Combine("root-" + Guid.NewGuid().ToString("n"));
        var hostUnits = Directory.Exists(UnitDirectory) ? UnitDirectory : "/lib/systemd/system";
        var units = Path.Combine(root, UnitDirectory.TrimStart('/'));
        Directory.CreateDirectory(units);
        await ExternalTool.RunCheckedAsync("cp", ["-a", hostUnits + "/.", units], cancellationToken: Token);
        (await RunInstallAsync(stage, root)).EnsureSuccess("edgeupdater-agent do_install");
        return root;
    }

    private async Task<ToolResult> RunInstallAsync(string stage, string root)
    {
        Directory.CreateDirectory(root);
        var variables = new Dictionary<string, string>
        {
            ["S"] = stage,
            ["D"] = root,
            ["WORKDIR"] = LayerPaths.InLayer("recipes-core", "edgeupdater", "files"),
            ["libexecdir"] = "/usr/libexec",
            ["bindir"] = "/usr/bin",
            ["systemd_system_unitdir"] = UnitDirectory,
        };
        return await BitBakeShell.RunAsync(AgentRecipe, "do_install", variables, [], _directory.Path, Token);
    }

    /// <summary>A directory shaped like an unpacked release tarball (scripts/publish-agent.sh), with a stub binary.</summary>
    private async Task<string> StageReleaseAsync(string unit)
    {
        var stage = _directory.Combine("edgeupdater-agent-0.1.0-linux-x64-" + Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(stage);
        var binary = Path.Combine(stage, "edgeupdater-agent");
        await File.WriteAllTextAsync(binary, "#!/bin/sh\nexit 0\n", Token);
        File.SetUnixFileMode(binary, (UnixFileMode)0b111_101_101);
        await File.WriteAllTextAsync(Path.Combine(stage, "libsodium.so"), "stub", Token);
        await File.WriteAllTextAsync(Path.Combine(stage, "edgeupdater-agent.service"), unit, Token);
        File.Copy(LayerPaths.InRepository("scripts", "release", "agent.example.json"), Path.Combine(stage, "agent.example.json"));
        File.Copy(LayerPaths.InRepository("LICENSE"), Path.Combine(stage, "LICENSE"));
        var sums = await ExternalTool.RunCheckedAsync(
            "sha256sum", ["edgeupdater-agent", "libsodium.so", "edgeupdater-agent.service", "agent.example.json", "LICENSE"], workingDirectory: stage, cancellationToken: Token);
        await File.WriteAllTextAsync(Path.Combine(stage, "SHA256SUMS"), sums.StandardOutput, Token);
        return stage;
    }
}
