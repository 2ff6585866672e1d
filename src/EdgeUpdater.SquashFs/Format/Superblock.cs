using System.Buffers.Binary;

namespace EdgeUpdater.SquashFs.Format;

/// <summary>Compressor ids stored in the superblock.</summary>
public enum CompressorId : ushort
{
    /// <summary>zlib deflate ("gzip").</summary>
    Gzip = 1,

    /// <summary>Legacy LZMA (not written by mksquashfs 4.x by default; not supported).</summary>
    Lzma = 2,

    /// <summary>LZO.</summary>
    Lzo = 3,

    /// <summary>XZ (LZMA2 in an .xz container).</summary>
    Xz = 4,

    /// <summary>LZ4 (legacy block format).</summary>
    Lz4 = 5,

    /// <summary>Zstandard.</summary>
    Zstd = 6,
}

/// <summary>Superblock flags.</summary>
[Flags]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1711", Justification = "The format names them flags.")]
public enum SuperblockFlags : ushort
{
    /// <summary>No flags.</summary>
    None = 0,

    /// <summary>Inode table stored uncompressed.</summary>
    UncompressedInodes = 0x0001,

    /// <summary>Data blocks stored uncompressed.</summary>
    UncompressedData = 0x0002,

    /// <summary>Unused (check data).</summary>
    Check = 0x0004,

    /// <summary>Fragment blocks stored uncompressed.</summary>
    UncompressedFragments = 0x0008,

    /// <summary>Tails are never packed into fragments.</summary>
    NoFragments = 0x0010,

    /// <summary>Files smaller than a block always go into fragments.</summary>
    AlwaysFragments = 0x0020,

    /// <summary>Duplicate files were detected and stored once.</summary>
    Duplicates = 0x0040,

    /// <summary>An export (NFS lookup) table is present.</summary>
    Exportable = 0x0080,

    /// <summary>Xattr tables stored uncompressed.</summary>
    UncompressedXattrs = 0x0100,

    /// <summary>No xattrs are stored.</summary>
    NoXattrs = 0x0200,

    /// <summary>A compressor options block follows the superblock.</summary>
    CompressorOptions = 0x0400,

    /// <summary>The id table is stored uncompressed.</summary>
    UncompressedIds = 0x0800,
}

/// <summary>The 96-byte SquashFS 4.0 superblock, every field as stored.</summary>
public sealed record Superblock
{
    /// <summary>"hsqs" little endian.</summary>
    public const uint MagicValue = 0x73717368;

    /// <summary>Size of the superblock on disk.</summary>
    public const int Size = 96;

    /// <summary>Value of a table start that says "no such table".</summary>
    public const ulong NoTable = ulong.MaxValue;

    /// <summary>Magic number (<see cref="MagicValue"/>).</summary>
    public uint Magic { get; init; } = MagicValue;

    /// <summary>Number of inodes.</summary>
    public uint InodeCount { get; init; }

    /// <summary>Image creation time, seconds since the epoch.</summary>
    public uint ModificationTime { get; init; }

    /// <summary>Data block size in bytes (4 KiB to 1 MiB, a power of two).</summary>
    public uint BlockSize { get; init; }

    /// <summary>Number of fragment table entries.</summary>
    public uint FragmentEntryCount { get; init; }

    /// <summary>Compressor of every compressed block.</summary>
    public CompressorId Compressor { get; init; }

    /// <summary>log2 of <see cref="BlockSize"/>.</summary>
    public ushort BlockLog { get; init; }

    /// <summary>True for the data block sizes SquashFS allows: powers of two from 4 KiB to 1 MiB.</summary>
    public static bool IsValidBlockSize(uint blockSize) => blockSize is >= 4096 and <= 1 << 20 && uint.IsPow2(blockSize);

    /// <summary>Flags.</summary>
    public SuperblockFlags Flags { get; init; }

    /// <summary>Number of entries in the id table.</summary>
    public ushort IdCount { get; init; }

    /// <summary>Major version (4).</summary>
    public ushort VersionMajor { get; init; } = 4;

    /// <summary>Minor version (0).</summary>
    public ushort VersionMinor { get; init; }

    /// <summary>Reference of the root directory inode.</summary>
    public InodeReference RootInode { get; init; }

    /// <summary>Bytes used by the image (the rest up to the file length is padding).</summary>
    public ulong BytesUsed { get; init; }

    /// <summary>Start of the id table index.</summary>
    public ulong IdTableStart { get; init; }

    /// <summary>Start of the xattr id table header, or <see cref="NoTable"/>.</summary>
    public ulong XattrIdTableStart { get; init; } = NoTable;

    /// <summary>Start of the inode table.</summary>
    public ulong InodeTableStart { get; init; }

    /// <summary>Start of the directory table.</summary>
    public ulong DirectoryTableStart { get; init; }

    /// <summary>Start of the fragment table index, or <see cref="NoTable"/>.</summary>
    public ulong FragmentTableStart { get; init; } = NoTable;

    /// <summary>Start of the export table index, or <see cref="NoTable"/>.</summary>
    public ulong ExportTableStart { get; init; } = NoTable;

    /// <summary>True when a compressor options block follows the superblock.</summary>
    public bool HasCompressorOptions => (Flags & SuperblockFlags.CompressorOptions) != 0;

    /// <summary>True when an export table is present.</summary>
    public bool HasExportTable => ExportTableStart != NoTable && (Flags & SuperblockFlags.Exportable) != 0;

    /// <summary>True when an xattr table is present.</summary>
    public bool HasXattrTable => XattrIdTableStart != NoTable;

    /// <summary>Parses a superblock; checks the magic, version and block size.</summary>
    public static Superblock Parse(ReadOnlySpan<byte> data)
    {
        if (data.Length < Size)
        {
            throw SquashFsException.OutOfBounds($"The superblock needs {Size} bytes; the image has {data.Length}.");
        }

        var magic = BinaryPrimitives.ReadUInt32LittleEndian(data);
        if (magic != MagicValue)
        {
            throw SquashFsException.Corrupted($"Not a SquashFS image: magic at offset 0 is 0x{magic:x8}, expected 0x{MagicValue:x8} (\"hsqs\").");
        }

        var sb = new Superblock
        {
            Magic = magic,
            InodeCount = BinaryPrimitives.ReadUInt32LittleEndian(data[4..]),
            ModificationTime = BinaryPrimitives.ReadUInt32LittleEndian(data[8..]),
            BlockSize = BinaryPrimitives.ReadUInt32LittleEndian(data[12..]),
            FragmentEntryCount = BinaryPrimitives.ReadUInt32LittleEndian(data[16..]),
            Compressor = (CompressorId)BinaryPrimitives.ReadUInt16LittleEndian(data[20..]),
            BlockLog = BinaryPrimitives.ReadUInt16LittleEndian(data[22..]),
            Flags = (SuperblockFlags)BinaryPrimitives.ReadUInt16LittleEndian(data[24..]),
            IdCount = BinaryPrimitives.ReadUInt16LittleEndian(data[26..]),
            VersionMajor = BinaryPrimitives.ReadUInt16LittleEndian(data[28..]),
            VersionMinor = BinaryPrimitives.ReadUInt16LittleEndian(data[30..]),
            RootInode = new InodeReference(BinaryPrimitives.ReadUInt64LittleEndian(data[32..])),
            BytesUsed = BinaryPrimitives.ReadUInt64LittleEndian(data[40..]),
            IdTableStart = BinaryPrimitives.ReadUInt64LittleEndian(data[48..]),
            XattrIdTableStart = BinaryPrimitives.ReadUInt64LittleEndian(data[56..]),
            InodeTableStart = BinaryPrimitives.ReadUInt64LittleEndian(data[64..]),
            DirectoryTableStart = BinaryPrimitives.ReadUInt64LittleEndian(data[72..]),
            FragmentTableStart = BinaryPrimitives.ReadUInt64LittleEndian(data[80..]),
            ExportTableStart = BinaryPrimitives.ReadUInt64LittleEndian(data[88..]),
        };

        if (sb.VersionMajor != 4 || sb.VersionMinor != 0)
        {
            throw SquashFsException.Unsupported($"SquashFS version {sb.VersionMajor}.{sb.VersionMinor} is not supported; only 4.0 is.");
        }

        if (sb.BlockLog > 20 || !IsValidBlockSize(sb.BlockSize) || sb.BlockSize != 1u << sb.BlockLog)
        {
            throw SquashFsException.Corrupted($"Superblock block size {sb.BlockSize} (block_log {sb.BlockLog}) is not a power of two between 4 KiB and 1 MiB matching block_log.");
        }

        return sb;
    }

    /// <summary>Writes the superblock into <paramref name="destination"/> (at least <see cref="Size"/> bytes).</summary>
    public void Write(Span<byte> destination)
    {
        if (destination.Length < Size)
        {
            throw new ArgumentException($"The superblock needs {Size} bytes.", nameof(destination));
        }

        BinaryPrimitives.WriteUInt32LittleEndian(destination, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], InodeCount);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], ModificationTime);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], BlockSize);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[16..], FragmentEntryCount);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[20..], (ushort)Compressor);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[22..], BlockLog);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[24..], (ushort)Flags);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[26..], IdCount);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[28..], VersionMajor);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[30..], VersionMinor);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[32..], RootInode.Value);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[40..], BytesUsed);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[48..], IdTableStart);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[56..], XattrIdTableStart);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[64..], InodeTableStart);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[72..], DirectoryTableStart);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[80..], FragmentTableStart);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[88..], ExportTableStart);
    }
}

/// <summary>
/// A reference to an inode: the start of its metadata block relative to the inode table start
/// (upper 48 bits) and the byte offset inside the uncompressed block (lower 16 bits).
/// </summary>
/// <param name="Value">The packed 64-bit reference as stored.</param>
public readonly record struct InodeReference(ulong Value)
{
    /// <summary>Creates a reference from its two parts.</summary>
    public InodeReference(long blockStart, int offsetInBlock)
        : this(((ulong)blockStart << 16) | (ushort)offsetInBlock)
    {
    }

    /// <summary>Start of the metadata block, relative to the inode table start.</summary>
    public long BlockStart => (long)(Value >> 16);

    /// <summary>Offset inside the uncompressed metadata block.</summary>
    public int Offset => (int)(Value & 0xFFFF);

    /// <inheritdoc />
    public override string ToString() => $"{BlockStart}:{Offset}";
}
