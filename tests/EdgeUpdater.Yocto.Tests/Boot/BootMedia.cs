using System.Globalization;
using EdgeUpdater.Testing;

namespace EdgeUpdater.Yocto.Tests.Boot;

/// <summary>The files of one SquashFS image, as <c>unsquashfs -lls</c> lists them (path from the image root, size).</summary>
internal sealed class SquashFsListing
{
    private readonly Dictionary<string, long> _files;

    private SquashFsListing(Dictionary<string, long> files)
    {
        _files = files;
    }

    public static async Task<SquashFsListing> ReadAsync(string image, CancellationToken cancellationToken = default)
    {
        // -d "" makes unsquashfs print paths from the image root; regular files start with '-'.
        var result = await ExternalTool.RunCheckedAsync("unsquashfs", ["-lls", "-d", string.Empty, image], cancellationToken: cancellationToken);
        var files = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var line in result.StandardOutput.Split('\n'))
        {
            if (!line.StartsWith('-'))
            {
                continue;
            }

            // -rw-r--r-- root/root  1234 2026-01-01 00:00 /root/boot/Image
            var fields = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 6)
            {
                files[fields[5]] = long.Parse(fields[2], CultureInfo.InvariantCulture);
            }
        }

        return new SquashFsListing(files);
    }

    /// <summary>Size of the regular file at <paramref name="path"/> (absolute, from the image root), or null.</summary>
    public long? SizeOf(string path) => _files.TryGetValue(path, out var size) ? size : null;
}

/// <summary>
/// The disk as the simulated bootloader sees it: partitions by name (<c>mmc 0:2</c>, <c>hd0,gpt2</c>),
/// each holding a SquashFS slot image or nothing (an empty or unreadable partition).
/// </summary>
internal sealed class BootMedia
{
    private readonly Dictionary<string, SquashFsListing?> _partitions = new(StringComparer.Ordinal);

    public void SetPartition(string name, SquashFsListing? image) => _partitions[name] = image;

    /// <summary>Size of <paramref name="path"/> in the image on <paramref name="partition"/>, or null.</summary>
    public long? SizeOf(string partition, string path) =>
        _partitions.TryGetValue(partition, out var image) && image is not null ? image.SizeOf(path) : null;
}
