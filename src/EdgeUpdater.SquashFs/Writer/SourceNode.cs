using System.Text;
using EdgeUpdater.SquashFs.Format;
using EdgeUpdater.SquashFs.Interop.Linux;

namespace EdgeUpdater.SquashFs.Writer;

/// <summary>
/// One node of the tree the writer stores: from disk (<see cref="FromDirectory"/>) or built in memory.
/// File contents are not held: a file node carries its length and a function that opens its data.
/// </summary>
public sealed class SourceNode
{
    private readonly List<SourceNode> _children = [];

    private SourceNode(string name, InodeKind kind)
    {
        ArgumentNullException.ThrowIfNull(name);
        RawName = Encoding.UTF8.GetBytes(name);
        Kind = kind;
        Permissions = kind == InodeKind.Directory ? 0x1ED : 0x1A4;
    }

    /// <summary>Name as bytes (empty for the root).</summary>
    public byte[] RawName { get; init; }

    /// <summary>Name as text.</summary>
    public string Name => Encoding.UTF8.GetString(RawName);

    /// <summary>What this node is.</summary>
    public InodeKind Kind { get; }

    /// <summary>Permission bits (including setuid/setgid/sticky).</summary>
    public int Permissions { get; set; }

    /// <summary>Owner.</summary>
    public uint Uid { get; set; }

    /// <summary>Group.</summary>
    public uint Gid { get; set; }

    /// <summary>Modification time, seconds since the epoch.</summary>
    public long ModifiedTime { get; set; }

    /// <summary>Extended attributes (user.*, trusted.*, security.*).</summary>
    public IList<SquashFsXattr> Xattrs { get; } = new List<SquashFsXattr>();

    /// <summary>Files: length in bytes.</summary>
    public long Length { get; private set; }

    /// <summary>Files: opens the content for reading.</summary>
    public Func<Stream>? OpenContent { get; private set; }

    /// <summary>Symlinks: the target bytes.</summary>
    public byte[] LinkTarget { get; private set; } = [];

    /// <summary>Devices: major number.</summary>
    public uint DeviceMajor { get; private set; }

    /// <summary>Devices: minor number.</summary>
    public uint DeviceMinor { get; private set; }

    /// <summary>Nodes with the same non-null key are hard links to one inode (the first node's metadata wins).</summary>
    public object? HardLinkKey { get; set; }

    /// <summary>Directories: the children (any order; the writer sorts them byte-wise).</summary>
    public IReadOnlyList<SourceNode> Children => _children;

    /// <summary>A directory.</summary>
    public static SourceNode Directory(string name) => new(name, InodeKind.Directory);

    /// <summary>A file with in-memory content.</summary>
    public static SourceNode File(string name, byte[] content)
    {
        ArgumentNullException.ThrowIfNull(content);
        return new SourceNode(name, InodeKind.File) { Length = content.Length, OpenContent = () => new MemoryStream(content, writable: false) };
    }

    /// <summary>A file whose content is opened on demand.</summary>
    public static SourceNode File(string name, long length, Func<Stream> openContent)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentNullException.ThrowIfNull(openContent);
        return new SourceNode(name, InodeKind.File) { Length = length, OpenContent = openContent };
    }

    /// <summary>A symbolic link.</summary>
    public static SourceNode Symlink(string name, string target)
    {
        ArgumentException.ThrowIfNullOrEmpty(target);
        return new SourceNode(name, InodeKind.Symlink) { LinkTarget = Encoding.UTF8.GetBytes(target), Permissions = 0x1FF };
    }

    /// <summary>A block or character device.</summary>
    public static SourceNode Device(string name, InodeKind kind, uint major, uint minor)
    {
        if (kind is not (InodeKind.BlockDevice or InodeKind.CharDevice))
        {
            throw new ArgumentException("A device is a block or character device.", nameof(kind));
        }

        return new SourceNode(name, kind) { DeviceMajor = major, DeviceMinor = minor };
    }

    /// <summary>A FIFO or socket.</summary>
    public static SourceNode Special(string name, InodeKind kind)
    {
        if (kind is not (InodeKind.Fifo or InodeKind.Socket))
        {
            throw new ArgumentException("A special node is a FIFO or socket.", nameof(kind));
        }

        return new SourceNode(name, kind);
    }

    /// <summary>Adds a child to a directory; returns this directory.</summary>
    public SourceNode Add(SourceNode child)
    {
        ArgumentNullException.ThrowIfNull(child);
        if (Kind != InodeKind.Directory)
        {
            throw new InvalidOperationException($"'{Name}' is not a directory.");
        }

        if (child.RawName.Length == 0 || child.RawName.Length > 256 || child.RawName.AsSpan().IndexOfAny((byte)'/', (byte)0) >= 0 || child.Name is "." or "..")
        {
            throw new SquashFsException(SquashFsErrorCategory.InvalidInput, $"'{child.Name}' is not a valid entry name (1-256 bytes, no '/' or NUL, not '.' or '..').");
        }

        _children.Add(child);
        return this;
    }

    /// <summary>
    /// Scans a directory from disk without following symlinks: metadata with statx, xattrs with
    /// llistxattr/lgetxattr, hard links by (device, inode). File contents are read later, when written.
    /// The returned node is named <paramref name="name"/> ("" for an image root) and carries the
    /// directory's own metadata.
    /// </summary>
    public static SourceNode FromDirectory(string path, SourceScanOptions? options = null, string name = "")
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new SourceScanOptions();
        var full = Path.GetFullPath(path);
        var rootStat = Statx.LStat(full);
        if ((rootStat.Mode & 0xF000) != 0x4000)
        {
            throw new SquashFsException(SquashFsErrorCategory.InvalidInput, $"'{path}' is not a directory.");
        }

        var root = FromStat(name, full, rootStat, options, null);
        var links = new Dictionary<(uint, uint, ulong), object>();
        var pending = new Stack<(SourceNode Node, string Path, int Depth)>();
        pending.Push((root, full, 0));
        while (pending.Count > 0)
        {
            var (dir, dirPath, depth) = pending.Pop();
            if (depth > 1024)
            {
                throw new SquashFsException(SquashFsErrorCategory.InvalidInput, $"'{dirPath}' is nested deeper than 1024 levels.");
            }

            foreach (var childPath in System.IO.Directory.EnumerateFileSystemEntries(dirPath))
            {
                var stat = Statx.LStat(childPath);
                var node = FromStat(Path.GetFileName(childPath), childPath, stat, options, links);
                dir.Add(node);
                if (node.Kind == InodeKind.Directory)
                {
                    pending.Push((node, childPath, depth + 1));
                }
            }
        }

        return root;
    }

    private static SourceNode FromStat(string name, string path, Statx.Result stat, SourceScanOptions options, Dictionary<(uint, uint, ulong), object>? links)
    {
        var kind = (stat.Mode & 0xF000) switch
        {
            0x4000 => InodeKind.Directory,
            0x8000 => InodeKind.File,
            0xA000 => InodeKind.Symlink,
            0x6000 => InodeKind.BlockDevice,
            0x2000 => InodeKind.CharDevice,
            0x1000 => InodeKind.Fifo,
            0xC000 => InodeKind.Socket,
            _ => throw new SquashFsException(SquashFsErrorCategory.InvalidInput, $"'{path}' has unknown file type 0x{stat.Mode & 0xF000:x}."),
        };
        var node = new SourceNode(name, kind)
        {
            Permissions = stat.Mode & 0xFFF,
            Uid = stat.Uid,
            Gid = stat.Gid,
            ModifiedTime = stat.ModifySeconds,
        };
        switch (kind)
        {
            case InodeKind.File:
                node.Length = (long)stat.Size;
                node.OpenContent = () => new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.SequentialScan);
                break;
            case InodeKind.Symlink:
                node.LinkTarget = Encoding.UTF8.GetBytes(new FileInfo(path).LinkTarget ?? string.Empty);
                break;
            case InodeKind.BlockDevice:
            case InodeKind.CharDevice:
                node.DeviceMajor = stat.RdevMajor;
                node.DeviceMinor = stat.RdevMinor;
                break;
        }

        if (links is not null && kind != InodeKind.Directory && stat.LinkCount > 1)
        {
            var key = (stat.DevMajor, stat.DevMinor, stat.Inode);
            if (!links.TryGetValue(key, out var shared))
            {
                links[key] = shared = new object();
            }

            node.HardLinkKey = shared;
        }

        if (options.Xattrs)
        {
            foreach (var xattrName in Xattr.List(path))
            {
                if (!SquashFsXattrNames.IsStorable(xattrName))
                {
                    continue;
                }

                var value = Xattr.Get(path, xattrName);
                if (value is not null)
                {
                    node.Xattrs.Add(new SquashFsXattr(xattrName, value));
                }
            }
        }

        return node;
    }
}

/// <summary>How <see cref="SourceNode.FromDirectory"/> scans.</summary>
public sealed record SourceScanOptions
{
    /// <summary>Read xattrs (default true).</summary>
    public bool Xattrs { get; init; } = true;
}

/// <summary>The xattr namespaces SquashFS can store.</summary>
public static class SquashFsXattrNames
{
    /// <summary>True for user.*, trusted.* and security.* names; others (system.*, e.g. POSIX ACLs) cannot be stored.</summary>
    public static bool IsStorable(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return PrefixType(name) >= 0;
    }

    /// <summary>0 user, 1 trusted, 2 security, -1 otherwise.</summary>
    internal static int PrefixType(string name) =>
        name.StartsWith("user.", StringComparison.Ordinal) ? 0
        : name.StartsWith("trusted.", StringComparison.Ordinal) ? 1
        : name.StartsWith("security.", StringComparison.Ordinal) ? 2
        : -1;
}
