using EdgeUpdater.SquashFs.Format;
using EdgeUpdater.SquashFs.Interop.Linux;

namespace EdgeUpdater.SquashFs.Reader;

/// <summary>How <see cref="SquashFsExtractor"/> extracts.</summary>
public sealed record SquashFsExtractOptions
{
    /// <summary>Restore uid/gid (default: when running as root).</summary>
    public bool PreserveOwners { get; init; } = Environment.IsPrivilegedProcess;

    /// <summary>Restore xattrs (default true; security.* and trusted.* are skipped, and reported, without root).</summary>
    public bool PreserveXattrs { get; init; } = true;

    /// <summary>Create device nodes (default: when running as root; otherwise they are skipped and reported).</summary>
    public bool CreateDevices { get; init; } = Environment.IsPrivilegedProcess;
}

/// <summary>What an extraction did.</summary>
/// <param name="Entries">Entries created (files, directories, links, nodes).</param>
/// <param name="Bytes">File bytes written.</param>
/// <param name="Skipped">Entries or attributes not restored, with the reason.</param>
public sealed record SquashFsExtractResult(long Entries, long Bytes, IReadOnlyList<string> Skipped);

/// <summary>
/// Extracts an image (or a subtree) into a directory. Never writes outside the destination: names are
/// validated by the reader, every parent is a directory this extraction created itself, existing
/// paths are never reused or followed, and symlinks are created, never followed.
/// </summary>
public static class SquashFsExtractor
{
    /// <summary>Extracts <paramref name="sourcePath"/> (default the whole image) into <paramref name="destination"/>.</summary>
    public static Task<SquashFsExtractResult> ExtractAsync(SquashFsImage image, string destination, string sourcePath = "/", SquashFsExtractOptions? options = null, CancellationToken cancellationToken = default) =>
        Task.Run(() => Extract(image, destination, sourcePath, options, cancellationToken), cancellationToken);

    /// <summary>Synchronous <see cref="ExtractAsync"/>.</summary>
    public static SquashFsExtractResult Extract(SquashFsImage image, string destination, string sourcePath = "/", SquashFsExtractOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentException.ThrowIfNullOrEmpty(destination);
        options ??= new SquashFsExtractOptions();
        var top = image.GetEntry(sourcePath);
        if (!top.IsDirectory)
        {
            throw new SquashFsException(SquashFsErrorCategory.InvalidOperation, $"'{top.Path}' is not a directory; extract a directory.");
        }

        var destinationFull = Path.GetFullPath(destination).TrimEnd('/');
        Directory.CreateDirectory(destinationFull);
        var created = new HashSet<string>(StringComparer.Ordinal) { destinationFull };
        var firstPathOfInode = new Dictionary<uint, string>();
        var directories = new List<(string Path, SquashFsEntry Entry)>();
        var skipped = new List<string>();
        long entries = 0;
        long bytes = 0;
        var prefix = top.Path == "/" ? "/" : top.Path + "/";
        foreach (var entry in image.Walk())
        {
            cancellationToken.ThrowIfCancellationRequested();
            string relative;
            if (entry.Path == top.Path)
            {
                relative = string.Empty;
            }
            else if (entry.Path.StartsWith(prefix, StringComparison.Ordinal))
            {
                relative = entry.Path[prefix.Length..];
            }
            else
            {
                continue;
            }

            var target = relative.Length == 0 ? destinationFull : Path.GetFullPath(Path.Combine(destinationFull, relative));
            if (relative.Length > 0)
            {
                var parent = Path.GetDirectoryName(target)!;
                if (!target.StartsWith(destinationFull + "/", StringComparison.Ordinal) || !created.Contains(parent))
                {
                    throw new SquashFsException(SquashFsErrorCategory.Corrupted, $"Refusing '{entry.Path}': it would be written outside '{destinationFull}' or below something that is not a directory this extraction created.");
                }

                if (created.Contains(target) || PathExists(target))
                {
                    throw new SquashFsException(SquashFsErrorCategory.Corrupted, $"Refusing '{entry.Path}': '{target}' already exists (a duplicate entry in the image, or a file in the destination).");
                }
            }

            if (entry.Kind != InodeKind.Directory && entry.Inode.LinkCount > 1 && firstPathOfInode.TryGetValue(entry.Inode.InodeNumber, out var first))
            {
                FileNodes.Link(first, target);
                created.Add(target);
                entries++;
                continue;
            }

            switch (entry.Kind)
            {
                case InodeKind.Directory:
                    if (relative.Length > 0)
                    {
                        Directory.CreateDirectory(target);
                    }

                    directories.Add((target, entry));
                    break;
                case InodeKind.File:
                    // Synchronous copy: the image reads are synchronous and a thread-pool hop per block costs more than it saves.
                    CopyFile(entry, target, image.BlockSize);

                    bytes += entry.Size;
                    break;
                case InodeKind.Symlink:
                    File.CreateSymbolicLink(target, entry.LinkTarget!);
                    break;
                case InodeKind.BlockDevice:
                case InodeKind.CharDevice:
                    if (!options.CreateDevices)
                    {
                        skipped.Add($"{entry.Path}: device {entry.DeviceMajor}:{entry.DeviceMinor} not created (needs root)");
                        continue;
                    }

                    FileNodes.Mknod(target, entry.Mode, entry.DeviceMajor, entry.DeviceMinor);
                    break;
                default:
                    FileNodes.Mknod(target, entry.Mode, 0, 0);
                    break;
            }

            created.Add(target);
            entries++;
            if (entry.Kind != InodeKind.Directory && entry.Inode.LinkCount > 1)
            {
                firstPathOfInode[entry.Inode.InodeNumber] = target;
            }

            if (entry.Kind != InodeKind.Directory)
            {
                ApplyMetadata(target, entry, options, skipped);
            }
        }

        // Directories last, deepest first: creating children changes a directory's mtime.
        for (var i = directories.Count - 1; i >= 0; i--)
        {
            ApplyMetadata(directories[i].Path, directories[i].Entry, options, skipped);
        }

        return new SquashFsExtractResult(entries, bytes, skipped);
    }

    private static void ApplyMetadata(string path, SquashFsEntry entry, SquashFsExtractOptions options, List<string> skipped)
    {
        if (options.PreserveOwners)
        {
            FileNodes.Lchown(path, entry.Uid, entry.Gid);
        }

        if (options.PreserveXattrs)
        {
            foreach (var xattr in entry.GetXattrs())
            {
                try
                {
                    Xattr.Set(path, xattr.Name, xattr.Value);
                }
                catch (IOException e) when (!Environment.IsPrivilegedProcess || e.HResult == 95)
                {
                    skipped.Add($"{entry.Path}: xattr {xattr.Name} not restored ({e.Message})");
                }
            }
        }

        if (entry.Kind != InodeKind.Symlink)
        {
            // After chown, which clears setuid/setgid.
            FileNodes.Chmod(path, (uint)entry.Permissions);
        }

        FileNodes.SetTimes(path, entry.Inode.ModifiedTime);
    }

    private static bool PathExists(string path) => Statx.TryLStat(path, out _);

    private static void CopyFile(SquashFsEntry entry, string target, int bufferSize)
    {
        using var output = new FileStream(target, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.SequentialScan);
        using var input = entry.OpenRead();
        input.CopyTo(output, bufferSize);
    }
}
