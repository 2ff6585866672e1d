using System.Buffers.Binary;
using EdgeUpdater.SquashFs.Compression;
using EdgeUpdater.SquashFs.Format;
using EdgeUpdater.SquashFs.IO;
using EdgeUpdater.SquashFs.Metadata;

namespace EdgeUpdater.SquashFs.Reader;

/// <summary>
/// An open SquashFS 4.0 image: random access through an <see cref="IImageSource"/>, nothing loaded up
/// front beyond the superblock. Thread-safe for reading. Exposes the tree (entries, stat, file streams)
/// and, for the delta engine, every table, inode and block location.
/// </summary>
public sealed partial class SquashFsImage : IDisposable
{
    private const int FragmentsPerBlock = 512;
    private const int ExportsPerBlock = 1024;
    private const int IdsPerBlock = 2048;
    private const int XattrIdsPerBlock = 512;

    private readonly IImageSource _source;
    private readonly bool _leaveOpen;
    private readonly CodecPool _codecs;
    private readonly MetadataReader _metadata;
    private readonly ReadBudget _budget;
    private readonly long _end;
    private readonly long _inodeTableEnd;
    private readonly InodeTableGeometry _geometry;
    private readonly long _directoryTableEnd;
    private readonly LruCache<uint, byte[]> _fragmentCache;
    private uint[]? _ids;
    private XattrHeader? _xattrHeader;

    private SquashFsImage(IImageSource source, SquashFsReaderOptions options, bool leaveOpen)
    {
        _source = source;
        _leaveOpen = leaveOpen;
        Options = options;
        if (source.Length < Superblock.Size)
        {
            throw SquashFsException.OutOfBounds($"The image is {source.Length} bytes; a SquashFS superblock needs {Superblock.Size}.");
        }

        var raw = new byte[Superblock.Size];
        source.ReadAt(0, raw);
        Superblock = Superblock.Parse(raw);
        var sb = Superblock;
        if (sb.BytesUsed < Superblock.Size || sb.BytesUsed > (ulong)source.Length)
        {
            throw SquashFsException.OutOfBounds($"Superblock bytes_used {sb.BytesUsed} does not fit the image ({source.Length} bytes).");
        }

        _end = (long)sb.BytesUsed;
        CheckTableStart(sb.InodeTableStart, "inode_table_start");
        CheckTableStart(sb.DirectoryTableStart, "directory_table_start");
        CheckTableStart(sb.IdTableStart, "id_table_start");
        if (sb.InodeTableStart >= sb.DirectoryTableStart)
        {
            throw SquashFsException.Corrupted($"Superblock inode_table_start {sb.InodeTableStart} is not before directory_table_start {sb.DirectoryTableStart}.");
        }

        if (sb.FragmentEntryCount > 0)
        {
            CheckTableStart(sb.FragmentTableStart, "fragment_table_start");
        }

        if (sb.HasExportTable)
        {
            CheckTableStart(sb.ExportTableStart, "export_table_start");
        }

        if (sb.HasXattrTable)
        {
            CheckTableStart(sb.XattrIdTableStart, "xattr_id_table_start");
        }

        if (sb.InodeCount == 0)
        {
            throw SquashFsException.Corrupted("Superblock inode_count is 0; an image has at least the root directory.");
        }

        _inodeTableEnd = (long)sb.DirectoryTableStart;
        _geometry = InodeTableGeometry.Of(sb, options);
        _directoryTableEnd = new[]
        {
            sb.FragmentEntryCount > 0 ? sb.FragmentTableStart : ulong.MaxValue,
            sb.HasExportTable ? sb.ExportTableStart : ulong.MaxValue,
            sb.IdTableStart,
            sb.HasXattrTable ? sb.XattrIdTableStart : ulong.MaxValue,
            sb.BytesUsed,
        }.Where(v => v > sb.DirectoryTableStart && v <= sb.BytesUsed).Select(v => (long)v).DefaultIfEmpty(_end).Min();

        _budget = new ReadBudget(options.MaxMetadataBytes);
        _fragmentCache = new LruCache<uint, byte[]>(Math.Max(1, (int)Math.Min(int.MaxValue, options.FragmentCacheBytes / sb.BlockSize)));
        var compressorOptions = CompressorOptions.Default(sb.Compressor);
        _codecs = new CodecPool(() => SquashFsCodec.Create(compressorOptions, sb.BlockSize));
        _metadata = new MetadataReader(source, _codecs, _end, _budget, options.MetadataCacheBlocks);
        if (sb.HasCompressorOptions)
        {
            // The options block is uncompressed in practice, but honour its header either way.
            if (sb.Compressor is not (CompressorId.Gzip or CompressorId.Xz or CompressorId.Lz4 or CompressorId.Zstd or CompressorId.Lzo))
            {
                throw SquashFsException.Unsupported($"Compressor id {(int)sb.Compressor} is not supported.");
            }

            var block = _metadata.ReadBlock(Superblock.Size, _end, "compressor options");
            CompressorOptionsBlock = block.Info;
            compressorOptions = CompressorOptions.Parse(sb.Compressor, block.Data.AsSpan(0, block.Length), sb.BlockSize);
        }

        CompressorOptions = compressorOptions;
        _codecs.Return(_codecs.Rent());
    }

    /// <summary>The superblock.</summary>
    public Superblock Superblock { get; }

    /// <summary>The compressor options (stored or defaults).</summary>
    public CompressorOptions CompressorOptions { get; }

    /// <summary>Where the compressor options block lies, when present.</summary>
    public MetadataBlockInfo? CompressorOptionsBlock { get; }

    /// <summary>Options this image was opened with.</summary>
    public SquashFsReaderOptions Options { get; }

    /// <summary>The source the image is read from.</summary>
    public IImageSource Source => _source;

    /// <summary>Data block size.</summary>
    public int BlockSize => (int)Superblock.BlockSize;

    /// <summary>Opens an image file (or block device).</summary>
    public static SquashFsImage Open(string path, SquashFsReaderOptions? options = null)
    {
        var source = new FileImageSource(path);
        try
        {
            return new SquashFsImage(source, options ?? new SquashFsReaderOptions(), leaveOpen: false);
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    /// <summary>Opens an image in a seekable stream.</summary>
    public static SquashFsImage Open(Stream stream, SquashFsReaderOptions? options = null, bool leaveOpen = false) =>
        Open(new StreamImageSource(stream, leaveOpen), options, leaveOpen: false);

    /// <summary>Opens an image from any source.</summary>
    public static SquashFsImage Open(IImageSource source, SquashFsReaderOptions? options = null, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(source);
        try
        {
            return new SquashFsImage(source, options ?? new SquashFsReaderOptions(), leaveOpen);
        }
        catch when (!leaveOpen)
        {
            source.Dispose();
            throw;
        }
    }

    /// <summary>Creates a new codec for this image's compressor and options (not thread-safe; dispose it).</summary>
    public SquashFsCodec CreateCodec(CodecRole role = CodecRole.Data) => SquashFsCodec.Create(CompressorOptions, Superblock.BlockSize, role);

    // ---------------------------------------------------------------- tree

    /// <summary>The root directory.</summary>
    public SquashFsEntry Root
    {
        get
        {
            var inode = ReadInode(Superblock.RootInode);
            if (inode.Kind != InodeKind.Directory)
            {
                throw SquashFsException.Corrupted($"The root inode at {Superblock.RootInode} is a {inode.Kind}, not a directory.");
            }

            return new SquashFsEntry(this, "/", [], Superblock.RootInode, inode);
        }
    }

    /// <summary>Looks up an absolute or root-relative path; throws <see cref="SquashFsErrorCategory.NotFound"/> when missing.</summary>
    public SquashFsEntry GetEntry(string path) =>
        TryGetEntry(path) ?? throw new SquashFsException(SquashFsErrorCategory.NotFound, $"'{path}' does not exist in the image.");

    /// <summary>Looks up a path (symlinks are not followed); null when missing.</summary>
    public SquashFsEntry? TryGetEntry(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var current = Root;
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length > Options.MaxDepth)
        {
            throw new SquashFsException(SquashFsErrorCategory.Loop, $"Path '{path}' is deeper than {Options.MaxDepth} levels.");
        }

        foreach (var part in parts)
        {
            if (part == ".")
            {
                continue;
            }

            if (!current.IsDirectory)
            {
                return null;
            }

            SquashFsEntry? next = null;
            foreach (var child in EnumerateDirectory(current))
            {
                if (child.Name == part)
                {
                    next = child;
                    break;
                }
            }

            if (next is null)
            {
                return null;
            }

            current = next;
        }

        return current;
    }

    /// <summary>The children of a directory, in stored (byte-wise sorted) order.</summary>
    public IEnumerable<SquashFsEntry> EnumerateDirectory(SquashFsEntry directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (!directory.IsDirectory)
        {
            throw new SquashFsException(SquashFsErrorCategory.InvalidOperation, $"'{directory.Path}' is not a directory.");
        }

        var prefix = directory.Path == "/" ? "/" : directory.Path + "/";
        foreach (var record in ReadDirectory(directory.Inode))
        {
            var inode = ReadInode(record.Inode);
            if (Inode.BasicTypeOf(inode.Kind) != record.Type)
            {
                throw SquashFsException.Corrupted($"Directory entry '{prefix}{record.NameString}' says type {record.Type} but its inode at {record.Inode} is {inode.Type}.");
            }

            yield return new SquashFsEntry(this, prefix + record.NameString, record.Name, record.Inode, inode);
        }
    }

    /// <summary>
    /// Every entry of the tree, depth-first, parents before children, siblings in stored order; the root
    /// first. Directory loops, excessive depth and the entry budget throw.
    /// </summary>
    public IEnumerable<SquashFsEntry> Walk()
    {
        var root = Root;
        yield return root;
        var visited = new HashSet<InodeReference> { root.Reference };
        var stack = new Stack<(IEnumerator<SquashFsEntry> Children, int Depth)>();
        stack.Push((EnumerateDirectory(root).GetEnumerator(), 1));
        long entries = 0;
        try
        {
            while (stack.Count > 0)
            {
                var (children, depth) = stack.Peek();
                if (!children.MoveNext())
                {
                    children.Dispose();
                    stack.Pop();
                    continue;
                }

                var entry = children.Current;
                if (++entries > Options.MaxEntries)
                {
                    throw new SquashFsException(SquashFsErrorCategory.BudgetExceeded, $"The walk visited more than {Options.MaxEntries} entries (at '{entry.Path}').");
                }

                yield return entry;
                if (entry.IsDirectory)
                {
                    if (!visited.Add(entry.Reference))
                    {
                        throw new SquashFsException(SquashFsErrorCategory.Loop, $"Directory '{entry.Path}' (inode {entry.Reference}) appears twice in the tree: a directory loop.");
                    }

                    if (depth >= Options.MaxDepth)
                    {
                        throw new SquashFsException(SquashFsErrorCategory.Loop, $"'{entry.Path}' is deeper than {Options.MaxDepth} levels.");
                    }

                    stack.Push((EnumerateDirectory(entry).GetEnumerator(), depth + 1));
                }
            }
        }
        finally
        {
            while (stack.Count > 0)
            {
                stack.Pop().Children.Dispose();
            }
        }
    }

    /// <summary>Opens a regular file as a read-only seekable stream.</summary>
    public Stream OpenFile(SquashFsEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (!entry.IsFile)
        {
            throw new SquashFsException(SquashFsErrorCategory.InvalidOperation, $"'{entry.Path}' is a {entry.Kind}, not a regular file.");
        }

        return new SquashFsFileStream(this, entry.Inode, entry.Path);
    }

    /// <summary>Opens a regular file inode as a read-only seekable stream.</summary>
    public Stream OpenFile(Inode inode)
    {
        ArgumentNullException.ThrowIfNull(inode);
        if (inode.Kind != InodeKind.File)
        {
            throw new SquashFsException(SquashFsErrorCategory.InvalidOperation, $"Inode {inode.InodeNumber} is a {inode.Kind}, not a regular file.");
        }

        return new SquashFsFileStream(this, inode, $"inode {inode.InodeNumber}");
    }

    /// <summary>The uid/gid stored at <paramref name="index"/> of the id table.</summary>
    public uint GetId(ushort index)
    {
        var ids = ReadIds();
        if (index >= ids.Count)
        {
            throw SquashFsException.OutOfBounds($"Id index {index} is outside the id table ({ids.Count} entries).");
        }

        return ids[index];
    }

    // ---------------------------------------------------------------- inodes and directories

    /// <summary>Reads the inode at <paramref name="reference"/>.</summary>
    public Inode ReadInode(InodeReference reference)
    {
        var cursor = new MetadataCursor(_metadata, (long)Superblock.InodeTableStart, _inodeTableEnd, reference.BlockStart, reference.Offset, "inode table");
        return InodeTableParser.ParseInode(cursor, reference.ToString(), _geometry);
    }

    /// <summary>Reads a directory inode's listing.</summary>
    public IReadOnlyList<DirectoryEntryRecord> ReadDirectory(Inode directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (directory.Kind != InodeKind.Directory)
        {
            throw new SquashFsException(SquashFsErrorCategory.InvalidOperation, $"Inode {directory.InodeNumber} is not a directory.");
        }

        var result = new List<DirectoryEntryRecord>();
        if (directory.FileSize < 3)
        {
            throw SquashFsException.Corrupted($"Directory inode {directory.InodeNumber} has size {directory.FileSize}; at least 3 expected.");
        }

        var remaining = (long)directory.FileSize - 3;
        if (remaining == 0)
        {
            return result;
        }

        var cursor = new MetadataCursor(_metadata, (long)Superblock.DirectoryTableStart, _directoryTableEnd, directory.DirectoryBlockStart, directory.DirectoryBlockOffset, "directory table");
        var nameBuffer = new byte[256];
        while (remaining > 0)
        {
            if (remaining < 12)
            {
                throw SquashFsException.Corrupted($"Directory inode {directory.InodeNumber}: {remaining} bytes left, too few for a directory header.");
            }

            var count = cursor.ReadUInt32() + 1L;
            var start = cursor.ReadUInt32();
            var baseNumber = cursor.ReadUInt32();
            remaining -= 12;
            if (count > 256)
            {
                throw SquashFsException.Corrupted($"Directory inode {directory.InodeNumber}: a header claims {count} entries; at most 256 are allowed.");
            }

            for (var i = 0; i < count; i++)
            {
                if (remaining < 8)
                {
                    throw SquashFsException.Corrupted($"Directory inode {directory.InodeNumber}: listing ends inside an entry.");
                }

                var offset = cursor.ReadUInt16();
                var delta = (short)cursor.ReadUInt16();
                var type = (InodeType)cursor.ReadUInt16();
                var nameSize = cursor.ReadUInt16() + 1;
                remaining -= 8 + nameSize;
                if (nameSize > 256 || remaining < 0)
                {
                    throw SquashFsException.Corrupted($"Directory inode {directory.InodeNumber}: entry name of {nameSize} bytes does not fit (max 256, {remaining + nameSize} left).");
                }

                if (type < InodeType.BasicDirectory || type > InodeType.BasicSocket)
                {
                    throw SquashFsException.Corrupted($"Directory inode {directory.InodeNumber}: entry type {(ushort)type} is not a basic inode type (1-7).");
                }

                var name = nameBuffer.AsSpan(0, nameSize);
                cursor.Read(name);
                if (name.IndexOf((byte)'/') >= 0 || name.IndexOf((byte)0) >= 0 || name.SequenceEqual("."u8) || name.SequenceEqual(".."u8))
                {
                    throw SquashFsException.Corrupted($"Directory inode {directory.InodeNumber}: entry name '{System.Text.Encoding.UTF8.GetString(name)}' contains '/' or NUL or is '.' or '..'.");
                }

                result.Add(new DirectoryEntryRecord(name.ToArray(), new InodeReference(start, offset), type, (uint)(baseNumber + delta)));
            }
        }

        return result;
    }

    /// <summary>
    /// Parses the whole inode table in order, with the position of each inode. The delta engine uses this
    /// with <see cref="Inode.Write"/> to re-encode the table.
    /// </summary>
    public IReadOnlyList<InodeRecord> ReadInodeTable()
    {
        var table = ReadMetadataTable(MetadataTableKind.Inodes);
        var blocks = new List<(long Relative, long DataOffset)>(table.Blocks.Count);
        long position = 0;
        foreach (var block in table.Blocks)
        {
            blocks.Add((block.Offset - (long)Superblock.InodeTableStart, position));
            position += block.UncompressedSize;
        }

        return [.. InodeTableParser.ParseTable(table.Data, blocks, _geometry)];
    }

    // ---------------------------------------------------------------- xattrs, ids, fragments, export

    /// <summary>The id table (uids and gids).</summary>
    public IReadOnlyList<uint> ReadIds()
    {
        if (_ids is not null)
        {
            return _ids;
        }

        var data = ReadIndexedTable(Superblock.IdTableStart, Superblock.IdCount, 4, IdsPerBlock, "id table", out _, out _, out _);
        var ids = new uint[Superblock.IdCount];
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(4 * i));
        }

        _ids = ids;
        return ids;
    }

    /// <summary>Reads one fragment table entry.</summary>
    public FragmentEntry ReadFragmentEntry(uint index)
    {
        if (index >= Superblock.FragmentEntryCount)
        {
            throw SquashFsException.OutOfBounds($"Fragment index {index} is outside the fragment table ({Superblock.FragmentEntryCount} entries).");
        }

        var entry = ReadIndexedEntry(Superblock.FragmentTableStart, index, 16, FragmentsPerBlock, "fragment table");
        var fragment = new FragmentEntry(BinaryPrimitives.ReadUInt64LittleEndian(entry), BinaryPrimitives.ReadUInt32LittleEndian(entry[8..]), BinaryPrimitives.ReadUInt32LittleEndian(entry[12..]));
        CheckBlock((long)fragment.Start, fragment.StoredSize, fragment.IsCompressed, $"fragment {index}");
        return fragment;
    }

    /// <summary>Every fragment table entry.</summary>
    public IReadOnlyList<FragmentEntry> ReadFragmentTable()
    {
        var result = new List<FragmentEntry>();
        if (Superblock.FragmentEntryCount == 0)
        {
            return result;
        }

        var data = ReadIndexedTable(Superblock.FragmentTableStart, Superblock.FragmentEntryCount, 16, FragmentsPerBlock, "fragment table", out _, out _, out _);
        for (var i = 0; i < Superblock.FragmentEntryCount; i++)
        {
            var e = data.AsSpan(16 * i);
            result.Add(new FragmentEntry(BinaryPrimitives.ReadUInt64LittleEndian(e), BinaryPrimitives.ReadUInt32LittleEndian(e[8..]), BinaryPrimitives.ReadUInt32LittleEndian(e[12..])));
        }

        return result;
    }

    /// <summary>The export table (inode reference per inode number, entry 0 = inode 1), or empty when absent.</summary>
    public IReadOnlyList<InodeReference> ReadExportTable()
    {
        if (!Superblock.HasExportTable)
        {
            return [];
        }

        var data = ReadIndexedTable(Superblock.ExportTableStart, Superblock.InodeCount, 8, ExportsPerBlock, "export table", out _, out _, out _);
        var result = new InodeReference[Superblock.InodeCount];
        for (var i = 0; i < result.Length; i++)
        {
            result[i] = new InodeReference(BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(8 * i)));
        }

        return result;
    }

    /// <summary>Every xattr id table entry (empty when the image has no xattrs).</summary>
    public IReadOnlyList<XattrIdEntry> ReadXattrIdTable()
    {
        var header = ReadXattrHeader();
        if (header is null)
        {
            return [];
        }

        var data = ReadIndexedTable(Superblock.XattrIdTableStart + 16, header.Count, 16, XattrIdsPerBlock, "xattr id table", out _, out _, out _);
        var result = new XattrIdEntry[header.Count];
        for (var i = 0; i < result.Length; i++)
        {
            var e = data.AsSpan(16 * i);
            result[i] = new XattrIdEntry(BinaryPrimitives.ReadUInt64LittleEndian(e), BinaryPrimitives.ReadUInt32LittleEndian(e[8..]), BinaryPrimitives.ReadUInt32LittleEndian(e[12..]));
        }

        return result;
    }

    /// <summary>Image offset of the xattr key/value table (from the xattr id table header), or -1.</summary>
    public long XattrKeyValueTableStart => ReadXattrHeader()?.KeyValueStart ?? -1;

    /// <summary>The xattrs of xattr id <paramref name="xattrIndex"/> (<see cref="Inode.NoXattr"/> gives none).</summary>
    public IReadOnlyList<SquashFsXattr> ReadXattrs(uint xattrIndex)
    {
        if (xattrIndex == Inode.NoXattr)
        {
            return [];
        }

        var header = ReadXattrHeader() ?? throw SquashFsException.Corrupted($"An inode refers to xattr id {xattrIndex} but the image has no xattr table.");
        if (xattrIndex >= header.Count)
        {
            throw SquashFsException.OutOfBounds($"Xattr id {xattrIndex} is outside the xattr id table ({header.Count} entries).");
        }

        var raw = ReadIndexedEntry(Superblock.XattrIdTableStart + 16, xattrIndex, 16, XattrIdsPerBlock, "xattr id table");
        var reference = new InodeReference(BinaryPrimitives.ReadUInt64LittleEndian(raw));
        var count = BinaryPrimitives.ReadUInt32LittleEndian(raw[8..]);
        if (count > 65536)
        {
            throw SquashFsException.Overflow($"Xattr id {xattrIndex} claims {count} attributes; at most 65536 are accepted.");
        }

        var kvLimit = (long)Superblock.XattrIdTableStart;
        var cursor = new MetadataCursor(_metadata, header.KeyValueStart, kvLimit, reference.BlockStart, reference.Offset, "xattr table");
        var result = new List<SquashFsXattr>();
        var name = new byte[256];
        for (var i = 0; i < count; i++)
        {
            var type = cursor.ReadUInt16();
            var nameSize = cursor.ReadUInt16();
            if (nameSize > 255)
            {
                throw SquashFsException.Corrupted($"Xattr id {xattrIndex}: name of {nameSize} bytes (max 255).");
            }

            cursor.Read(name.AsSpan(0, nameSize));
            var prefix = (type & 0xFF) switch
            {
                0 => "user.",
                1 => "trusted.",
                2 => "security.",
                _ => throw SquashFsException.Corrupted($"Xattr id {xattrIndex}: unknown prefix type {type & 0xFF}."),
            };
            byte[] value;
            if ((type & 0x100) != 0)
            {
                var refSize = cursor.ReadUInt32();
                if (refSize != 8)
                {
                    throw SquashFsException.Corrupted($"Xattr id {xattrIndex}: out-of-line value reference has size {refSize}, expected 8.");
                }

                var valueRef = new InodeReference(cursor.ReadUInt64());
                var valueCursor = new MetadataCursor(_metadata, header.KeyValueStart, kvLimit, valueRef.BlockStart, valueRef.Offset, "xattr table");
                value = ReadXattrValue(valueCursor, xattrIndex);
            }
            else
            {
                value = ReadXattrValue(cursor, xattrIndex);
            }

            result.Add(new SquashFsXattr(prefix + System.Text.Encoding.UTF8.GetString(name, 0, nameSize), value));
        }

        return result;
    }

    // ---------------------------------------------------------------- helpers

    internal MetadataReader Metadata => _metadata;

    internal CodecPool Codecs => _codecs;

    internal long End => _end;

    /// <summary>Bounds-checks a data or fragment block.</summary>
    internal void CheckBlock(long offset, uint storedSize, bool compressed, string what)
    {
        if (storedSize > Superblock.BlockSize)
        {
            throw SquashFsException.Corrupted($"{what}: stored size {storedSize} is larger than the block size {Superblock.BlockSize}.");
        }

        if (offset < Superblock.Size || offset > _end - storedSize)
        {
            throw SquashFsException.OutOfBounds($"{what}: block at offset {offset} with {storedSize} bytes lies outside the data area (image uses {_end} bytes).");
        }
    }

    /// <summary>Reads and decompresses a fragment block (cached).</summary>
    internal byte[] ReadFragmentBlock(uint index, out int length)
    {
        if (_fragmentCache.TryGet(index, out var cached))
        {
            length = BinaryPrimitives.ReadInt32LittleEndian(cached.AsSpan(cached.Length - 4));
            return cached;
        }

        var entry = ReadFragmentEntry(index);
        var data = new byte[Superblock.BlockSize + 4];
        length = ReadBlockData((long)entry.Start, entry.StoredSize, entry.IsCompressed, data.AsSpan(0, (int)Superblock.BlockSize), $"fragment block {index}");
        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(data.Length - 4), length);
        _fragmentCache.Add(index, data);

        return data;
    }

    /// <summary>Reads a stored block and decompresses it into <paramref name="destination"/>; returns the uncompressed length.</summary>
    public int ReadBlockData(long offset, uint storedSize, bool compressed, Span<byte> destination, string what = "block")
    {
        CheckBlock(offset, storedSize, compressed, what);
        if (!compressed)
        {
            if (storedSize > destination.Length)
            {
                throw SquashFsException.Corrupted($"{what}: uncompressed block of {storedSize} bytes does not fit {destination.Length}.");
            }

            _source.ReadAt(offset, destination[..(int)storedSize]);
            return (int)storedSize;
        }

        var raw = System.Buffers.ArrayPool<byte>.Shared.Rent((int)storedSize);
        var codec = _codecs.Rent();
        try
        {
            _source.ReadAt(offset, raw.AsSpan(0, (int)storedSize));
            return codec.Decompress(raw.AsSpan(0, (int)storedSize), destination);
        }
        catch (SquashFsException e) when (e.Category == SquashFsErrorCategory.Corrupted)
        {
            throw SquashFsException.Corrupted($"{what} at offset {offset}: {e.Message}");
        }
        finally
        {
            _codecs.Return(codec);
            System.Buffers.ArrayPool<byte>.Shared.Return(raw);
        }
    }

    private static byte[] ReadXattrValue(MetadataCursor cursor, uint xattrIndex)
    {
        var size = cursor.ReadUInt32();
        if (size > 65536)
        {
            throw SquashFsException.Overflow($"Xattr id {xattrIndex}: value of {size} bytes (max 65536).");
        }

        var value = new byte[size];
        cursor.Read(value);
        return value;
    }

    private XattrHeader? ReadXattrHeader()
    {
        if (!Superblock.HasXattrTable)
        {
            return null;
        }

        if (_xattrHeader is not null)
        {
            return _xattrHeader;
        }

        var start = (long)Superblock.XattrIdTableStart;
        if (start > _end - 16)
        {
            throw SquashFsException.OutOfBounds($"Xattr id table header at {start} is outside the image ({_end} bytes used).");
        }

        Span<byte> raw = stackalloc byte[16];
        _source.ReadAt(start, raw);
        var kv = BinaryPrimitives.ReadUInt64LittleEndian(raw);
        var count = BinaryPrimitives.ReadUInt32LittleEndian(raw[8..]);
        if (kv >= (ulong)start || kv < Superblock.Size)
        {
            throw SquashFsException.OutOfBounds($"Xattr key/value table start {kv} is not before the xattr id table header at {start}.");
        }

        _xattrHeader = new XattrHeader((long)kv, count);
        return _xattrHeader;
    }

    private void CheckTableStart(ulong start, string field)
    {
        if (start < Superblock.Size || start >= Superblock.BytesUsed)
        {
            throw SquashFsException.OutOfBounds($"Superblock {field} {start} is outside the image ({Superblock.Size} to {Superblock.BytesUsed}).");
        }
    }

    /// <summary>Checks an indexed table's entry count against the space its index needs.</summary>
    private long CheckIndex(ulong indexStart, ulong count, int entrySize, int perBlock, string table)
    {
        var blocks = (long)((count + (ulong)perBlock - 1) / (ulong)perBlock);
        if (indexStart > (ulong)_end || (ulong)_end - indexStart < (ulong)blocks * 8)
        {
            throw SquashFsException.Overflow($"{table}: {count} entries of {entrySize} bytes need an index of {blocks} pointers at {indexStart}, past the image end {_end}.");
        }

        return blocks;
    }

    private long ReadIndexPointer(ulong indexStart, long block, string table)
    {
        Span<byte> raw = stackalloc byte[8];
        _source.ReadAt((long)indexStart + (8 * block), raw);
        var pointer = BinaryPrimitives.ReadUInt64LittleEndian(raw);
        if (pointer < Superblock.Size || pointer >= indexStart)
        {
            throw SquashFsException.OutOfBounds($"{table}: index pointer {block} is {pointer}; blocks must lie between {Superblock.Size} and the index at {indexStart}.");
        }

        return (long)pointer;
    }

    private ReadOnlySpan<byte> ReadIndexedEntry(ulong indexStart, uint index, int entrySize, int perBlock, string table)
    {
        var block = index / perBlock;
        var blockCount = (long)block + 1;
        CheckIndex(indexStart, (ulong)blockCount * (ulong)perBlock, entrySize, perBlock, table);
        var pointer = ReadIndexPointer(indexStart, block, table);
        var cursor = new MetadataCursor(_metadata, pointer, (long)indexStart, 0, 0, table);
        cursor.Skip((long)(index % perBlock) * entrySize);
        var entry = new byte[entrySize];
        cursor.Read(entry);
        return entry;
    }

    /// <summary>Reads a whole indexed table into memory; allocation grows with what was decoded, not with the claimed count.</summary>
    private byte[] ReadIndexedTable(ulong indexStart, ulong count, int entrySize, int perBlock, string table, out List<MetadataBlockInfo> blocks, out List<long> index, out long indexOffset)
    {
        blocks = [];
        index = [];
        indexOffset = (long)indexStart;
        if (count == 0)
        {
            return [];
        }

        var blockCount = CheckIndex(indexStart, count, entrySize, perBlock, table);
        var total = (long)count * entrySize;
        using var data = new MemoryStream();
        for (long b = 0; b < blockCount; b++)
        {
            var pointer = ReadIndexPointer(indexStart, b, table);
            index.Add(pointer);
            var want = (int)Math.Min((long)perBlock * entrySize, total - data.Length);
            var block = _metadata.ReadBlock(pointer, (long)indexStart, table);
            if (block.Length < want)
            {
                throw SquashFsException.Corrupted($"{table}: metadata block {b} at {pointer} holds {block.Length} bytes; {want} expected.");
            }

            blocks.Add(block.Info);
            data.Write(block.Data, 0, want);
        }

        return data.ToArray();
    }

    /// <summary>Decompresses a whole table with its block list and index.</summary>
    public MetadataTable ReadMetadataTable(MetadataTableKind kind)
    {
        var sb = Superblock;
        switch (kind)
        {
            case MetadataTableKind.CompressorOptions:
                if (CompressorOptionsBlock is not { } info)
                {
                    return new MetadataTable(kind, [], [], -1, []);
                }

                var block = _metadata.ReadBlock(info.Offset, _end, "compressor options");
                return new MetadataTable(kind, [info], block.Data.AsSpan(0, block.Length).ToArray(), -1, []);
            case MetadataTableKind.Inodes:
                return ReadSequentialTable(kind, (long)sb.InodeTableStart, _inodeTableEnd, "inode table");
            case MetadataTableKind.Directories:
                return ReadSequentialTable(kind, (long)sb.DirectoryTableStart, DirectoryTableExactEnd(), "directory table");
            case MetadataTableKind.Fragments:
                return Indexed(kind, sb.FragmentEntryCount > 0 ? sb.FragmentTableStart : Superblock.NoTable, sb.FragmentEntryCount, 16, FragmentsPerBlock, "fragment table");
            case MetadataTableKind.Export:
                return Indexed(kind, sb.HasExportTable ? sb.ExportTableStart : Superblock.NoTable, sb.InodeCount, 8, ExportsPerBlock, "export table");
            case MetadataTableKind.Ids:
                return Indexed(kind, sb.IdTableStart, sb.IdCount, 4, IdsPerBlock, "id table");
            case MetadataTableKind.XattrIds:
                var header = ReadXattrHeader();
                return header is null
                    ? new MetadataTable(kind, [], [], -1, [])
                    : Indexed(kind, sb.XattrIdTableStart + 16, header.Count, 16, XattrIdsPerBlock, "xattr id table");
            case MetadataTableKind.XattrKeyValues:
                var h = ReadXattrHeader();
                if (h is null)
                {
                    return new MetadataTable(kind, [], [], -1, []);
                }

                var ids = Indexed(MetadataTableKind.XattrIds, sb.XattrIdTableStart + 16, h.Count, 16, XattrIdsPerBlock, "xattr id table");
                var kvEnd = ids.Index.Count > 0 ? ids.Index[0] : (long)sb.XattrIdTableStart;
                return ReadSequentialTable(kind, h.KeyValueStart, kvEnd, "xattr table");
            default:
                throw new ArgumentOutOfRangeException(nameof(kind));
        }
    }

    /// <summary>Every table of the image, decompressed, in a fixed order.</summary>
    public IReadOnlyList<MetadataTable> ReadAllMetadataTables() =>
        Enum.GetValues<MetadataTableKind>().Select(ReadMetadataTable).ToList();

    private MetadataTable Indexed(MetadataTableKind kind, ulong indexStart, ulong count, int entrySize, int perBlock, string table)
    {
        if (indexStart == Superblock.NoTable || count == 0)
        {
            return new MetadataTable(kind, [], [], indexStart == Superblock.NoTable ? -1 : (long)indexStart, []);
        }

        var data = ReadIndexedTable(indexStart, count, entrySize, perBlock, table, out var blocks, out var index, out var indexOffset);
        return new MetadataTable(kind, blocks, data, indexOffset, index);
    }

    private long DirectoryTableExactEnd()
    {
        // The directory table ends where the next structure begins: the first block of the fragment,
        // export, id or xattr tables (or their index when they have no blocks).
        var sb = Superblock;
        var candidates = new List<long> { _directoryTableEnd };
        void FirstBlock(ulong indexStart, ulong count, int perBlock)
        {
            if (indexStart != Superblock.NoTable && count > 0 && indexStart < (ulong)_end - 8)
            {
                Span<byte> raw = stackalloc byte[8];
                _source.ReadAt((long)indexStart, raw);
                var first = BinaryPrimitives.ReadUInt64LittleEndian(raw);
                if (first > sb.DirectoryTableStart && first < (ulong)_end)
                {
                    candidates.Add((long)first);
                }
            }
        }

        FirstBlock(sb.FragmentEntryCount > 0 ? sb.FragmentTableStart : Superblock.NoTable, sb.FragmentEntryCount, FragmentsPerBlock);
        FirstBlock(sb.HasExportTable ? sb.ExportTableStart : Superblock.NoTable, sb.InodeCount, ExportsPerBlock);
        FirstBlock(sb.IdTableStart, sb.IdCount, IdsPerBlock);
        if (ReadXattrHeader() is { } xh)
        {
            if (xh.KeyValueStart > (long)sb.DirectoryTableStart)
            {
                candidates.Add(xh.KeyValueStart);
            }
        }

        return candidates.Min();
    }

    private MetadataTable ReadSequentialTable(MetadataTableKind kind, long start, long end, string table)
    {
        // Where the blocks start, from their 2-byte headers alone; then the last block is decoded first, which
        // gives the table's exact length when every other block is full (as the format requires), and the
        // blocks are decoded into one array of that length. A growing stream copied at the end took up to 3
        // times the table (a directory table of 300,000 entries: 13 MB).
        var starts = new List<long>();
        Span<byte> header = stackalloc byte[2];
        for (var offset = start; offset <= end - 2; offset += 2 + (BinaryPrimitives.ReadUInt16LittleEndian(header) & 0x7FFF))
        {
            starts.Add(offset);
            _source.ReadAt(offset, header);
            if ((BinaryPrimitives.ReadUInt16LittleEndian(header) & 0x7FFF) is 0 or > SquashFsCodec.MetadataBlockSize)
            {
                // Not a block: the stream below reads up to it and says so.
                break;
            }
        }

        if (starts.Count > 0 && starts[^1] + 2 + (BinaryPrimitives.ReadUInt16LittleEndian(header) & 0x7FFF) == end)
        {
            var last = _metadata.ReadBlock(starts[^1], end, table);
            var length = ((long)(starts.Count - 1) * SquashFsCodec.MetadataBlockSize) + last.Length;
            if (length <= Array.MaxLength)
            {
                var data = GC.AllocateUninitializedArray<byte>((int)length);
                var infos = new List<MetadataBlockInfo>(starts.Count);
                for (var i = 0; i < starts.Count; i++)
                {
                    var block = i == starts.Count - 1 ? last : _metadata.ReadBlock(starts[i], end, table);
                    if (i < starts.Count - 1 && block.Length != SquashFsCodec.MetadataBlockSize)
                    {
                        // A short block before the last: the stream below lays the table out (or refuses it).
                        infos = null;
                        break;
                    }

                    block.Data.AsSpan(0, block.Length).CopyTo(data.AsSpan(i * SquashFsCodec.MetadataBlockSize));
                    infos.Add(block.Info);
                }

                if (infos is not null)
                {
                    return new MetadataTable(kind, infos, data, -1, []);
                }
            }
        }

        var blocks = new List<MetadataBlockInfo>();
        using var stream = new MemoryStream();
        var position = start;
        while (position < end)
        {
            var block = _metadata.ReadBlock(position, end, table);
            blocks.Add(block.Info);
            stream.Write(block.Data, 0, block.Length);
            position = block.Next;
        }

        return new MetadataTable(kind, blocks, stream.ToArray(), -1, []);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _codecs.Dispose();
        if (!_leaveOpen)
        {
            _source.Dispose();
        }
    }

    private sealed record XattrHeader(long KeyValueStart, uint Count);
}
