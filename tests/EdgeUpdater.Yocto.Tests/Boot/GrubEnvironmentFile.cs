using EdgeUpdater.Testing;
using EdgeUpdater.Yocto.Tests.Layer;

namespace EdgeUpdater.Yocto.Tests.Boot;

/// <summary>
/// A real GRUB environment block, made by the layer's own <c>edgeupdater_make_grubenv</c> (as the
/// edgeupdater-boot-grub recipe deploys it) and read and written with <c>grub-editenv</c>, the tool
/// the agent's GRUB backend runs.
/// </summary>
internal sealed class GrubEnvironmentFile
{
    public const string RecipeFile = "edgeupdater-boot-grub_1.0.bb";

    private GrubEnvironmentFile(string path)
    {
        Path = path;
    }

    public string Path { get; }

    /// <summary>Runs the recipe's do_compile step: the initial grubenv (slot a committed).</summary>
    public static async Task<GrubEnvironmentFile> CreateFromRecipeAsync(string directory, CancellationToken cancellationToken = default)
    {
        var recipePath = LayerPaths.InLayer("recipes-bsp", "edgeupdater-boot", RecipeFile);
        var recipe = BitBakeFile.Load(recipePath);
        var bootlimit = recipe.ValueOf("EDGEUPDATER_BOOTLIMIT") ?? throw new InvalidOperationException("no EDGEUPDATER_BOOTLIMIT");
        var path = System.IO.Path.Combine(directory, "grubenv");
        var result = await BitBakeShell.RunAsync(
            recipePath,
            "edgeupdater_make_grubenv",
            new Dictionary<string, string>(),
            [path, "eu_slot=a", "upgrade_available=0", "bootcount=0", $"bootlimit={bootlimit}"],
            directory,
            cancellationToken);
        result.EnsureSuccess("edgeupdater_make_grubenv");
        return new GrubEnvironmentFile(path);
    }

    /// <summary>A grubenv made by <c>grub-editenv create</c> holding <paramref name="variables"/>.</summary>
    public static async Task<GrubEnvironmentFile> CreateWithToolAsync(
        string directory, IReadOnlyDictionary<string, string> variables, CancellationToken cancellationToken = default)
    {
        var file = new GrubEnvironmentFile(System.IO.Path.Combine(directory, "grubenv"));
        await ExternalTool.RunCheckedAsync("grub-editenv", [file.Path, "create"], cancellationToken: cancellationToken);
        if (variables.Count > 0)
        {
            await file.SetAsync(variables, cancellationToken);
        }

        return file;
    }

    public async Task<Dictionary<string, string>> ReadAsync(CancellationToken cancellationToken = default)
    {
        var result = await ExternalTool.RunCheckedAsync("grub-editenv", [Path, "list"], cancellationToken: cancellationToken);
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

    public async Task SetAsync(IReadOnlyDictionary<string, string> values, CancellationToken cancellationToken = default) =>
        await ExternalTool.RunCheckedAsync("grub-editenv", [Path, "set", .. values.Select(v => $"{v.Key}={v.Value}")], cancellationToken: cancellationToken);
}
