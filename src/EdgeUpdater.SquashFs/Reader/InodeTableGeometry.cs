using EdgeUpdater.SquashFs.Format;

namespace EdgeUpdater.SquashFs.Reader;

/// <summary>
/// What parsing inodes needs to know of their image: the block size sets the length of a file's block
/// list; the counts bound the inode numbers and fragment indexes an inode may name.
/// </summary>
/// <param name="BlockSize">The image's data block size.</param>
/// <param name="InodeCount">The superblock's inode count.</param>
/// <param name="FragmentEntryCount">Entries of the fragment table.</param>
/// <param name="MaxBlockListEntries">Most entries of one file's block list (<see cref="SquashFsReaderOptions.MaxBlockListEntries"/>).</param>
public sealed record InodeTableGeometry(uint BlockSize, uint InodeCount, uint FragmentEntryCount, long MaxBlockListEntries)
{
    /// <summary>The geometry of an image's superblock, with the block list limit of <paramref name="options"/>.</summary>
    public static InodeTableGeometry Of(Superblock superblock, SquashFsReaderOptions options) =>
        new(superblock.BlockSize, superblock.InodeCount, superblock.FragmentEntryCount, options.MaxBlockListEntries);
}
