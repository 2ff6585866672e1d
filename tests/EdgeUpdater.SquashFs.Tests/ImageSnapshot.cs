using EdgeUpdater.SquashFs.Format;
using EdgeUpdater.SquashFs.Reader;
using EdgeUpdater.Testing;

namespace EdgeUpdater.SquashFs.Tests;

/// <summary>Renders what our reader sees as a <see cref="TreeNode"/> snapshot, comparable with a disk tree.</summary>
internal static class ImageSnapshot
{
    public static async Task<Dictionary<string, TreeNode>> CaptureAsync(SquashFsImage image, string under = "/")
    {
        var nodes = new Dictionary<string, TreeNode>(StringComparer.Ordinal);
        var prefix = under == "/" ? "/" : under.TrimEnd('/') + "/";
        foreach (var entry in image.Walk())
        {
            string path;
            if (entry.Path == under.TrimEnd('/') || (under == "/" && entry.Path == "/"))
            {
                path = string.Empty;
            }
            else if (entry.Path.StartsWith(prefix, StringComparison.Ordinal))
            {
                path = entry.Path[prefix.Length..];
            }
            else
            {
                continue;
            }

            var type = entry.Kind switch
            {
                InodeKind.Directory => 'd',
                InodeKind.File => 'f',
                InodeKind.Symlink => 'l',
                InodeKind.BlockDevice => 'b',
                InodeKind.CharDevice => 'c',
                InodeKind.Fifo => 'p',
                _ => 's',
            };
            string? hash = null;
            if (entry.IsFile)
            {
                await using var stream = entry.OpenRead();
                hash = await TreeSnapshot.HashAsync(stream);
            }

            nodes[path] = new TreeNode(
                path,
                type,
                entry.Permissions,
                entry.Uid,
                entry.Gid,
                entry.Inode.ModifiedTime,
                entry.IsFile ? entry.Size : 0,
                hash,
                entry.LinkTarget,
                type is 'b' or 'c' ? $"{entry.DeviceMajor}:{entry.DeviceMinor}" : null,
                TreeSnapshot.FormatXattrs(entry.GetXattrs().Select(x => (x.Name, x.Value))),
                type != 'd' && entry.LinkCount > 1 ? entry.Inode.InodeNumber.ToString(System.Globalization.CultureInfo.InvariantCulture) : null);
        }

        return nodes;
    }
}
