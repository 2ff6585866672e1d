using System.Globalization;
using System.Text;
using EdgeUpdater.Testing;
using EdgeUpdater.Yocto.Tests.Layer;

namespace EdgeUpdater.Yocto.Tests.Boot;

/// <summary>
/// A real U-Boot environment: a redundant pair of env files made by <c>mkenvimage</c>, read and
/// written with libubootenv's <c>fw_printenv</c>/<c>fw_setenv</c> through an fw_env.config made from
/// the layer's template (recipes-bsp/edgeupdater-boot/files/fw_env.config) with the recipe's size.
/// This is the storage both U-Boot (simulated) and the agent's U-Boot backend use.
/// </summary>
internal sealed class UBootEnvironmentFile
{
    private UBootEnvironmentFile(string configPath, string primary, string redundant)
    {
        ConfigPath = configPath;
        PrimaryPath = primary;
        RedundantPath = redundant;
    }

    /// <summary>The fw_env.config to pass with <c>fw_printenv -c</c>.</summary>
    public string ConfigPath { get; }

    public string PrimaryPath { get; }

    public string RedundantPath { get; }

    /// <summary>Makes both copies with <paramref name="variables"/> and the fw_env.config naming them.</summary>
    public static async Task<UBootEnvironmentFile> CreateAsync(
        string directory, IReadOnlyDictionary<string, string> variables, CancellationToken cancellationToken = default)
    {
        var recipe = BitBakeFile.Load(LayerPaths.InLayer("recipes-bsp", "edgeupdater-boot", "edgeupdater-boot-uboot_1.0.bb"));
        var sizeText = recipe.ValueOf("EDGEUPDATER_UBOOT_ENV_SIZE")
            ?? throw new InvalidOperationException("edgeupdater-boot-uboot has no EDGEUPDATER_UBOOT_ENV_SIZE");
        var size = long.Parse(sizeText.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

        var primary = Path.Combine(directory, "uboot.env");
        var redundant = Path.Combine(directory, "uboot-redund.env");
        var text = Path.Combine(directory, "uboot-env.txt");
        await File.WriteAllTextAsync(text, string.Concat(variables.Select(v => $"{v.Key}={v.Value}\n")), cancellationToken);
        foreach (var file in new[] { primary, redundant })
        {
            await ExternalTool.RunCheckedAsync("mkenvimage", ["-r", "-s", size.ToString(CultureInfo.InvariantCulture), "-o", file, text], cancellationToken: cancellationToken);
        }

        var template = await File.ReadAllTextAsync(LayerPaths.InLayer("recipes-bsp", "edgeupdater-boot", "files", "fw_env.config"), cancellationToken);
        var config = template
            .Replace("@EDGEUPDATER_UBOOT_ENV_FILE@", primary, StringComparison.Ordinal)
            .Replace("@EDGEUPDATER_UBOOT_ENV_REDUND_FILE@", redundant, StringComparison.Ordinal)
            .Replace("@EDGEUPDATER_UBOOT_ENV_SIZE@", sizeText, StringComparison.Ordinal);
        var configPath = Path.Combine(directory, "fw_env.config");
        await File.WriteAllTextAsync(configPath, config, cancellationToken);
        return new UBootEnvironmentFile(configPath, primary, redundant);
    }

    /// <summary>Every variable, as <c>fw_printenv</c> lists them.</summary>
    public async Task<Dictionary<string, string>> ReadAsync(CancellationToken cancellationToken = default)
    {
        var result = await ExternalTool.RunCheckedAsync("fw_printenv", ["-c", ConfigPath], cancellationToken: cancellationToken);
        var variables = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = line.IndexOf('=', StringComparison.Ordinal);
            if (equals > 0)
            {
                variables[line[..equals]] = line[(equals + 1)..];
            }
        }

        return variables;
    }

    /// <summary>Sets (and with an empty value, deletes) variables in one <c>fw_setenv -s</c> write.</summary>
    public async Task SetAsync(IReadOnlyDictionary<string, string> values, CancellationToken cancellationToken = default)
    {
        var script = Path.Combine(Path.GetDirectoryName(ConfigPath)!, "fw_setenv.script");
        var text = new StringBuilder();
        foreach (var (name, value) in values)
        {
            text.Append(name).Append('=').Append(value).Append('\n');
        }

        await File.WriteAllTextAsync(script, text.ToString(), cancellationToken);
        await ExternalTool.RunCheckedAsync("fw_setenv", ["-c", ConfigPath, "-s", script], cancellationToken: cancellationToken);
    }

    /// <summary>
    /// Stores <paramref name="environment"/> as U-Boot's saveenv does: the whole environment replaces
    /// the stored one (variables missing from it are deleted).
    /// </summary>
    public async Task SaveWholeAsync(IReadOnlyDictionary<string, string> environment, CancellationToken cancellationToken = default)
    {
        var stored = await ReadAsync(cancellationToken);
        var changes = new Dictionary<string, string>(environment, StringComparer.Ordinal);
        foreach (var name in stored.Keys.Where(name => !environment.ContainsKey(name)))
        {
            changes[name] = string.Empty;
        }

        await SetAsync(changes, cancellationToken);
    }
}
