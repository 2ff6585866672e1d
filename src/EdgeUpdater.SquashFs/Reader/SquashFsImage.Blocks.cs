using EdgeUpdater.SquashFs.Format;

namespace EdgeUpdater.SquashFs.Reader;

public sealed partial class SquashFsImage
{
    /// <summary>Where every data block and the fragment tail of a regular file inode lie.</summary>
    public FileBlockMap GetFileBlocks(Inode inode)
    {
        ArgumentNullException.ThrowIfNull(inode);
        if (inode.Kind != InodeKind.File)
        {
            throw new SquashFsException(SquashFsErrorCategory.InvalidOperation, $"Inode {inode.InodeNumber} is a {inode.Kind}, not a regular file.");
        }

        var blocks = new DataBlockLocation[inode.BlockSizes.Length];
        var offset = (long)inode.BlocksStart;
        var blockSize = Superblock.BlockSize;
        for (var i = 0; i < blocks.Length; i++)
        {
            var raw = inode.BlockSizes[i];
            var stored = raw & ~Inode.UncompressedBlockBit;
            var compressed = (raw & Inode.UncompressedBlockBit) == 0;
            var sparse = stored == 0;
            var uncompressed = (int)Math.Min(blockSize, inode.FileSize - ((ulong)i * blockSize));
            if (!sparse)
            {
                CheckBlock(offset, stored, compressed, $"inode {inode.InodeNumber} block {i}");
            }

            blocks[i] = new DataBlockLocation(offset, stored, compressed && !sparse, sparse, uncompressed);
            offset += stored;
        }

        FragmentLocation? fragment = null;
        if (inode.FragmentIndex != Inode.NoFragment)
        {
            var entry = ReadFragmentEntry(inode.FragmentIndex);
            var length = (int)(inode.FileSize % blockSize);
            if ((ulong)inode.FragmentOffset + (ulong)length > blockSize)
            {
                throw SquashFsException.OutOfBounds($"Inode {inode.InodeNumber}: tail of {length} bytes at fragment offset {inode.FragmentOffset} runs past the block size {blockSize}.");
            }

            fragment = new FragmentLocation(inode.FragmentIndex, (long)entry.Start, entry.StoredSize, entry.IsCompressed, inode.FragmentOffset, length);
        }

        return new FileBlockMap(blocks, fragment, inode.FileSize);
    }

    /// <summary>
    /// Every data block and fragment block stored in the image, in image order, each once (files that
    /// share blocks as duplicates yield them once). Sparse blocks are not stored and not listed.
    /// </summary>
    public IReadOnlyList<StoredBlock> EnumerateStoredBlocks()
    {
        var byOffset = new Dictionary<long, StoredBlock>();
        var fragmentUse = new Dictionary<uint, int>();
        foreach (var record in ReadInodeTable())
        {
            if (record.Inode.Kind != InodeKind.File)
            {
                continue;
            }

            var map = GetFileBlocks(record.Inode);
            foreach (var block in map.Blocks)
            {
                if (!block.IsSparse)
                {
                    byOffset.TryAdd(block.Offset, new StoredBlock(StoredBlockKind.Data, block.Offset, block.StoredSize, block.IsCompressed, block.UncompressedSize, -1));
                }
            }

            if (map.Fragment is { } f)
            {
                var end = (int)f.OffsetInFragment + f.Length;
                fragmentUse[f.Index] = Math.Max(fragmentUse.GetValueOrDefault(f.Index), end);
            }
        }

        var fragments = ReadFragmentTable();
        for (var i = 0; i < fragments.Count; i++)
        {
            var entry = fragments[i];
            CheckBlock((long)entry.Start, entry.StoredSize, entry.IsCompressed, $"fragment {i}");
            byOffset[(long)entry.Start] = new StoredBlock(StoredBlockKind.Fragment, (long)entry.Start, entry.StoredSize, entry.IsCompressed, fragmentUse.GetValueOrDefault((uint)i), i);
        }

        return [.. byOffset.Values.OrderBy(b => b.Offset)];
    }

    /// <summary>Reads the raw stored bytes of a block (no decompression).</summary>
    public void ReadStoredBytes(long offset, Span<byte> destination)
    {
        CheckStoredRange(offset, destination.Length);
        _source.ReadAt(offset, destination);
    }

    /// <summary>
    /// The raw stored bytes of a block: in place when the source holds the image in memory
    /// (<see cref="IO.IImageSource.TryGetSpan"/>), else read into <paramref name="scratch"/> (at least
    /// <paramref name="length"/> bytes).
    /// </summary>
    public ReadOnlySpan<byte> GetStoredBytes(long offset, int length, Span<byte> scratch)
    {
        CheckStoredRange(offset, length);
        if (_source.TryGetSpan(offset, length, out var span))
        {
            return span;
        }

        var read = scratch[..length];
        _source.ReadAt(offset, read);
        return read;
    }

    private void CheckStoredRange(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset > _end - length)
        {
            throw SquashFsException.OutOfBounds($"Raw read of {length} bytes at {offset} is outside the image ({_end} bytes used).");
        }
    }
}
