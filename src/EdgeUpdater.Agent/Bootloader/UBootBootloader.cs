using System.Text;

namespace EdgeUpdater.Agent.Bootloader;

/// <summary>
/// U-Boot through libubootenv: <c>fw_printenv</c> to read, <c>fw_setenv -s SCRIPT</c> to write every
/// variable in one environment write (with a redundant environment that write is atomic).
/// </summary>
internal sealed class UBootBootloader : IBootloader
{
    private readonly string? _config;
    private readonly string _printenv;
    private readonly string _setenv;
    private readonly string _scratchDirectory;

    public UBootBootloader(string? fwEnvConfig, string scratchDirectory, string? toolDirectory = null)
    {
        _config = fwEnvConfig;
        _scratchDirectory = scratchDirectory;
        _printenv = ToolRunner.Locate(toolDirectory, "fw_printenv");
        _setenv = ToolRunner.Locate(toolDirectory, "fw_setenv");
    }

    public string Name => "uboot";

    public async Task<BootEnvironment> ReadAsync(CancellationToken cancellationToken = default) =>
        BootEnvironment.Parse(await ToolRunner.RunAsync(_printenv, ConfigArguments(), cancellationToken).ConfigureAwait(false));

    public async Task WriteAsync(IReadOnlyDictionary<string, string> values, CancellationToken cancellationToken = default)
    {
        // libubootenv 0.3.x reads script lines as "name=value" (the "name value" form is ignored there).
        var script = new StringBuilder();
        foreach (var (name, value) in values)
        {
            script.Append(name).Append('=').Append(value).Append('\n');
        }

        Directory.CreateDirectory(_scratchDirectory);
        var path = Path.Combine(_scratchDirectory, "fw_setenv.script");
        await File.WriteAllTextAsync(path, script.ToString(), cancellationToken).ConfigureAwait(false);
        try
        {
            await ToolRunner.RunAsync(_setenv, [.. ConfigArguments(), "-s", path], cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private string[] ConfigArguments() => _config is null ? [] : ["-c", _config];
}
