using EdgeUpdater.Testing;
using EdgeUpdater.Yocto.Tests.Layer;

namespace EdgeUpdater.Yocto.Tests.Images;

/// <summary>Builds EdgeUpdater images with the layer's own image command (classes/edgeupdater-image.bbclass).</summary>
internal static class LayerImageCommand
{
    public static string ClassPath => LayerPaths.InLayer("classes", "edgeupdater-image.bbclass");

    /// <summary>
    /// Runs <c>edgeupdater_make_image</c> on <paramref name="rootfs"/> with <paramref name="configJson"/>
    /// as config.json, using the class's default EDGEUPDATER_SQUASHFS_ARGS and slot size.
    /// </summary>
    public static async Task<ToolResult> BuildAsync(
        string rootfs, string configJson, string output, long? slotSizeMb = null, CancellationToken cancellationToken = default)
    {
        var configDirectory = Path.Combine(Path.GetDirectoryName(output)!, Path.GetFileName(output) + ".config");
        Directory.CreateDirectory(configDirectory);
        var configPath = Path.Combine(configDirectory, "config.json");
        await File.WriteAllTextAsync(configPath, configJson, cancellationToken);

        var layerClass = BitBakeFile.Load(ClassPath);
        var variables = new Dictionary<string, string>
        {
            // What BitBake would expand the class defaults to; the timestamp is image.bbclass's default.
            ["REPRODUCIBLE_TIMESTAMP_ROOTFS"] = "1520598896",
            ["EDGEUPDATER_SQUASHFS_ARGS"] = layerClass.ValueOf("EDGEUPDATER_SQUASHFS_ARGS")!,
            ["EDGEUPDATER_SLOT_SIZE_MB"] = slotSizeMb?.ToString(System.Globalization.CultureInfo.InvariantCulture)
                ?? layerClass.ValueOf("EDGEUPDATER_SLOT_SIZE_MB")!,
        };
        return await BitBakeShell.RunAsync(ClassPath, "edgeupdater_make_image", variables, [rootfs, configPath, output], Path.GetDirectoryName(output)!, cancellationToken);
    }
}
