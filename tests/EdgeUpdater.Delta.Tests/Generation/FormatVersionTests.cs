using EdgeUpdater.Delta.Format;
using EdgeUpdater.Delta.Metadata;
using EdgeUpdater.Delta.Tests.Apply;
using EdgeUpdater.SquashFs.Metadata;
using EdgeUpdater.SquashFs.Reader;
using Xunit;

namespace EdgeUpdater.Delta.Tests.Generation;

/// <summary>
/// Format 3 derives the new export table from the new inode table; format 2 (for devices in the field that
/// read no newer) patches it. Format 4 replays xz metadata blocks from their LZMA decisions; format 3
/// recompresses them. All rebuild B byte for byte; what a version does not have is refused in it.
/// </summary>
[Collection(DeltaImagesGroup.Name)]
public sealed class FormatVersionTests
{
    private readonly DeltaImages _images;
    private readonly ITestOutputHelper _output;

    public FormatVersionTests(DeltaImages images, ITestOutputHelper output)
    {
        _images = images;
        _output = output;
    }

    public static TheoryData<string> VariantsWithExports() => [.. DeltaImages.Variants.Where(v => !v.Arguments.Contains("-no-exports")).Select(v => v.Name)];

    [Theory]
    [MemberData(nameof(VariantsWithExports))]
    public async Task The_export_table_of_every_image_derives_from_its_inode_table(string variantName)
    {
        var variant = DeltaImages.Variants.Single(v => v.Name == variantName);
        foreach (var tree in new[] { "A", "B", "C" })
        {
            AssertDerives(await _images.GetImageAsync(tree, variant));
        }

        AssertDerives(await _images.GetWriterImageAsync("B", variant.Compressor));
    }

    [Theory]
    [InlineData("gzip", DeltaLevel.Fast)]
    [InlineData("gzip", DeltaLevel.Best)]
    [InlineData("xz-64k-always-fragments", DeltaLevel.Fast)]
    [InlineData("zstd-1m", DeltaLevel.Best)]
    [InlineData("lz4", DeltaLevel.Fast)]
    [InlineData("zstd-no-xattrs-no-exports", DeltaLevel.Fast)]
    public async Task Format_3_derives_the_export_table_that_format_2_patches(string variantName, DeltaLevel level)
    {
        var variant = DeltaImages.Variants.Single(v => v.Name == variantName);
        var a = await _images.ReadImageAsync("A", variant);
        var b = await _images.ReadImageAsync("B", variant);
        var (v3, r3) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { Level = level, MaxParallelism = 2, FormatVersion = 3 });
        var (v2, r2) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { Level = level, MaxParallelism = 2, FormatVersion = 2 });
        _output.WriteLine($"{variantName} {level}: format 3 {v3.Length} bytes (metadata {r3.Statistics.MetadataSectionBytes}), format 2 {v2.Length} bytes (metadata {r2.Statistics.MetadataSectionBytes})");
        Assert.Equal(3, r3.Header.Version);
        Assert.Equal(2, r2.Header.Version);
        Assert.Equal(3, (await DeltaInspector.InspectAsync(new MemoryStream(v3))).Header.Version);
        Assert.Equal(0, r2.Statistics.MetadataTablesDerived);
        DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(a, v3));
        DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(a, v2));
        if (variant.Arguments.Contains("-no-exports"))
        {
            Assert.Equal(0, r3.Statistics.MetadataTablesDerived);
            return;
        }

        // B adds and removes files, so inode numbers and positions move and the old export table no longer predicts.
        Assert.Equal(1, r3.Statistics.MetadataTablesDerived);
        Assert.True(r3.Statistics.MetadataSectionBytes < r2.Statistics.MetadataSectionBytes, $"format 3's metadata section {r3.Statistics.MetadataSectionBytes} bytes, format 2's {r2.Statistics.MetadataSectionBytes}");
    }

    /// <summary>
    /// C's one-line edit moves the data of every later file, so most of B's inode and directory blocks change, a
    /// few bytes each: format 4 replays them from their decisions (a patch against B's), format 3 recompresses
    /// them with liblzma. Images of other compressors have nothing to replay.
    /// </summary>
    [Theory]
    [InlineData("xz", DeltaLevel.Fast)]
    [InlineData("xz", DeltaLevel.Best)]
    [InlineData("xz-64k-always-fragments", DeltaLevel.Best)]
    [InlineData("gzip", DeltaLevel.Best)]
    public async Task Format_4_replays_the_xz_metadata_blocks_that_format_3_recompresses(string variantName, DeltaLevel level)
    {
        var variant = DeltaImages.Variants.Single(v => v.Name == variantName);
        var b = await _images.ReadImageAsync("B", variant);
        var c = await _images.ReadImageAsync("C", variant);
        var (v4, r4) = await DeltaTestKit.GenerateAsync(b, c, new DeltaGeneratorOptions { Level = level, MaxParallelism = 2 });
        var (v3, r3) = await DeltaTestKit.GenerateAsync(b, c, new DeltaGeneratorOptions { Level = level, MaxParallelism = 2, FormatVersion = 3 });
        _output.WriteLine($"{variantName} {level}: format 4 {v4.Length} bytes ({r4.Statistics.MetadataBlocksReplayed} blocks replayed, {r4.Statistics.MetadataBlocksRecompressed} recompressed), format 3 {v3.Length} bytes ({r3.Statistics.MetadataBlocksRecompressed} recompressed)");
        Assert.Equal(4, r4.Header.Version);
        Assert.Equal(3, r3.Header.Version);
        Assert.Equal(0, r3.Statistics.MetadataBlocksReplayed);
        Assert.Equal(r3.Statistics.MetadataBlocksRecompressed, r4.Statistics.MetadataBlocksRecompressed + r4.Statistics.MetadataBlocksReplayed);
        DeltaTestKit.AssertSameImage(c, await DeltaTestKit.ApplyAsync(b, v4));
        DeltaTestKit.AssertSameImage(c, await DeltaTestKit.ApplyAsync(b, v3));

        // `delta info` reads the same counts from the delta alone.
        var info = await DeltaInspector.InspectAsync(new MemoryStream(v4));
        foreach (var (inspected, statistics) in new[] { (info, r4.Statistics), (await DeltaInspector.InspectAsync(new MemoryStream(v3)), r3.Statistics) })
        {
            Assert.Equal(statistics.MetadataBlocksRecompressed, inspected.MetadataBlocks.Recompressed);
            Assert.Equal(statistics.MetadataBlocksReplayed, inspected.MetadataBlocks.Replayed);
            Assert.Equal(statistics.MetadataBlocksLiteral, inspected.MetadataBlocks.Literal);
            Assert.Equal(statistics.MetadataTablesDerived, inspected.MetadataTablesByEncoding.GetValueOrDefault("derived"));
        }

        if (variant.Compressor != "xz")
        {
            Assert.Equal(0, r4.Statistics.MetadataBlocksReplayed);
            return;
        }

        Assert.True(r4.Statistics.MetadataBlocksReplayed >= r3.Statistics.MetadataBlocksRecompressed / 2, $"{r4.Statistics.MetadataBlocksReplayed} of {r3.Statistics.MetadataBlocksRecompressed} blocks replayed");

        // The same delta said to be format 3: the replayed blocks' encoding is unknown there.
        var asVersion3 = await RebuildAsync(v4, info.Header with { Version = 3 }, payload => payload);
        var e = await Assert.ThrowsAsync<DeltaException>(() => DeltaTestKit.ApplyAsync(b, asVersion3));
        Assert.Equal(DeltaErrorCategory.Corrupted, e.Category);
        Assert.Contains("metadata block encoding 3 is unknown in format version 3", e.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// A to B adds, removes and rewrites files, so B's tables change throughout and so do their blocks'
    /// decisions. Format 4 replays the blocks of each table whose decisions patch to under an eighth of the content
    /// they rebuild, and recompresses the others: every block format 3 recompresses is one or the other (a table
    /// whose blocks replay but whose decisions cost too much still has them proved with liblzma, not sent
    /// literally), and the decisions add at most 1 KiB per replayed block of 8 KiB to the delta.
    /// </summary>
    [Theory]
    [InlineData("xz", DeltaLevel.Fast)]
    [InlineData("xz", DeltaLevel.Best)]
    [InlineData("xz-64k-always-fragments", DeltaLevel.Fast)]
    public async Task Format_4_replays_a_large_updates_xz_metadata_where_the_decisions_cost_under_an_eighth(string variantName, DeltaLevel level)
    {
        var variant = DeltaImages.Variants.Single(v => v.Name == variantName);
        var a = await _images.ReadImageAsync("A", variant);
        var b = await _images.ReadImageAsync("B", variant);
        var (v4, r4) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { Level = level, MaxParallelism = 2 });
        var (v3, r3) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { Level = level, MaxParallelism = 2, FormatVersion = 3 });
        _output.WriteLine($"{variantName} {level}: format 4 {v4.Length} bytes ({r4.Statistics.MetadataBlocksReplayed} blocks replayed, {r4.Statistics.MetadataBlocksRecompressed} recompressed), format 3 {v3.Length} bytes ({r3.Statistics.MetadataBlocksRecompressed} recompressed)");

        Assert.True(r4.Statistics.MetadataBlocksReplayed > 0, "no metadata block replayed");
        Assert.Equal(r3.Statistics.MetadataBlocksRecompressed, r4.Statistics.MetadataBlocksRecompressed + r4.Statistics.MetadataBlocksReplayed);
        Assert.Equal(r3.Statistics.MetadataBlocksLiteral, r4.Statistics.MetadataBlocksLiteral);
        Assert.True(v4.Length - v3.Length < r4.Statistics.MetadataBlocksReplayed * 1024L, $"{v4.Length - v3.Length} bytes of decisions for {r4.Statistics.MetadataBlocksReplayed} blocks");
        DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(a, v4));
        DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(a, v3));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(DeltaFormatVersions.Newest + 1)]
    public async Task The_generator_refuses_a_format_it_does_not_write(int version)
    {
        var e = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => DeltaTestKit.GenerateAsync(HostileDeltaTests.Base, HostileDeltaTests.Target, new DeltaGeneratorOptions { FormatVersion = version }));
        Assert.Contains($"Format version {version} is not written", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_derived_table_in_a_version_2_delta_is_refused()
    {
        var variant = DeltaImages.Variants.Single(v => v.Name == "gzip");
        var a = await _images.ReadImageAsync("A", variant);
        var b = await _images.ReadImageAsync("B", variant);
        var (v2, result) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { Level = DeltaLevel.Fast, MaxParallelism = 2, FormatVersion = 2 });
        Assert.Equal(2, result.Header.Version);
        using var image = SquashFsImage.Open(await _images.GetImageAsync("B", variant));
        var sb = image.Superblock;
        var exportLength = image.ReadMetadataTable(MetadataTableKind.Export).Data.Length;

        // The export table's piece, patched in format 2, made to say "derived" as format 3 would.
        var damaged = await RebuildAsync(v2, result.Header, payload =>
        {
            var w = new ByteWriter();
            w.U8((byte)MetadataPieceKind.TableBlocks);
            w.U8((byte)MetadataTableKind.Export);
            w.VarU((ulong)exportLength);
            w.U8((byte)TableEncoding.Patch);
            var prefix = w.ToArray();
            var at = payload.AsSpan().IndexOf(prefix);
            Assert.True(at >= 0, "the export table's patch is not in the metadata section");
            var blob = new ByteReader(payload.AsSpan(at + prefix.Length), "patch");
            var patchLength = blob.VarInt(payload.Length, "patch length");
            var end = payload.Length - blob.Remaining + patchLength;
            return [.. payload.AsSpan(0, at), .. DerivedPiece(MetadataTableKind.Export, exportLength, sb.BlockSize, sb.FragmentEntryCount), .. payload.AsSpan(end)];
        });
        var e = await Assert.ThrowsAsync<DeltaException>(() => DeltaTestKit.ApplyAsync(a, damaged));
        Assert.Equal(DeltaErrorCategory.Corrupted, e.Category);
        Assert.Contains("table encoding 3 is unknown in format version 2", e.Message, StringComparison.Ordinal);

        // The delta as generated, rebuilt the same way, still gives B: only the piece was changed.
        DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(a, await RebuildAsync(v2, result.Header, payload => payload)));
    }

    [Theory]
    [InlineData("block size", 1)]
    [InlineData("fragment count", 2)]
    [InlineData("table kind", 3)]
    public async Task A_derived_table_that_does_not_derive_is_refused(string field, int change)
    {
        var (a, _, delta) = await GzipFormat3DeltaAsync();
        var info = await DeltaInspector.InspectAsync(new MemoryStream(delta));
        using var image = SquashFsImage.Open(await _images.GetImageAsync("B", DeltaImages.Variants.Single(v => v.Name == "gzip")));
        var sb = image.Superblock;
        var exportLength = image.ReadMetadataTable(MetadataTableKind.Export).Data.Length;
        var damaged = await RebuildAsync(delta, info.Header, payload =>
        {
            var piece = DerivedPiece(MetadataTableKind.Export, exportLength, sb.BlockSize, sb.FragmentEntryCount);
            var at = payload.AsSpan().IndexOf(piece);
            Assert.True(at >= 0, "the derived export table piece is not in the metadata section");
            Assert.Equal(-1, payload.AsSpan(at + 1).IndexOf(piece));
            byte[] replacement = change switch
            {
                // 128 KiB to 256 KiB: the same varint length, so only the field changes.
                1 => DerivedPiece(MetadataTableKind.Export, exportLength, sb.BlockSize * 2, sb.FragmentEntryCount),
                2 => DerivedPiece(MetadataTableKind.Export, exportLength, sb.BlockSize, 0),
                _ => DerivedPiece(MetadataTableKind.Ids, exportLength, sb.BlockSize, sb.FragmentEntryCount),
            };
            Assert.True(sb.FragmentEntryCount > 0 && replacement.Length <= piece.Length, "the test needs fragments and an equally long replacement");
            return [.. payload.AsSpan(0, at), .. replacement, .. payload.AsSpan(at + piece.Length)];
        });
        var e = await Assert.ThrowsAsync<DeltaException>(() => DeltaTestKit.ApplyAsync(a, damaged));
        _output.WriteLine($"{field}: {e.Message}");
        Assert.Equal(DeltaErrorCategory.Corrupted, e.Category);
        Assert.Contains(change == 3 ? "only the export table does" : "does not derive from the new inode table", e.Message, StringComparison.Ordinal);
    }

    private static void AssertDerives(string imagePath)
    {
        using var image = SquashFsImage.Open(imagePath);
        var inodes = image.ReadMetadataTable(MetadataTableKind.Inodes);
        var export = image.ReadMetadataTable(MetadataTableKind.Export);
        var derived = DerivedExportTable.TryDerive(inodes.Data, [.. inodes.Blocks.Select(b => b.Offset - inodes.Start)], image.Superblock.BlockSize, image.Superblock.FragmentEntryCount, export.Data.Length);
        Assert.NotNull(derived);
        Assert.Equal(export.Data, derived);

        // One entry short (an image whose export table disagrees with its inodes) does not derive.
        Assert.Null(DerivedExportTable.TryDerive(inodes.Data, [.. inodes.Blocks.Select(b => b.Offset - inodes.Start)], image.Superblock.BlockSize, image.Superblock.FragmentEntryCount, export.Data.Length - 8));
    }

    /// <summary>The start of a table piece: kind, table, length, encoding Derived, block size and fragment count.</summary>
    private static byte[] DerivedPiece(MetadataTableKind table, int length, uint blockSize, uint fragmentCount)
    {
        var w = new ByteWriter();
        w.U8((byte)MetadataPieceKind.TableBlocks);
        w.U8((byte)table);
        w.VarU((ulong)length);
        w.U8((byte)TableEncoding.Derived);
        w.VarU(blockSize);
        w.VarU(fragmentCount);
        return w.ToArray();
    }

    private async Task<(byte[] A, byte[] B, byte[] Delta)> GzipFormat3DeltaAsync()
    {
        var variant = DeltaImages.Variants.Single(v => v.Name == "gzip");
        var a = await _images.ReadImageAsync("A", variant);
        var b = await _images.ReadImageAsync("B", variant);
        var (delta, result) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { Level = DeltaLevel.Fast, MaxParallelism = 2 });
        Assert.Equal(1, result.Statistics.MetadataTablesDerived);
        return (a, b, delta);
    }

    /// <summary>The delta's sections under <paramref name="header"/>, the metadata section's payload passed through <paramref name="metadata"/>.</summary>
    private static async Task<byte[]> RebuildAsync(byte[] delta, DeltaHeader header, Func<byte[], byte[]> metadata)
    {
        var sections = (await DeltaTestKit.SectionsAsync(delta))
            .Select(s => (s.Kind, s.Kind == SectionKind.Metadata ? metadata(s.Payload) : s.Payload))
            .Append((SectionKind.End, HostileDeltaTests.End(header.TargetSize)));
        return HostileDeltaTests.Build(header, [.. sections]);
    }
}
