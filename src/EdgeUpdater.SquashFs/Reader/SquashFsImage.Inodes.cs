using EdgeUpdater.SquashFs.Format;
using EdgeUpdater.SquashFs.Metadata;

namespace EdgeUpdater.SquashFs.Reader;

public sealed partial class SquashFsImage
{
    private Inode ParseInode(IByteCursor c, string where)
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
        if (inode.InodeNumber == 0 || inode.InodeNumber > Superblock.InodeCount)
        {
            throw SquashFsException.Corrupted($"Inode at {where}: inode number {inode.InodeNumber} is outside 1-{Superblock.InodeCount}.");
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
                inode.BlockSizes = ReadBlockList(c, inode, where);
                break;
            case InodeType.ExtendedFile:
                inode.BlocksStart = c.ReadUInt64();
                inode.FileSize = c.ReadUInt64();
                inode.Sparse = c.ReadUInt64();
                inode.LinkCount = c.ReadUInt32();
                inode.FragmentIndex = c.ReadUInt32();
                inode.FragmentOffset = c.ReadUInt32();
                inode.XattrIndex = c.ReadUInt32();
                inode.BlockSizes = ReadBlockList(c, inode, where);
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

    private uint[] ReadBlockList(IByteCursor c, Inode inode, string where)
    {
        if (inode.FragmentIndex != Inode.NoFragment && inode.FragmentIndex >= Superblock.FragmentEntryCount)
        {
            throw SquashFsException.OutOfBounds($"Inode {inode.InodeNumber} at {where}: fragment index {inode.FragmentIndex} is outside the fragment table ({Superblock.FragmentEntryCount} entries).");
        }

        var count = Inode.BlockCountOf(inode.FileSize, Superblock.BlockSize, inode.FragmentIndex != Inode.NoFragment);
        if (count > (ulong)Options.MaxBlockListEntries)
        {
            throw SquashFsException.Overflow($"Inode {inode.InodeNumber} at {where}: file size {inode.FileSize} needs {count} blocks, more than the limit {Options.MaxBlockListEntries}.");
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
