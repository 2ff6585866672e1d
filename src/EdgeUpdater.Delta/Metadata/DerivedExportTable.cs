using System.Buffers.Binary;
using EdgeUpdater.SquashFs;
using EdgeUpdater.SquashFs.Format;
using EdgeUpdater.SquashFs.Reader;

namespace EdgeUpdater.Delta.Metadata;

/// <summary>
/// The export table (inode number to inode reference) computed from the new image's inode table, which the
/// device has rebuilt by the time the export table comes (format 3). When an update adds inodes, the
/// numbers and positions of the others move and a patch of the old table costs about a byte per inode
/// (10 KB of the Debian pair's A to B); derived, it costs a few bytes.
/// </summary>
internal static class DerivedExportTable
{
    /// <summary>
    /// The table of <paramref name="length"/> bytes for the inode table <paramref name="inodeData"/> (stored block
    /// starts <paramref name="inodeBlockStarts"/>), or null when that table does not hold exactly one inode for
    /// each number from 1 to length / 8.
    /// </summary>
    public static byte[]? TryDerive(byte[] inodeData, IReadOnlyList<long> inodeBlockStarts, uint blockSize, uint fragmentCount, int length)
    {
        if (length % 8 != 0 || length == 0 || !Superblock.IsValidBlockSize(blockSize))
        {
            return null;
        }

        // Every inode takes at least its 16-byte common header: a table claiming more entries cannot derive,
        // and is refused before its bytes are allocated.
        var entries = length / 8;
        if (entries > inodeData.Length / 16)
        {
            return null;
        }

        var table = new byte[length];
        var seen = new bool[entries];
        var count = 0;
        try
        {
            // One inode at a time: nothing but the table and the flags is kept, whatever the image. The block
            // list limit only bounds a lying file size; lists grow with the bytes actually parsed.
            foreach (var record in InodeTableParser.Parse(inodeData, inodeBlockStarts, new InodeTableGeometry(blockSize, (uint)entries, fragmentCount, SquashFsReaderOptions.DefaultMaxBlockListEntries)))
            {
                // The parser keeps numbers within 1 to entries.
                var index = (int)record.Inode.InodeNumber - 1;
                if (seen[index])
                {
                    return null;
                }

                seen[index] = true;
                count++;
                BinaryPrimitives.WriteUInt64LittleEndian(table.AsSpan(8 * index), record.Reference.Value);
            }
        }
        catch (SquashFsException)
        {
            return null;
        }

        if (count != entries)
        {
            return null;
        }

        return table;
    }
}
