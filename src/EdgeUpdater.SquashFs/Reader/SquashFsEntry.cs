using EdgeUpdater.SquashFs.Format;

namespace EdgeUpdater.SquashFs.Reader;

/// <summary>A named node of the tree: a path, its inode and its stat fields.</summary>
public sealed class SquashFsEntry
{
    internal SquashFsEntry(SquashFsImage image, string path, byte[] name, InodeReference reference, Inode inode)
    {
        Image = image;
        Path = path;
        RawName = name;
        Reference = reference;
        Inode = inode;
    }

    /// <summary>The image this entry belongs to.</summary>
    public SquashFsImage Image { get; }

    /// <summary>Absolute path inside the image ("/" for the root, "/etc/passwd").</summary>
    public string Path { get; }

    /// <summary>Raw name bytes (empty for the root).</summary>
    public byte[] RawName { get; }

    /// <summary>The name (empty for the root).</summary>
    public string Name => System.Text.Encoding.UTF8.GetString(RawName);

    /// <summary>Inode reference.</summary>
    public InodeReference Reference { get; }

    /// <summary>The parsed inode.</summary>
    public Inode Inode { get; }

    /// <summary>Kind of object.</summary>
    public InodeKind Kind => Inode.Kind;

    /// <summary>True for directories.</summary>
    public bool IsDirectory => Kind == InodeKind.Directory;

    /// <summary>True for regular files.</summary>
    public bool IsFile => Kind == InodeKind.File;

    /// <summary>Full st_mode: type bits and permissions.</summary>
    public uint Mode => Inode.Permissions | Kind switch
    {
        InodeKind.Directory => 0x4000u,
        InodeKind.File => 0x8000u,
        InodeKind.Symlink => 0xA000u,
        InodeKind.BlockDevice => 0x6000u,
        InodeKind.CharDevice => 0x2000u,
        InodeKind.Fifo => 0x1000u,
        _ => 0xC000u,
    };

    /// <summary>Permission bits (including setuid/setgid/sticky).</summary>
    public int Permissions => Inode.Permissions & 0xFFF;

    /// <summary>Owner uid.</summary>
    public uint Uid => Image.GetId(Inode.UidIndex);

    /// <summary>Group gid.</summary>
    public uint Gid => Image.GetId(Inode.GidIndex);

    /// <summary>Modification time.</summary>
    public DateTimeOffset ModifiedTime => DateTimeOffset.FromUnixTimeSeconds(Inode.ModifiedTime);

    /// <summary>Size: file bytes, symlink target length, 0 for others (directories report the listing size).</summary>
    public long Size => Kind is InodeKind.File or InodeKind.Symlink or InodeKind.Directory ? (long)Inode.FileSize : 0;

    /// <summary>Hard link count.</summary>
    public uint LinkCount => Inode.LinkCount;

    /// <summary>Symlink target, or null.</summary>
    public string? LinkTarget => Kind == InodeKind.Symlink ? System.Text.Encoding.UTF8.GetString(Inode.SymlinkTarget) : null;

    /// <summary>Device major number (devices only).</summary>
    public uint DeviceMajor => Inode.DeviceMajor;

    /// <summary>Device minor number (devices only).</summary>
    public uint DeviceMinor => Inode.DeviceMinor;

    /// <summary>The extended attributes (empty when none).</summary>
    public IReadOnlyList<SquashFsXattr> GetXattrs() => Image.ReadXattrs(Inode.XattrIndex);

    /// <summary>Opens a regular file as a read-only seekable stream.</summary>
    public Stream OpenRead() => Image.OpenFile(this);

    /// <summary>Lists a directory's children.</summary>
    public IEnumerable<SquashFsEntry> EnumerateChildren() => Image.EnumerateDirectory(this);

    /// <inheritdoc />
    public override string ToString() => Path;
}
