using EdgeUpdater.SquashFs.IO;
using EdgeUpdater.SquashFs.Reader;

namespace EdgeUpdater.SquashFs.Tests.Robustness;

/// <summary>
/// The fuzz entry point for the reader: opens an image from bytes and exercises every parser (tree,
/// files, xattrs, every table, the block map). A well-behaved reader only ever throws
/// <see cref="SquashFsException"/> from here.
/// </summary>
internal static class ImageWorkout
{
    public static readonly SquashFsReaderOptions HostileOptions = new()
    {
        MaxMetadataBytes = 64L << 20,
        MaxEntries = 100_000,
        MaxDepth = 64,
        MaxBlockListEntries = 1 << 20,
    };

    public static void Run(byte[] image, long maxFileBytes = 4 << 20)
    {
        using var sqfs = SquashFsImage.Open(new MemoryImageSource(image), HostileOptions);
        var buffer = new byte[65536];
        foreach (var entry in sqfs.Walk())
        {
            _ = entry.Mode;
            _ = entry.Uid;
            _ = entry.Gid;
            _ = entry.LinkTarget;
            _ = entry.GetXattrs();
            if (entry.IsFile)
            {
                using var stream = entry.OpenRead();
                long total = 0;
                int n;
                while (total < maxFileBytes && (n = stream.Read(buffer)) > 0)
                {
                    total += n;
                }
            }
        }

        _ = sqfs.ReadInodeTable();
        _ = sqfs.EnumerateStoredBlocks();
        _ = sqfs.ReadAllMetadataTables();
        _ = sqfs.ReadExportTable();
        _ = sqfs.ReadFragmentTable();
        _ = sqfs.ReadIds();
        _ = sqfs.ReadXattrIdTable();
        _ = sqfs.TryGetEntry("/usr/bin/tool");
    }
}
