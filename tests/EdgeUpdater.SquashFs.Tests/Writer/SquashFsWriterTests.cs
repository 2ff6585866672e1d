using System.Security.Cryptography;
using EdgeUpdater.SquashFs.Compression;
using EdgeUpdater.SquashFs.Format;
using EdgeUpdater.SquashFs.IO;
using EdgeUpdater.SquashFs.Reader;
using EdgeUpdater.SquashFs.Writer;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.SquashFs.Tests.Writer;

/// <summary>Images from our writer, checked by unsquashfs, the kernel and our reader.</summary>
[Collection(MksquashfsImagesGroup.Name)]
public sealed class SquashFsWriterTests
{
    private readonly MksquashfsImages _fixture;

    public SquashFsWriterTests(MksquashfsImages fixture)
    {
        _fixture = fixture;
    }

    public static TheoryData<string> Compressors() => new("gzip", "xz", "lz4", "zstd");

    private static CompressorOptions Options(string name) => name switch
    {
        "xz" => CompressorOptions.Default(CompressorId.Xz),
        "lz4" => CompressorOptions.Default(CompressorId.Lz4),
        "zstd" => CompressorOptions.Default(CompressorId.Zstd),
        _ => CompressorOptions.Default(CompressorId.Gzip),
    };

    [Theory]
    [MemberData(nameof(Compressors))]
    public async Task Unsquashfs_extracts_the_source_tree(string compressor)
    {
        var image = Path.Combine(_fixture.NewDirectory("w"), "out.sqfs");
        await SquashFsWriter.WriteAsync(_fixture.Source, image, new SquashFsWriterOptions { Compressor = Options(compressor) });
        var extracted = Path.Combine(_fixture.NewDirectory("x"), "root");
        await ExternalTool.RunCheckedAsync("unsquashfs", ["-no-progress", "-d", extracted, image]);
        var expected = await TreeSnapshot.CaptureAsync(_fixture.Source);
        var actual = await TreeSnapshot.CaptureAsync(extracted);
        TreeSnapshot.AssertEqual(expected, actual, new TreeCompareOptions { Owners = _fixture.Privileged, Xattrs = _fixture.Privileged, RootTime = true });

        using var sqfs = SquashFsImage.Open(image);
        TreeSnapshot.AssertEqual(expected, await ImageSnapshot.CaptureAsync(sqfs), new TreeCompareOptions { RootTime = true });
    }

    [Theory]
    [MemberData(nameof(Compressors))]
    public async Task Kernel_mounts_our_image(string compressor)
    {
        Privileges.RequireRoot("loop-mounting an image");
        var dir = _fixture.NewDirectory("k");
        var image = Path.Combine(dir, "out.sqfs");
        await SquashFsWriter.WriteAsync(_fixture.Source, image, new SquashFsWriterOptions { Compressor = Options(compressor), BlockSize = compressor == "lz4" ? 4096 : 131072 });
        var expected = await TreeSnapshot.CaptureAsync(_fixture.Source);
        await using var mount = await SquashFsMount.MountAsync(image, Path.Combine(dir, "mnt"));
        var actual = await TreeSnapshot.CaptureAsync(mount.MountPoint);
        TreeSnapshot.AssertEqual(expected, actual, new TreeCompareOptions { RootTime = true });
    }

    [Fact]
    public async Task Kernel_lists_a_directory_spanning_many_metadata_blocks()
    {
        Privileges.RequireRoot("loop-mounting an image");
        var root = SourceNode.Directory(string.Empty);
        var big = SourceNode.Directory("big");
        root.Add(big);
        for (var i = 0; i < 3000; i++)
        {
            big.Add(SourceNode.File($"entry-with-a-longish-name-{i:D5}", [(byte)i]));
        }

        var dir = _fixture.NewDirectory("dirindex");
        var image = Path.Combine(dir, "big.sqfs");
        using (var sink = new FileImageSink(image))
        {
            await SquashFsWriter.WriteAsync(root, sink, new SquashFsWriterOptions { FixedTimestamp = 0 });
        }

        using (var sqfs = SquashFsImage.Open(image))
        {
            var inode = sqfs.GetEntry("/big").Inode;
            Assert.Equal(InodeType.ExtendedDirectory, inode.Type);
            Assert.NotEmpty(inode.DirectoryIndex);
        }

        await using var mount = await SquashFsMount.MountAsync(image, Path.Combine(dir, "mnt"));
        Assert.Equal(3000, Directory.GetFiles(Path.Combine(mount.MountPoint, "big")).Length);
        // Lookups by name go through the directory index.
        foreach (var i in new[] { 0, 1, 777, 1500, 2999 })
        {
            Assert.Equal([(byte)i], await File.ReadAllBytesAsync(Path.Combine(mount.MountPoint, "big", $"entry-with-a-longish-name-{i:D5}")));
        }
    }

    [Fact]
    public async Task Same_tree_created_in_different_orders_builds_the_same_bytes()
    {
        var hashes = new List<string>();
        foreach (var seed in new int?[] { null, 1, 2 })
        {
            var source = _fixture.NewDirectory("order");
            await TestTreeBuilder.Rich(source, _fixture.Privileged).BuildAsync(seed);
            var image = Path.Combine(_fixture.NewDirectory("order-img"), "a.sqfs");
            await SquashFsWriter.WriteAsync(source, image, new SquashFsWriterOptions { Parallelism = seed is null ? 1 : 3, HonourSourceDateEpoch = false });
            hashes.Add(Convert.ToHexString(SHA256.HashData(await File.ReadAllBytesAsync(image))));
        }

        Assert.Single(hashes.Distinct());
    }

    [Fact]
    public async Task Options_are_honoured()
    {
        var dir = _fixture.NewDirectory("opts");
        var plain = Path.Combine(dir, "plain.sqfs");
        var tuned = Path.Combine(dir, "tuned.sqfs");
        await SquashFsWriter.WriteAsync(_fixture.Source, plain, new SquashFsWriterOptions { DeduplicateFiles = false, Exportable = false, Fragments = false });
        var result = await SquashFsWriter.WriteAsync(_fixture.Source, tuned, new SquashFsWriterOptions
        {
            Compressor = CompressorOptions.Default(CompressorId.Zstd) with { Level = 3 },
            BlockSize = 4096,
            AlwaysFragments = true,
            FixedTimestamp = 1234567,
            OwnerOverride = (0, 0),
        });
        Assert.True(result.DuplicateFiles >= 1);

        using (var image = SquashFsImage.Open(plain))
        {
            Assert.Equal(0u, image.Superblock.FragmentEntryCount);
            Assert.False(image.Superblock.HasExportTable);
            Assert.True((image.Superblock.Flags & SuperblockFlags.NoFragments) != 0);
        }

        using (var image = SquashFsImage.Open(tuned))
        {
            Assert.Equal(4096u, image.Superblock.BlockSize);
            Assert.Equal(3, image.CompressorOptions.Level);
            Assert.Equal(1234567u, image.Superblock.ModificationTime);
            Assert.True(image.Superblock.HasExportTable);
            Assert.Equal(image.Superblock.InodeCount, (uint)image.ReadExportTable().Count);
            var a = image.GetEntry("/var/lib/dup-a").Inode;
            var b = image.GetEntry("/var/lib/dup-b").Inode;
            Assert.Equal(a.BlocksStart, b.BlocksStart);
            Assert.Equal(a.FragmentIndex, b.FragmentIndex);
            foreach (var entry in image.Walk())
            {
                Assert.Equal(1234567u, entry.Inode.ModifiedTime);
                Assert.Equal(0u, entry.Uid);
                Assert.Equal(0u, entry.Gid);
            }

            // Export table entry n-1 points at inode n.
            var export = image.ReadExportTable();
            var tool = image.GetEntry("/usr/bin/tool");
            Assert.Equal(tool.Reference, export[(int)tool.Inode.InodeNumber - 1]);
        }

        var extracted = Path.Combine(_fixture.NewDirectory("x"), "root");
        await ExternalTool.RunCheckedAsync("unsquashfs", ["-no-progress", "-d", extracted, tuned]);
        TreeSnapshot.AssertEqual(await TreeSnapshot.CaptureAsync(_fixture.Source), await TreeSnapshot.CaptureAsync(extracted), new TreeCompareOptions { Owners = false, ModifiedTimes = false, Xattrs = _fixture.Privileged });
    }

    [Fact]
    public async Task Source_date_epoch_fixes_every_timestamp()
    {
        var image = Path.Combine(_fixture.NewDirectory("sde"), "a.sqfs");
        var before = Environment.GetEnvironmentVariable("SOURCE_DATE_EPOCH");
        Environment.SetEnvironmentVariable("SOURCE_DATE_EPOCH", "86400");
        try
        {
            await SquashFsWriter.WriteAsync(_fixture.Source, image);
        }
        finally
        {
            Environment.SetEnvironmentVariable("SOURCE_DATE_EPOCH", before);
        }

        using var sqfs = SquashFsImage.Open(image);
        Assert.Equal(86400u, sqfs.Superblock.ModificationTime);
        Assert.All(sqfs.Walk(), e => Assert.Equal(86400u, e.Inode.ModifiedTime));
    }

    [Fact]
    public async Task In_memory_tree_round_trips_with_xattrs_and_every_node_kind()
    {
        var root = SourceNode.Directory(string.Empty);
        var file = SourceNode.File("bin", TestTreeBuilder.Content(300_000, 7));
        file.Xattrs.Add(new SquashFsXattr("security.capability", Convert.FromHexString("0100000200200000000000000000000000000000")));
        file.Xattrs.Add(new SquashFsXattr("user.a", "1"u8.ToArray()));
        file.Xattrs.Add(new SquashFsXattr("system.posix_acl_access", [1]));
        file.HardLinkKey = "bin";
        var link = SourceNode.File("bin-link", TestTreeBuilder.Content(300_000, 7));
        link.HardLinkKey = "bin";
        var sub = SourceNode.Directory("sub");
        sub.Add(SourceNode.Symlink("up", "../bin"))
            .Add(SourceNode.Device("tty", InodeKind.CharDevice, 4, 1))
            .Add(SourceNode.Device("disk", InodeKind.BlockDevice, 259, 1 << 19))
            .Add(SourceNode.Special("pipe", InodeKind.Fifo))
            .Add(SourceNode.Special("sock", InodeKind.Socket))
            .Add(SourceNode.File("empty", []));
        root.Add(file).Add(link).Add(sub);

        var buffer = new MemoryStream();
        using (var sink = new StreamImageSink(buffer, leaveOpen: true))
        {
            await SquashFsWriter.WriteAsync(root, sink, new SquashFsWriterOptions { Compressor = CompressorOptions.Default(CompressorId.Xz) with { XzFilters = XzFilters.X86 } });
        }

        Assert.Equal(0, buffer.Length % 4096);
        using var image = SquashFsImage.Open(new MemoryImageSource(buffer.ToArray()));
        var bin = image.GetEntry("/bin");
        Assert.Equal(["security.capability", "user.a"], bin.GetXattrs().Select(x => x.Name));
        Assert.Equal(2u, bin.LinkCount);
        Assert.Equal(bin.Inode.InodeNumber, image.GetEntry("/bin-link").Inode.InodeNumber);
        Assert.Equal(TestTreeBuilder.Content(300_000, 7), await ReadAllAsync(bin.OpenRead()));
        Assert.Equal("../bin", image.GetEntry("/sub/up").LinkTarget);
        var disk = image.GetEntry("/sub/disk");
        Assert.Equal((259u, 1u << 19), (disk.DeviceMajor, disk.DeviceMinor));
        Assert.Equal(InodeKind.Socket, image.GetEntry("/sub/sock").Kind);
        Assert.Equal(InodeKind.Fifo, image.GetEntry("/sub/pipe").Kind);
        Assert.Equal(0, image.GetEntry("/sub/empty").Size);
        Assert.Equal(XzFilters.X86, image.CompressorOptions.XzFilters);

        // Every inode re-encodes to the exact bytes of the inode table.
        var table = image.ReadMetadataTable(Metadata.MetadataTableKind.Inodes);
        using var reencoded = new MemoryStream();
        foreach (var record in image.ReadInodeTable())
        {
            reencoded.Write(record.Inode.ToArray());
        }

        Assert.Equal(table.Data, reencoded.ToArray());
    }

    [Fact]
    public async Task Duplicate_names_and_bad_options_are_refused()
    {
        var root = SourceNode.Directory(string.Empty).Add(SourceNode.File("a", [1])).Add(SourceNode.File("a", [2]));
        using var sink = new StreamImageSink(new MemoryStream());
        var ex = await Assert.ThrowsAsync<SquashFsException>(() => SquashFsWriter.WriteAsync(root, sink));
        Assert.Equal(SquashFsErrorCategory.InvalidInput, ex.Category);
        Assert.Contains("'a'", ex.Message, StringComparison.Ordinal);
        ex = await Assert.ThrowsAsync<SquashFsException>(() => SquashFsWriter.WriteAsync(SourceNode.Directory(string.Empty), sink, new SquashFsWriterOptions { BlockSize = 5000 }));
        Assert.Contains("5000", ex.Message, StringComparison.Ordinal);
        Assert.Throws<SquashFsException>(() => SourceNode.Directory(string.Empty).Add(SourceNode.File("x/y", [])));
    }

    [Fact]
    public async Task A_file_that_changes_while_read_fails_the_build_cleanly()
    {
        var root = SourceNode.Directory(string.Empty);
        for (var i = 0; i < 50; i++)
        {
            root.Add(SourceNode.File($"ok-{i:D2}", TestTreeBuilder.Content(200_000, i)));
        }

        root.Add(SourceNode.File("shrinks", 1_000_000, () => new MemoryStream(new byte[400_000])));
        using var sink = new StreamImageSink(new MemoryStream());
        var ex = await Assert.ThrowsAsync<SquashFsException>(() => SquashFsWriter.WriteAsync(root, sink, new SquashFsWriterOptions { Parallelism = 2 }).WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal(SquashFsErrorCategory.InvalidInput, ex.Category);
        Assert.Contains("/shrinks", ex.Message, StringComparison.Ordinal);

        root = SourceNode.Directory(string.Empty).Add(SourceNode.File("grows", 10, () => new MemoryStream(new byte[20])));
        ex = await Assert.ThrowsAsync<SquashFsException>(() => SquashFsWriter.WriteAsync(root, sink));
        Assert.Contains("grew", ex.Message, StringComparison.Ordinal);
    }

    private static async Task<byte[]> ReadAllAsync(Stream stream)
    {
        await using (stream)
        {
            var copy = new MemoryStream();
            await stream.CopyToAsync(copy);
            return copy.ToArray();
        }
    }
}
