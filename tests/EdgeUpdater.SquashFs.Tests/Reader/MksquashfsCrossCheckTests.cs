using EdgeUpdater.SquashFs.Reader;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.SquashFs.Tests.Reader;

/// <summary>Images made by mksquashfs, read by our reader, equal what unsquashfs extracts.</summary>
[Collection(MksquashfsImagesGroup.Name)]
public sealed class MksquashfsCrossCheckTests
{
    private readonly MksquashfsImages _images;

    public MksquashfsCrossCheckTests(MksquashfsImages images)
    {
        _images = images;
    }

    public static TheoryData<string> VariantNames()
    {
        var data = new TheoryData<string>();
        foreach (var v in MksquashfsImages.Variants)
        {
            data.Add(v.Name);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(VariantNames))]
    public async Task Reader_sees_what_unsquashfs_extracts(string variantName)
    {
        var variant = MksquashfsImages.Variants.Single(v => v.Name == variantName);
        var image = await _images.GetImageAsync(variant);
        var extracted = Path.Combine(_images.NewDirectory("unsquashfs"), "root");
        await ExternalTool.RunCheckedAsync("unsquashfs", ["-no-progress", "-d", extracted, image], TimeSpan.FromMinutes(2));
        var expected = await TreeSnapshot.CaptureAsync(extracted);

        using var sqfs = SquashFsImage.Open(image);
        var actual = await ImageSnapshot.CaptureAsync(sqfs);

        var noXattrs = variant.Arguments.Contains("-no-xattrs");
        TreeSnapshot.AssertEqual(expected, actual, new TreeCompareOptions { Owners = _images.Privileged, Xattrs = !noXattrs && _images.Privileged, RootTime = true });
        Assert.True(actual.Count > 300, $"only {actual.Count} entries read");
    }

    [Theory]
    [MemberData(nameof(VariantNames))]
    public async Task Reader_matches_the_source_tree(string variantName)
    {
        var variant = MksquashfsImages.Variants.Single(v => v.Name == variantName);
        var image = await _images.GetImageAsync(variant);
        var expected = await TreeSnapshot.CaptureAsync(_images.Source);
        using var sqfs = SquashFsImage.Open(image);
        var actual = await ImageSnapshot.CaptureAsync(sqfs);
        var noXattrs = variant.Arguments.Contains("-no-xattrs");
        TreeSnapshot.AssertEqual(expected, actual, new TreeCompareOptions { Xattrs = !noXattrs });
    }

    [Theory]
    [MemberData(nameof(VariantNames))]
    public async Task Inode_table_re_encodes_byte_identically(string variantName)
    {
        var variant = MksquashfsImages.Variants.Single(v => v.Name == variantName);
        using var sqfs = SquashFsImage.Open(await _images.GetImageAsync(variant));
        var table = sqfs.ReadMetadataTable(Metadata.MetadataTableKind.Inodes);
        var records = sqfs.ReadInodeTable();
        using var encoded = new MemoryStream();
        foreach (var record in records)
        {
            Assert.Equal(encoded.Length, record.TableOffset);
            Assert.Equal(record.Inode.InodeNumber, sqfs.ReadInode(record.Reference).InodeNumber);
            encoded.Write(record.Inode.ToArray());
        }

        Assert.Equal(table.Data, encoded.ToArray());
        Assert.Equal((int)sqfs.Superblock.InodeCount, records.Count);
    }

    [Theory]
    [MemberData(nameof(VariantNames))]
    public async Task An_inode_table_in_memory_parses_as_the_image_reads_it(string variantName)
    {
        var variant = MksquashfsImages.Variants.Single(v => v.Name == variantName);
        using var sqfs = SquashFsImage.Open(await _images.GetImageAsync(variant));
        var table = sqfs.ReadMetadataTable(Metadata.MetadataTableKind.Inodes);
        var geometry = InodeTableGeometry.Of(sqfs.Superblock, sqfs.Options);
        var parsed = InodeTableParser.Parse(table.Data, [.. table.Blocks.Select(b => b.Offset - table.Start)], geometry).ToList();
        var read = sqfs.ReadInodeTable();
        Assert.Equal(read.Select(r => (r.Reference, r.TableOffset, r.Inode.InodeNumber)), parsed.Select(r => (r.Reference, r.TableOffset, r.Inode.InodeNumber)));
        Assert.Equal(read.Select(r => r.Inode.ToArray()), parsed.Select(r => r.Inode.ToArray()));

        // The geometry bounds what the table may name: one inode fewer than it holds is refused.
        var e = Assert.Throws<SquashFsException>(() => InodeTableParser.Parse(table.Data, [.. table.Blocks.Select(b => b.Offset - table.Start)], geometry with { InodeCount = geometry.InodeCount - 1 }).ToList());
        Assert.Equal(SquashFsErrorCategory.Corrupted, e.Category);
    }

    [Fact]
    public async Task Lookup_stat_and_seekable_stream()
    {
        var image = await _images.GetImageAsync(MksquashfsImages.Variants[0]);
        using var sqfs = SquashFsImage.Open(image);
        var tool = sqfs.GetEntry("/usr/bin/tool");
        Assert.True(tool.IsFile);
        var bytes = await File.ReadAllBytesAsync(Path.Combine(_images.Source, "usr/bin/tool"));
        Assert.Equal(bytes.Length, tool.Size);
        await using var stream = tool.OpenRead();
        stream.Position = 131072 - 10;
        var buffer = new byte[40];
        stream.ReadExactly(buffer);
        Assert.Equal(bytes.AsSpan(131072 - 10, 40).ToArray(), buffer);
        Assert.Equal("tool", sqfs.GetEntry("usr/bin/tool-alias").LinkTarget);
        Assert.Null(sqfs.TryGetEntry("/usr/bin/missing"));
        Assert.Null(sqfs.TryGetEntry("/etc/hostname/below-a-file"));
        var ex = Assert.Throws<SquashFsException>(() => sqfs.GetEntry("/nope"));
        Assert.Equal(SquashFsErrorCategory.NotFound, ex.Category);
        Assert.Contains("/nope", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Block_map_covers_every_stored_byte_of_the_data_area()
    {
        var image = await _images.GetImageAsync(MksquashfsImages.Variants[0]);
        using var sqfs = SquashFsImage.Open(image);
        var blocks = sqfs.EnumerateStoredBlocks();
        Assert.Contains(blocks, b => b.Kind == StoredBlockKind.Fragment);
        Assert.Contains(blocks, b => b.Kind == StoredBlockKind.Data);
        var expectedStart = sqfs.CompressorOptionsBlock?.End ?? 96;
        foreach (var block in blocks)
        {
            Assert.Equal(expectedStart, block.Offset);
            expectedStart = block.Offset + block.StoredSize;
        }

        var inodeTable = sqfs.ReadMetadataTable(Metadata.MetadataTableKind.Inodes);
        Assert.Equal(expectedStart, inodeTable.Start);
        var sparse = sqfs.GetFileBlocks(sqfs.GetEntry("/var/lib/sparse.img").Inode);
        Assert.Contains(sparse.Blocks, b => b.IsSparse);
    }
}
