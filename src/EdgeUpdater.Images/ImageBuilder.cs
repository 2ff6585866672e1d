using System.Security.Cryptography;
using EdgeUpdater.SquashFs;
using EdgeUpdater.SquashFs.IO;
using EdgeUpdater.SquashFs.Writer;

namespace EdgeUpdater.Images;

/// <summary>What <see cref="ImageBuilder.BuildAsync"/> produced.</summary>
/// <param name="Path">The image file.</param>
/// <param name="Config">The validated config stored in it.</param>
/// <param name="Write">Writer statistics.</param>
/// <param name="Sha256">SHA-256 of the whole image file, lower-case hex (images are addressed by it).</param>
public sealed record ImageBuildResult(string Path, ImageConfig Config, SquashFsWriteResult Write, string Sha256);

/// <summary>Builds EdgeUpdater images: config.json + root/ into one SquashFS file.</summary>
public static class ImageBuilder
{
    /// <summary>
    /// Validates <paramref name="configPath"/>, then writes an image with <c>/config.json</c> (its bytes
    /// as given, mode 0644, owned by root) and <c>/root</c> (the tree of <paramref name="rootDirectory"/>).
    /// The top directory and config.json take the root directory's mtime (or the fixed timestamp).
    /// </summary>
    public static async Task<ImageBuildResult> BuildAsync(string rootDirectory, string configPath, string outputPath, SquashFsWriterOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(rootDirectory);
        ArgumentException.ThrowIfNullOrEmpty(configPath);
        ArgumentException.ThrowIfNullOrEmpty(outputPath);
        options ??= new SquashFsWriterOptions();
        if (!Directory.Exists(rootDirectory))
        {
            throw new ImageException(ImageErrorCategory.NotFound, $"Root directory '{rootDirectory}' does not exist.");
        }

        var config = ImageConfigReader.ReadFile(configPath);
        var configBytes = await File.ReadAllBytesAsync(configPath, cancellationToken).ConfigureAwait(false);
        var root = SourceNode.FromDirectory(rootDirectory, new SourceScanOptions { Xattrs = options.Xattrs }, EdgeUpdaterImage.RootDirectoryName);
        var top = SourceNode.Directory(string.Empty);
        top.Permissions = 0x1ED;
        top.ModifiedTime = root.ModifiedTime;
        var configNode = SourceNode.File(EdgeUpdaterImage.ConfigFileName, configBytes);
        configNode.Permissions = 0x1A4;
        configNode.ModifiedTime = root.ModifiedTime;
        top.Add(configNode).Add(root);

        var temporary = outputPath + ".partial";
        SquashFsWriteResult write;
        try
        {
            using (var sink = new FileImageSink(temporary))
            {
                write = await SquashFsWriter.WriteAsync(top, sink, options, cancellationToken).ConfigureAwait(false);
            }

            File.Move(temporary, outputPath, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }

        string hash;
        var stream = File.OpenRead(outputPath);
        await using (stream.ConfigureAwait(false))
        {
            hash = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false));
        }

        return new ImageBuildResult(outputPath, config, write, hash);
    }
}
