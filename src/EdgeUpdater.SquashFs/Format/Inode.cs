using System.Buffers.Binary;

namespace EdgeUpdater.SquashFs.Format;

/// <summary>Inode types as stored (basic 1-7, extended 8-14).</summary>
public enum InodeType : ushort
{
    /// <summary>Basic directory.</summary>
    BasicDirectory = 1,

    /// <summary>Basic regular file.</summary>
    BasicFile = 2,

    /// <summary>Basic symbolic link.</summary>
    BasicSymlink = 3,

    /// <summary>Basic block device.</summary>
    BasicBlockDevice = 4,

    /// <summary>Basic character device.</summary>
    BasicCharDevice = 5,

    /// <summary>Basic FIFO.</summary>
    BasicFifo = 6,

    /// <summary>Basic socket.</summary>
    BasicSocket = 7,

    /// <summary>Extended directory (large listings, directory index, xattrs).</summary>
    ExtendedDirectory = 8,

    /// <summary>Extended regular file (64-bit sizes, hard links, sparse, xattrs).</summary>
    ExtendedFile = 9,

    /// <summary>Extended symbolic link (xattrs).</summary>
    ExtendedSymlink = 10,

    /// <summary>Extended block device.</summary>
    ExtendedBlockDevice = 11,

    /// <summary>Extended character device.</summary>
    ExtendedCharDevice = 12,

    /// <summary>Extended FIFO.</summary>
    ExtendedFifo = 13,

    /// <summary>Extended socket.</summary>
    ExtendedSocket = 14,
}

/// <summary>What an inode is, independent of basic/extended encoding.</summary>
public enum InodeKind
{
    /// <summary>Directory.</summary>
    Directory,

    /// <summary>Regular file.</summary>
    File,

    /// <summary>Symbolic link.</summary>
    Symlink,

    /// <summary>Block device.</summary>
    BlockDevice,

    /// <summary>Character device.</summary>
    CharDevice,

    /// <summary>FIFO.</summary>
    Fifo,

    /// <summary>Unix socket.</summary>
    Socket,
}

/// <summary>One entry of an extended directory's index: where a directory header starts.</summary>
/// <param name="Index">Byte offset of the header inside the directory's uncompressed listing.</param>
/// <param name="Start">Start of the metadata block holding that header, relative to the directory table.</param>
/// <param name="Name">Name of the header's first entry (raw bytes).</param>
public sealed record DirectoryIndexEntry(uint Index, uint Start, byte[] Name);

/// <summary>
/// One inode, every field of every type in one model (fields that do not apply to a type are zero).
/// <see cref="Write"/> re-encodes it byte-identically to what the reader read.
/// </summary>
public sealed class Inode
{
    /// <summary>Fragment index meaning "no fragment".</summary>
    public const uint NoFragment = 0xFFFFFFFF;

    /// <summary>Xattr index meaning "no xattrs".</summary>
    public const uint NoXattr = 0xFFFFFFFF;

    /// <summary>Bit of a block size entry that marks an uncompressed block.</summary>
    public const uint UncompressedBlockBit = 1u << 24;

    /// <summary>Stored type (basic or extended).</summary>
    public InodeType Type { get; set; }

    /// <summary>Permission bits (lower 12 bits of st_mode).</summary>
    public ushort Permissions { get; set; }

    /// <summary>Index of the owner uid in the id table.</summary>
    public ushort UidIndex { get; set; }

    /// <summary>Index of the group gid in the id table.</summary>
    public ushort GidIndex { get; set; }

    /// <summary>Modification time, seconds since the epoch.</summary>
    public uint ModifiedTime { get; set; }

    /// <summary>Inode number (1 to inode count).</summary>
    public uint InodeNumber { get; set; }

    /// <summary>Hard link count (basic files have none stored and report 1).</summary>
    public uint LinkCount { get; set; } = 1;

    /// <summary>File size; for directories the listing size + 3; for symlinks the target length.</summary>
    public ulong FileSize { get; set; }

    /// <summary>Files: image offset of the first data block.</summary>
    public ulong BlocksStart { get; set; }

    /// <summary>Files: fragment table index of the tail, or <see cref="NoFragment"/>.</summary>
    public uint FragmentIndex { get; set; } = NoFragment;

    /// <summary>Files: offset of the tail in the uncompressed fragment block.</summary>
    public uint FragmentOffset { get; set; }

    /// <summary>Extended files: bytes saved by sparse (all-zero, unstored) blocks.</summary>
    public ulong Sparse { get; set; }

    /// <summary>Extended inodes: xattr id table index, or <see cref="NoXattr"/>.</summary>
    public uint XattrIndex { get; set; } = NoXattr;

    /// <summary>Files: one entry per full block (and the tail block when there is no fragment): stored size, bit 24 set when uncompressed, 0 when sparse.</summary>
    public uint[] BlockSizes { get; set; } = [];

    /// <summary>Directories: start of the listing's metadata block relative to the directory table start.</summary>
    public uint DirectoryBlockStart { get; set; }

    /// <summary>Directories: offset of the listing inside the uncompressed metadata block.</summary>
    public ushort DirectoryBlockOffset { get; set; }

    /// <summary>Directories: inode number of the parent directory (inode count + 1 for the root).</summary>
    public uint ParentInode { get; set; }

    /// <summary>Extended directories: the directory index.</summary>
    public DirectoryIndexEntry[] DirectoryIndex { get; set; } = [];

    /// <summary>Symlinks: the target bytes.</summary>
    public byte[] SymlinkTarget { get; set; } = [];

    /// <summary>Devices: the device number as stored (Linux new-style encoding).</summary>
    public uint DeviceNumber { get; set; }

    /// <summary>The kind of object.</summary>
    public InodeKind Kind => KindOf(Type);

    /// <summary>True for the extended encodings.</summary>
    public bool IsExtended => Type >= InodeType.ExtendedDirectory;

    /// <summary>True when a regular file's tail lies in a fragment.</summary>
    public bool HasFragment => Kind == InodeKind.File && FragmentIndex != NoFragment;

    /// <summary>The kind of an inode type; throws for unknown types.</summary>
    public static InodeKind KindOf(InodeType type) => type switch
    {
        InodeType.BasicDirectory or InodeType.ExtendedDirectory => InodeKind.Directory,
        InodeType.BasicFile or InodeType.ExtendedFile => InodeKind.File,
        InodeType.BasicSymlink or InodeType.ExtendedSymlink => InodeKind.Symlink,
        InodeType.BasicBlockDevice or InodeType.ExtendedBlockDevice => InodeKind.BlockDevice,
        InodeType.BasicCharDevice or InodeType.ExtendedCharDevice => InodeKind.CharDevice,
        InodeType.BasicFifo or InodeType.ExtendedFifo => InodeKind.Fifo,
        InodeType.BasicSocket or InodeType.ExtendedSocket => InodeKind.Socket,
        _ => throw SquashFsException.Corrupted($"Unknown inode type {(ushort)type}."),
    };

    /// <summary>The basic type of a kind (directory entries always store the basic type).</summary>
    public static InodeType BasicTypeOf(InodeKind kind) => kind switch
    {
        InodeKind.Directory => InodeType.BasicDirectory,
        InodeKind.File => InodeType.BasicFile,
        InodeKind.Symlink => InodeType.BasicSymlink,
        InodeKind.BlockDevice => InodeType.BasicBlockDevice,
        InodeKind.CharDevice => InodeType.BasicCharDevice,
        InodeKind.Fifo => InodeType.BasicFifo,
        _ => InodeType.BasicSocket,
    };

    /// <summary>Number of block size entries a file inode of this size carries.</summary>
    public static ulong BlockCountOf(ulong fileSize, uint blockSize, bool hasFragment)
    {
        var full = fileSize / blockSize;
        return hasFragment || fileSize % blockSize == 0 ? full : full + 1;
    }

    /// <summary>Encoded size in bytes.</summary>
    public int EncodedLength => 16 + Type switch
    {
        InodeType.BasicDirectory => 16,
        InodeType.ExtendedDirectory => 24 + DirectoryIndex.Sum(i => 12 + i.Name.Length),
        InodeType.BasicFile => 16 + (4 * BlockSizes.Length),
        InodeType.ExtendedFile => 40 + (4 * BlockSizes.Length),
        InodeType.BasicSymlink => 8 + SymlinkTarget.Length,
        InodeType.ExtendedSymlink => 12 + SymlinkTarget.Length,
        InodeType.BasicBlockDevice or InodeType.BasicCharDevice => 8,
        InodeType.ExtendedBlockDevice or InodeType.ExtendedCharDevice => 12,
        InodeType.BasicFifo or InodeType.BasicSocket => 4,
        InodeType.ExtendedFifo or InodeType.ExtendedSocket => 8,
        _ => throw SquashFsException.Corrupted($"Unknown inode type {(ushort)Type}."),
    };

    /// <summary>Encodes the inode into <paramref name="destination"/>; returns the bytes written.</summary>
    public int Write(Span<byte> destination)
    {
        var length = EncodedLength;
        if (destination.Length < length)
        {
            throw new ArgumentException($"The inode needs {length} bytes.", nameof(destination));
        }

        var d = destination;
        BinaryPrimitives.WriteUInt16LittleEndian(d, (ushort)Type);
        BinaryPrimitives.WriteUInt16LittleEndian(d[2..], Permissions);
        BinaryPrimitives.WriteUInt16LittleEndian(d[4..], UidIndex);
        BinaryPrimitives.WriteUInt16LittleEndian(d[6..], GidIndex);
        BinaryPrimitives.WriteUInt32LittleEndian(d[8..], ModifiedTime);
        BinaryPrimitives.WriteUInt32LittleEndian(d[12..], InodeNumber);
        d = d[16..];
        switch (Type)
        {
            case InodeType.BasicDirectory:
                BinaryPrimitives.WriteUInt32LittleEndian(d, DirectoryBlockStart);
                BinaryPrimitives.WriteUInt32LittleEndian(d[4..], LinkCount);
                BinaryPrimitives.WriteUInt16LittleEndian(d[8..], checked((ushort)FileSize));
                BinaryPrimitives.WriteUInt16LittleEndian(d[10..], DirectoryBlockOffset);
                BinaryPrimitives.WriteUInt32LittleEndian(d[12..], ParentInode);
                break;
            case InodeType.ExtendedDirectory:
                BinaryPrimitives.WriteUInt32LittleEndian(d, LinkCount);
                BinaryPrimitives.WriteUInt32LittleEndian(d[4..], checked((uint)FileSize));
                BinaryPrimitives.WriteUInt32LittleEndian(d[8..], DirectoryBlockStart);
                BinaryPrimitives.WriteUInt32LittleEndian(d[12..], ParentInode);
                BinaryPrimitives.WriteUInt16LittleEndian(d[16..], checked((ushort)DirectoryIndex.Length));
                BinaryPrimitives.WriteUInt16LittleEndian(d[18..], DirectoryBlockOffset);
                BinaryPrimitives.WriteUInt32LittleEndian(d[20..], XattrIndex);
                d = d[24..];
                foreach (var entry in DirectoryIndex)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(d, entry.Index);
                    BinaryPrimitives.WriteUInt32LittleEndian(d[4..], entry.Start);
                    BinaryPrimitives.WriteUInt32LittleEndian(d[8..], (uint)(entry.Name.Length - 1));
                    entry.Name.CopyTo(d[12..]);
                    d = d[(12 + entry.Name.Length)..];
                }

                break;
            case InodeType.BasicFile:
                BinaryPrimitives.WriteUInt32LittleEndian(d, checked((uint)BlocksStart));
                BinaryPrimitives.WriteUInt32LittleEndian(d[4..], FragmentIndex);
                BinaryPrimitives.WriteUInt32LittleEndian(d[8..], FragmentOffset);
                BinaryPrimitives.WriteUInt32LittleEndian(d[12..], checked((uint)FileSize));
                WriteBlockSizes(d[16..]);
                break;
            case InodeType.ExtendedFile:
                BinaryPrimitives.WriteUInt64LittleEndian(d, BlocksStart);
                BinaryPrimitives.WriteUInt64LittleEndian(d[8..], FileSize);
                BinaryPrimitives.WriteUInt64LittleEndian(d[16..], Sparse);
                BinaryPrimitives.WriteUInt32LittleEndian(d[24..], LinkCount);
                BinaryPrimitives.WriteUInt32LittleEndian(d[28..], FragmentIndex);
                BinaryPrimitives.WriteUInt32LittleEndian(d[32..], FragmentOffset);
                BinaryPrimitives.WriteUInt32LittleEndian(d[36..], XattrIndex);
                WriteBlockSizes(d[40..]);
                break;
            case InodeType.BasicSymlink:
            case InodeType.ExtendedSymlink:
                BinaryPrimitives.WriteUInt32LittleEndian(d, LinkCount);
                BinaryPrimitives.WriteUInt32LittleEndian(d[4..], (uint)SymlinkTarget.Length);
                SymlinkTarget.CopyTo(d[8..]);
                if (Type == InodeType.ExtendedSymlink)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(d[(8 + SymlinkTarget.Length)..], XattrIndex);
                }

                break;
            case InodeType.BasicBlockDevice:
            case InodeType.BasicCharDevice:
            case InodeType.ExtendedBlockDevice:
            case InodeType.ExtendedCharDevice:
                BinaryPrimitives.WriteUInt32LittleEndian(d, LinkCount);
                BinaryPrimitives.WriteUInt32LittleEndian(d[4..], DeviceNumber);
                if (IsExtended)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(d[8..], XattrIndex);
                }

                break;
            default:
                BinaryPrimitives.WriteUInt32LittleEndian(d, LinkCount);
                if (IsExtended)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(d[4..], XattrIndex);
                }

                break;
        }

        return length;
    }

    /// <summary>Encodes the inode into a new array.</summary>
    public byte[] ToArray()
    {
        var bytes = new byte[EncodedLength];
        Write(bytes);
        return bytes;
    }

    /// <summary>Device major number (Linux encoding as the kernel's squashfs driver decodes it).</summary>
    public uint DeviceMajor => (DeviceNumber >> 8) & 0xFFF;

    /// <summary>Device minor number.</summary>
    public uint DeviceMinor => (DeviceNumber & 0xFF) | ((DeviceNumber >> 12) & 0xFFF00);

    /// <summary>Encodes a device number the way the kernel's new_encode_dev does.</summary>
    public static uint EncodeDevice(uint major, uint minor) => (minor & 0xFF) | (major << 8) | ((minor & ~0xFFu) << 12);

    private void WriteBlockSizes(Span<byte> d)
    {
        for (var i = 0; i < BlockSizes.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(d[(4 * i)..], BlockSizes[i]);
        }
    }
}
