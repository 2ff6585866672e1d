using EdgeUpdater.SquashFs.Compression;
using EdgeUpdater.SquashFs.Format;
using EdgeUpdater.SquashFs.Metadata;

namespace EdgeUpdater.SquashFs.Reader;

/// <summary>
/// Parses inodes from an image's inode table, or from an uncompressed inode table held in memory (the delta
/// applier rebuilds one before the image it belongs to exists).
/// </summary>
public static class InodeTableParser
{
    /// <summary>
    /// Parses a whole uncompressed inode table, in order, one inode at a time as it is enumerated (nothing
    /// is kept). <paramref name="storedBlockStarts"/> are its metadata blocks' offsets relative to the table
    /// start (they make the inode references); every block but the last holds 8 KiB, as the format requires.
    /// </summary>
    /// <exception cref="SquashFsException">While enumerated: an inode does not parse, or the table holds more inodes than the geometry's count.</exception>
    public static IEnumerable<InodeRecord> Parse(byte[] data, IReadOnlyList<long> storedBlockStarts, InodeTableGeometry geometry)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(storedBlockStarts);
        ArgumentNullException.ThrowIfNull(geometry);
        var blocks = new List<(long Relative, long DataOffset)>(storedBlockStarts.Count);
        for (var i = 0; i < storedBlockStarts.Count; i++)
        {
            blocks.Add((storedBlockStarts[i], (long)i * SquashFsCodec.MetadataBlockSize));
        }

        return ParseTable(data, blocks, geometry);
    }

    /// <summary>Parses <paramref name="data"/> in order; <paramref name="blocks"/> give each block's stored start and first data offset.</summary>
    internal static IEnumerable<InodeRecord> ParseTable(byte[] data, IReadOnlyList<(long Relative, long DataOffset)> blocks, InodeTableGeometry geometry)
    {
        var count = 0L;
        if (data.Length > 0 && (blocks.Count == 0 || blocks[0].DataOffset != 0))
        {
            throw SquashFsException.Corrupted($"The inode table holds {data.Length} bytes but its first block does not start at offset 0.");
        }

        long offset = 0;
        var blockIndex = 0;
        var source = new ArrayCursorSource(data);
        while (offset < data.Length)
        {
            while (blockIndex + 1 < blocks.Count && blocks[blockIndex + 1].DataOffset <= offset)
            {
                blockIndex++;
            }

            var reference = new InodeReference(blocks[blockIndex].Relative, (int)(offset - blocks[blockIndex].DataOffset));
            source.Position = offset;
            var inode = ParseInode(source, reference.ToString(), geometry);
            if (++count > geometry.InodeCount)
            {
                throw SquashFsException.Corrupted($"The inode table holds more inodes than the superblock's inode_count {geometry.InodeCount}.");
            }

            yield return new InodeRecord(reference, offset, inode);
            offset = source.Position;
        }
    }

    /// <summary>Parses the inode at the cursor; <paramref name="where"/> names it in errors.</summary>
    internal static Inode ParseInode(IByteCursor c, string where, InodeTableGeometry geometry)
    {
        var type = (InodeType)c.ReadUInt16();
        if (type < InodeType.BasicDirectory || type > InodeType.ExtendedSocket)
        {
            throw SquashFsException.Corrupted($"Inode at {where}: unknown type {(ushort)type} (expected 1-14).");
        }

        var inode = new Inode
        {
            Type = type,
            Permissions = c.ReadUInt16(),
            UidIndex = c.ReadUInt16(),
            GidIndex = c.ReadUInt16(),
            ModifiedTime = c.ReadUInt32(),
            InodeNumber = c.ReadUInt32(),
        };
        if (inode.InodeNumber == 0 || inode.InodeNumber > geometry.InodeCount)
        {
            throw SquashFsException.Corrupted($"Inode at {where}: inode number {inode.InodeNumber} is outside 1-{geometry.InodeCount}.");
        }

        switch (type)
        {
            case InodeType.BasicDirectory:
                inode.DirectoryBlockStart = c.ReadUInt32();
                inode.LinkCount = c.ReadUInt32();
                inode.FileSize = c.ReadUInt16();
                inode.DirectoryBlockOffset = c.ReadUInt16();
                inode.ParentInode = c.ReadUInt32();
                break;
            case InodeType.ExtendedDirectory:
                inode.LinkCount = c.ReadUInt32();
                inode.FileSize = c.ReadUInt32();
                inode.DirectoryBlockStart = c.ReadUInt32();
                inode.ParentInode = c.ReadUInt32();
                var indexCount = c.ReadUInt16();
                inode.DirectoryBlockOffset = c.ReadUInt16();
                inode.XattrIndex = c.ReadUInt32();
                var index = new List<DirectoryIndexEntry>();
                for (var i = 0; i < indexCount; i++)
                {
                    var idx = c.ReadUInt32();
                    var start = c.ReadUInt32();
                    var nameSize = c.ReadUInt32() + 1L;
                    if (nameSize > 256)
                    {
                        throw SquashFsException.Corrupted($"Inode at {where}: directory index name of {nameSize} bytes (max 256).");
                    }

                    var name = new byte[nameSize];
                    c.Read(name);
                    index.Add(new DirectoryIndexEntry(idx, start, name));
                }

                inode.DirectoryIndex = [.. index];
                break;
            case InodeType.BasicFile:
                inode.BlocksStart = c.ReadUInt32();
                inode.FragmentIndex = c.ReadUInt32();
                inode.FragmentOffset = c.ReadUInt32();
                inode.FileSize = c.ReadUInt32();
                inode.BlockSizes = ReadBlockList(c, inode, where, geometry);
                break;
            case InodeType.ExtendedFile:
                inode.BlocksStart = c.ReadUInt64();
                inode.FileSize = c.ReadUInt64();
                inode.Sparse = c.ReadUInt64();
                inode.LinkCount = c.ReadUInt32();
                inode.FragmentIndex = c.ReadUInt32();
                inode.FragmentOffset = c.ReadUInt32();
                inode.XattrIndex = c.ReadUInt32();
                inode.BlockSizes = ReadBlockList(c, inode, where, geometry);
                break;
            case InodeType.BasicSymlink:
            case InodeType.ExtendedSymlink:
                inode.LinkCount = c.ReadUInt32();
                var targetSize = c.ReadUInt32();
                if (targetSize > 65535)
                {
                    throw SquashFsException.Corrupted($"Inode at {where}: symlink target of {targetSize} bytes (max 65535).");
                }

                inode.SymlinkTarget = new byte[targetSize];
                c.Read(inode.SymlinkTarget);
                inode.FileSize = targetSize;
                if (type == InodeType.ExtendedSymlink)
                {
                    inode.XattrIndex = c.ReadUInt32();
                }

                break;
            case InodeType.BasicBlockDevice:
            case InodeType.BasicCharDevice:
            case InodeType.ExtendedBlockDevice:
            case InodeType.ExtendedCharDevice:
                inode.LinkCount = c.ReadUInt32();
                inode.DeviceNumber = c.ReadUInt32();
                if (inode.IsExtended)
                {
                    inode.XattrIndex = c.ReadUInt32();
                }

                break;
            default:
                inode.LinkCount = c.ReadUInt32();
                if (inode.IsExtended)
                {
                    inode.XattrIndex = c.ReadUInt32();
                }

                break;
        }

        return inode;
    }

    private static uint[] ReadBlockList(IByteCursor c, Inode inode, string where, InodeTableGeometry geometry)
    {
        if (inode.FragmentIndex != Inode.NoFragment && inode.FragmentIndex >= geometry.FragmentEntryCount)
        {
            throw SquashFsException.OutOfBounds($"Inode {inode.InodeNumber} at {where}: fragment index {inode.FragmentIndex} is outside the fragment table ({geometry.FragmentEntryCount} entries).");
        }

        var count = Inode.BlockCountOf(inode.FileSize, geometry.BlockSize, inode.FragmentIndex != Inode.NoFragment);
        if (count > (ulong)geometry.MaxBlockListEntries)
        {
            throw SquashFsException.Overflow($"Inode {inode.InodeNumber} at {where}: file size {inode.FileSize} needs {count} blocks, more than the limit {geometry.MaxBlockListEntries}.");
        }

        // Grows with what is actually decoded, so a lying file size cannot force a huge allocation.
        var list = new List<uint>((int)Math.Min(count, 4096));
        for (ulong i = 0; i < count; i++)
        {
            list.Add(c.ReadUInt32());
        }

        return [.. list];
    }
}
