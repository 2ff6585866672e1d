using EdgeUpdater.SquashFs.Format;
using EdgeUpdater.SquashFs.Reader;

namespace EdgeUpdater.Delta.Generation;

/// <summary>
/// One pass over an image for the planner: every file inode with its block map, every stored block,
/// and the path of every reachable file. Reads the inode table once and each directory once (cheaper
/// than <see cref="SquashFsImage.Walk"/> plus <see cref="SquashFsImage.EnumerateStoredBlocks"/>).
/// </summary>
internal sealed class ImageCatalog
{
    private ImageCatalog(List<(string Path, Inode Inode, FileBlockMap Map)> files, List<StoredBlock> storedBlocks)
    {
        Files = files;
        StoredBlocks = storedBlocks;
    }

    /// <summary>Reachable regular files in walk order (hard links appear once per path).</summary>
    public List<(string Path, Inode Inode, FileBlockMap Map)> Files { get; }

    /// <summary>Data and fragment blocks, each once, in image order.</summary>
    public List<StoredBlock> StoredBlocks { get; }

    public static ImageCatalog Build(SquashFsImage image)
    {
        var sb = image.Superblock;
        var blockSize = sb.BlockSize;
        var end = (long)sb.BytesUsed;
        var fragments = image.ReadFragmentTable();
        var records = image.ReadInodeTable();
        var inodes = new Dictionary<InodeReference, Inode>(records.Count);
        var maps = new Dictionary<InodeReference, FileBlockMap>();
        var stored = new Dictionary<long, StoredBlock>();
        var fragmentUse = new int[fragments.Count];
        foreach (var record in records)
        {
            inodes[record.Reference] = record.Inode;
            if (record.Inode.Kind != InodeKind.File)
            {
                continue;
            }

            var inode = record.Inode;
            var blocks = new DataBlockLocation[inode.BlockSizes.Length];
            var offset = (long)inode.BlocksStart;
            for (var i = 0; i < blocks.Length; i++)
            {
                var raw = inode.BlockSizes[i];
                var size = raw & ~Inode.UncompressedBlockBit;
                var sparse = size == 0;
                if (size > blockSize || offset < Superblock.Size || offset > end - size)
                {
                    throw new InvalidOperationException($"inode {inode.InodeNumber} block {i} lies outside the image");
                }

                var uncompressed = (int)Math.Min(blockSize, inode.FileSize - ((ulong)i * blockSize));
                blocks[i] = new DataBlockLocation(offset, size, (raw & Inode.UncompressedBlockBit) == 0 && !sparse, sparse, uncompressed);
                if (!sparse)
                {
                    stored.TryAdd(offset, new StoredBlock(StoredBlockKind.Data, offset, size, blocks[i].IsCompressed, uncompressed, -1));
                }

                offset += size;
            }

            FragmentLocation? tail = null;
            if (inode.FragmentIndex != Inode.NoFragment)
            {
                if (inode.FragmentIndex >= fragments.Count)
                {
                    throw new InvalidOperationException($"inode {inode.InodeNumber} refers to fragment {inode.FragmentIndex} of {fragments.Count}");
                }

                var entry = fragments[(int)inode.FragmentIndex];
                var length = (int)(inode.FileSize % blockSize);
                tail = new FragmentLocation(inode.FragmentIndex, (long)entry.Start, entry.StoredSize, entry.IsCompressed, inode.FragmentOffset, length);
                fragmentUse[inode.FragmentIndex] = Math.Max(fragmentUse[inode.FragmentIndex], (int)Math.Min(int.MaxValue, (long)inode.FragmentOffset + length));
            }

            maps[record.Reference] = new FileBlockMap(blocks, tail, inode.FileSize);
        }

        for (var i = 0; i < fragments.Count; i++)
        {
            var entry = fragments[i];
            if (entry.StoredSize > blockSize || (long)entry.Start < Superblock.Size || (long)entry.Start > end - entry.StoredSize)
            {
                throw new InvalidOperationException($"fragment {i} lies outside the image");
            }

            stored[(long)entry.Start] = new StoredBlock(StoredBlockKind.Fragment, (long)entry.Start, entry.StoredSize, entry.IsCompressed, fragmentUse[i], i);
        }

        var files = new List<(string, Inode, FileBlockMap)>();
        var visited = new HashSet<InodeReference>();
        var stack = new Stack<(string Prefix, Inode Directory, int Depth)>();
        var root = inodes.TryGetValue(sb.RootInode, out var r) ? r : image.ReadInode(sb.RootInode);
        stack.Push(("/", root, 0));
        visited.Add(sb.RootInode);
        while (stack.Count > 0)
        {
            var (prefix, directory, depth) = stack.Pop();
            if (depth > image.Options.MaxDepth)
            {
                throw new InvalidOperationException("directory tree too deep");
            }

            foreach (var record in image.ReadDirectory(directory))
            {
                var inode = inodes.TryGetValue(record.Inode, out var known) ? known : image.ReadInode(record.Inode);
                var path = prefix + record.NameString;
                if (inode.Kind == InodeKind.Directory)
                {
                    if (visited.Add(record.Inode))
                    {
                        stack.Push((path + "/", inode, depth + 1));
                    }
                }
                else if (inode.Kind == InodeKind.File && maps.TryGetValue(record.Inode, out var map))
                {
                    files.Add((path, inode, map));
                }
            }
        }

        return new ImageCatalog(files, [.. stored.Values.OrderBy(b => b.Offset)]);
    }
}
