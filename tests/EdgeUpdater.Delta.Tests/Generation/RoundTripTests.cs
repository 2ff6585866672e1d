using System.Buffers.Binary;
using EdgeUpdater.SquashFs.Metadata;
using EdgeUpdater.SquashFs.Reader;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Delta.Tests.Generation;

/// <summary>
/// Byte-exact round trips on mksquashfs pairs with every kind of change, for each compressor, several
/// block sizes, fragments on and off, both levels, and across compressors; plus the generic mode.
/// </summary>
[Collection(DeltaImagesGroup.Name)]
public sealed class RoundTripTests
{
    private readonly DeltaImages _images;
    private readonly ITestOutputHelper _output;

    public RoundTripTests(DeltaImages images, ITestOutputHelper output)
    {
        _images = images;
        _output = output;
    }

    public static TheoryData<string, DeltaLevel> VariantsAndLevels()
    {
        var data = new TheoryData<string, DeltaLevel>();
        foreach (var variant in DeltaImages.Variants)
        {
            data.Add(variant.Name, DeltaLevel.Fast);
            data.Add(variant.Name, DeltaLevel.Best);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(VariantsAndLevels))]
    public async Task Every_kind_of_change_round_trips_byte_for_byte(string variantName, DeltaLevel level)
    {
        var variant = DeltaImages.Variants.Single(v => v.Name == variantName);
        var a = await _images.ReadImageAsync("A", variant);
        var b = await _images.ReadImageAsync("B", variant);
        var (delta, result) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { Level = level, MaxParallelism = 2 });
        Assert.Equal(DeltaMode.SquashFs, result.Header.Mode);
        DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(a, delta));
        var s = result.Statistics;
        _output.WriteLine($"{variantName} {level}: A {a.Length}, B {b.Length}, delta {delta.Length}; copied {s.CopiedBytes}, rebuilt {s.RebuiltBytes} ({s.RecompressedBlocks} recompressed, {s.IrreproducibleBlocks} irreproducible), literal {s.LiteralBytes}, metadata blocks {s.MetadataBlocksRecompressed} recompressed / {s.MetadataBlocksLiteral} literal");
        Assert.Equal(delta.Length, s.DeltaBytes);
        Assert.True(s.CopiedBytes > 0, "unchanged blocks are copied");
        Assert.Equal(0, s.IrreproducibleBlocks);
        Assert.Equal(0, s.MetadataBlocksLiteral);
        Assert.True(delta.Length < (level == DeltaLevel.Best ? b.Length / 2 : b.Length * 3 / 4), $"delta of {delta.Length} bytes for an image of {b.Length}");
        if (level == DeltaLevel.Fast)
        {
            // Fast rebuilds blocks only in a small update (at most four changed); gzip's A to B changes 13.
            Assert.InRange(s.RecompressedBlocks, 0, 4);
            if (variantName == "gzip")
            {
                Assert.Equal(0, s.RecompressedBlocks);
            }
        }
    }

    [Theory]
    [MemberData(nameof(VariantsAndLevels))]
    public async Task A_one_line_edit_costs_little(string variantName, DeltaLevel level)
    {
        var variant = DeltaImages.Variants.Single(v => v.Name == variantName);
        var b = await _images.ReadImageAsync("B", variant);
        var c = await _images.ReadImageAsync("C", variant);
        var (delta, result) = await DeltaTestKit.GenerateAsync(b, c, new DeltaGeneratorOptions { Level = level, MaxParallelism = 2 });
        DeltaTestKit.AssertSameImage(c, await DeltaTestKit.ApplyAsync(b, delta));
        _output.WriteLine($"{variantName} {level}: B to C delta {delta.Length} bytes, {result.Statistics.RecompressedBlocks} blocks recompressed");
        // Both levels rebuild a small update's blocks from their content exactly when their stored bytes patch
        // badly (fast took 37,636 bytes on xz when it patched them), and send the patch when it is small.
        var compressedStorage = !variant.Arguments.Contains("-noD");
        if (compressedStorage)
        {
            Assert.True(delta.Length < 2500, $"a one-line edit costs {delta.Length} bytes");
        }

        // LZ4's stored bytes patch well, and uncompressed blocks have nothing to rebuild.
        var rebuilt = compressedStorage && variant.Compressor != "lz4";
        Assert.InRange(result.Statistics.RecompressedBlocks, rebuilt ? 1 : 0, rebuilt ? 4 : 0);
    }

    [Theory]
    [InlineData("gzip", "zstd-1m")]
    [InlineData("xz", "lz4")]
    [InlineData("zstd-1m", "gzip-uncompressed")]
    public async Task Pairs_with_different_compressors_round_trip(string oldVariant, string newVariant)
    {
        var a = await _images.ReadImageAsync("A", DeltaImages.Variants.Single(v => v.Name == oldVariant));
        var b = await _images.ReadImageAsync("B", DeltaImages.Variants.Single(v => v.Name == newVariant));
        foreach (var level in new[] { DeltaLevel.Fast, DeltaLevel.Best })
        {
            var (delta, _) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { Level = level, MaxParallelism = 2 });
            DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(a, delta));
        }
    }

    [Theory]
    [InlineData("gzip", true)]
    [InlineData("xz", true)]
    [InlineData("zstd", false)]
    [InlineData("lz4", true)]
    public async Task Images_from_our_writer_round_trip(string compressor, bool fragments)
    {
        var a = await File.ReadAllBytesAsync(await _images.GetWriterImageAsync("A", compressor, fragments));
        var b = await File.ReadAllBytesAsync(await _images.GetWriterImageAsync("B", compressor, fragments));
        var c = await File.ReadAllBytesAsync(await _images.GetWriterImageAsync("C", compressor, fragments));
        foreach (var level in new[] { DeltaLevel.Fast, DeltaLevel.Best })
        {
            var (ab, result) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { Level = level, MaxParallelism = 2 });
            Assert.Equal(DeltaMode.SquashFs, result.Header.Mode);
            DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(a, ab));
            var (bc, _) = await DeltaTestKit.GenerateAsync(b, c, new DeltaGeneratorOptions { Level = level, MaxParallelism = 2 });
            DeltaTestKit.AssertSameImage(c, await DeltaTestKit.ApplyAsync(b, bc));
            _output.WriteLine($"writer {compressor} fragments={fragments} {level}: A to B {ab.Length} bytes, B to C {bc.Length} bytes; irreproducible {result.Statistics.IrreproducibleBlocks}, metadata literal {result.Statistics.MetadataBlocksLiteral}");
        }
    }

    [Fact]
    public async Task Images_from_mksquashfs_and_from_our_writer_mix()
    {
        var a = await _images.ReadImageAsync("A", DeltaImages.Variants.Single(v => v.Name == "xz"));
        var b = await File.ReadAllBytesAsync(await _images.GetWriterImageAsync("B", "xz"));
        var (delta, _) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { MaxParallelism = 2 });
        DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(a, delta));
        var (back, _) = await DeltaTestKit.GenerateAsync(b, a, new DeltaGeneratorOptions { Level = DeltaLevel.Fast, MaxParallelism = 2 });
        DeltaTestKit.AssertSameImage(a, await DeltaTestKit.ApplyAsync(b, back));
    }

    [Fact]
    public async Task Lzo_images_which_cannot_be_recompressed_round_trip_with_literals()
    {
        var lzo = new ImageVariant("lzo", "lzo");
        var a = await _images.ReadImageAsync("A", lzo);
        var b = await _images.ReadImageAsync("B", lzo);
        foreach (var level in new[] { DeltaLevel.Fast, DeltaLevel.Best })
        {
            var (delta, result) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { Level = level, MaxParallelism = 2 });
            Assert.False(result.Header.UsesRecompression);
            Assert.Equal(0, result.Statistics.RecompressedBlocks);
            DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(a, delta));
        }
    }

    [Fact]
    public async Task Known_image_hashes_give_the_same_delta()
    {
        var variant = DeltaImages.Variants.Single(v => v.Name == "zstd-1m");
        var b = await _images.ReadImageAsync("B", variant);
        var c = await _images.ReadImageAsync("C", variant);
        var (computed, _) = await DeltaTestKit.GenerateAsync(b, c);
        var (given, _) = await DeltaTestKit.GenerateAsync(b, c, new DeltaGeneratorOptions
        {
            MaxParallelism = 2,
            OldImageSha256 = System.Security.Cryptography.SHA256.HashData(b),
            NewImageSha256 = System.Security.Cryptography.SHA256.HashData(c),
        });
        Assert.Equal(computed, given);
    }

    [Theory]
    [InlineData(DeltaLevel.Fast)]
    [InlineData(DeltaLevel.Best)]
    public async Task Mapped_files_positional_reads_and_memory_give_the_same_delta(DeltaLevel level)
    {
        // Paths are mapped (blocks hashed in place), FileImageSource reads with pread, memory hands out spans.
        var variant = DeltaImages.Variants.Single(v => v.Name == "xz");
        var aPath = await _images.GetImageAsync("A", variant);
        var bPath = await _images.GetImageAsync("B", variant);
        var options = new DeltaGeneratorOptions { Level = level, MaxParallelism = 2 };
        using var fromPaths = new MemoryStream();
        await DeltaGenerator.GenerateAsync(aPath, bPath, fromPaths, options);
        using var fromReads = new MemoryStream();
        using (var a = new SquashFs.IO.FileImageSource(aPath))
        using (var b = new SquashFs.IO.FileImageSource(bPath))
        {
            await DeltaGenerator.GenerateAsync(a, b, fromReads, options);
        }

        var (inMemory, _) = await DeltaTestKit.GenerateAsync(await File.ReadAllBytesAsync(aPath), await File.ReadAllBytesAsync(bPath), options);
        Assert.Equal(fromReads.ToArray(), fromPaths.ToArray());
        Assert.Equal(inMemory, fromPaths.ToArray());
    }

    [Theory]
    [InlineData("gzip-4k-no-fragments", DeltaLevel.Fast, false)]
    [InlineData("xz", DeltaLevel.Best, false)]
    [InlineData("zstd-1m", DeltaLevel.Fast, true)]
    public async Task The_delta_does_not_depend_on_how_many_workers_encode_it(string variantName, DeltaLevel level, bool generic)
    {
        // One worker reuses its frame, reference and ops buffers for every group, larger and smaller ones in
        // turn; three share the groups out differently. Nothing a group leaves in a buffer may reach the next.
        var variant = DeltaImages.Variants.Single(v => v.Name == variantName);
        var a = await _images.ReadImageAsync("A", variant);
        var b = await _images.ReadImageAsync("B", variant);
        var (one, oneResult) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { Level = level, ForceGeneric = generic, MaxParallelism = 1 });
        var (three, _) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { Level = level, ForceGeneric = generic, MaxParallelism = 3 });
        Assert.True(oneResult.Statistics.OpsSectionBytes > 0);
        Assert.Equal(one, three);
        DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(a, one));
    }

    [Fact]
    public async Task One_worker_reuses_its_buffers_across_groups_of_different_sizes()
    {
        // 4 MiB of new bytes fill a group with an 8 MiB reference; 64 KiB shifted by an insertion further on
        // make a group with a 1 MiB reference that the patch copies from.
        // A worker that kept the larger group's reference length, content or ops would break the later group.
        var random = new Random(11);
        var a = new byte[20 << 20];
        random.NextBytes(a);
        var b = a.ToArray();
        random.NextBytes(b.AsSpan(2 << 20, 4 << 20));
        random.NextBytes(b.AsSpan(16 << 20, 100));
        a.AsSpan(16 << 20, (64 << 10) - 100).CopyTo(b.AsSpan((16 << 20) + 100));
        var options = new DeltaGeneratorOptions { Level = DeltaLevel.Fast, MaxParallelism = 1 };
        var (one, _) = await DeltaTestKit.GenerateAsync(a, b, options);
        var (three, _) = await DeltaTestKit.GenerateAsync(a, b, options with { MaxParallelism = 3 });
        Assert.Equal(one, three);
        DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(a, one));
    }

    [Fact]
    public async Task Identical_images_cost_almost_nothing()
    {
        var a = await _images.ReadImageAsync("A", DeltaImages.Variants[0]);
        var (delta, result) = await DeltaTestKit.GenerateAsync(a, a);
        DeltaTestKit.AssertSameImage(a, await DeltaTestKit.ApplyAsync(a, delta));
        Assert.True(delta.Length < 600, $"an identical image costs {delta.Length} bytes");
        Assert.Equal(0, result.Statistics.RebuiltBytes);
    }

    [Fact]
    public async Task Without_the_device_codec_blocks_and_metadata_are_sent_literally()
    {
        var variant = DeltaImages.Variants.Single(v => v.Name == "xz");
        var b = await _images.ReadImageAsync("B", variant);
        var c = await _images.ReadImageAsync("C", variant);
        var (delta, result) = await DeltaTestKit.GenerateAsync(b, c, new DeltaGeneratorOptions { DeviceCodecs = ["xz/0.0.1"], MaxParallelism = 2 });
        Assert.False(result.Header.UsesRecompression);
        Assert.Equal("", result.Header.CodecIdentity);
        Assert.Equal(0, result.Statistics.RecompressedBlocks);
        Assert.Equal(0, result.Statistics.MetadataBlocksRecompressed);
        DeltaTestKit.AssertSameImage(c, await DeltaTestKit.ApplyAsync(b, delta));
    }

    [Theory]
    [InlineData(DeltaLevel.Fast)]
    [InlineData(DeltaLevel.Best)]
    public async Task A_base_whose_export_table_is_damaged_costs_only_that_table(DeltaLevel level)
    {
        var variant = DeltaImages.Variants.Single(v => v.Name == "gzip");
        var a = await _images.ReadImageAsync("A", variant);
        var b = await _images.ReadImageAsync("B", variant);
        var options = new DeltaGeneratorOptions { Level = level, MaxParallelism = 2 };
        var (intact, _) = await DeltaTestKit.GenerateAsync(a, b, options);
        var exportIndex = (int)BinaryPrimitives.ReadUInt64LittleEndian(a.AsSpan(88));
        var exportBlock = (int)BinaryPrimitives.ReadUInt64LittleEndian(a.AsSpan(exportIndex));
        a.AsSpan(exportBlock + 2, 16).Fill(0xA5);
        var (delta, result) = await DeltaTestKit.GenerateAsync(a, b, options);
        Assert.Equal(DeltaMode.SquashFs, result.Header.Mode);
        Assert.True(result.Statistics.MetadataBytes > 0);
        Assert.True(delta.Length < intact.Length + 4096, $"{delta.Length} bytes against {intact.Length} with the table intact");
        DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(a, delta));
    }

    [Theory]
    [InlineData(DeltaLevel.Fast)]
    [InlineData(DeltaLevel.Best)]
    public async Task A_new_image_whose_tables_overlap_gets_its_metadata_region_patched_as_stored_bytes(DeltaLevel level)
    {
        // 4,000 files, one of them edited in place (same length): B's metadata blocks are A's but the fragment
        // table's, moved by the one fragment block that changed size. B's export index then points at its fragment index: two tables claim the
        // same blocks, a layout the metadata section cannot describe. The data area is still patched against
        // A, and the region's stored bytes against A's region: sent literally, it cost its whole size.
        using var temp = new TempDirectory("delta-overlap");
        var tree = temp.Combine("tree");
        for (var i = 0; i < 4000; i++)
        {
            var directory = Path.Combine(tree, $"package-{i / 250:D2}");
            Directory.CreateDirectory(directory);
            await File.WriteAllTextAsync(Path.Combine(directory, $"configuration-file-{i:D5}.conf"), $"setting {i} = {i * 7919 % 1000}\n");
        }

        string[] options = ["-comp", "gzip", "-noappend", "-no-progress", "-quiet", "-all-time", "1700000000", "-mkfs-time", "1700000000"];
        await ExternalTool.RunCheckedAsync("mksquashfs", [tree, temp.Combine("a.sqfs"), .. options]);
        await File.WriteAllTextAsync(Path.Combine(tree, "package-07", "configuration-file-01900.conf"), "setting 1900 = 999\n");
        await ExternalTool.RunCheckedAsync("mksquashfs", [tree, temp.Combine("b.sqfs"), .. options]);
        var a = await File.ReadAllBytesAsync(temp.Combine("a.sqfs"));
        var intact = await File.ReadAllBytesAsync(temp.Combine("b.sqfs"));
        var b = intact.ToArray();
        b.AsSpan(80, 8).CopyTo(b.AsSpan(88));
        var generator = new DeltaGeneratorOptions { Level = level, MaxParallelism = 2 };
        var (delta, result) = await DeltaTestKit.GenerateAsync(a, b, generator);
        Assert.Equal(DeltaMode.SquashFs, result.Header.Mode);
        Assert.Equal(0, result.Statistics.MetadataBytes);
        DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(a, delta));

        var region = (long)BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(40)) - (long)BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(64));
        var (described, _) = await DeltaTestKit.GenerateAsync(a, intact, generator);
        _output.WriteLine($"{level}: metadata region {region} bytes; delta {delta.Length}, with the tables intact {described.Length}");
        Assert.True(region > 30_000, $"a metadata region of only {region} bytes");
        Assert.True(result.Statistics.RebuiltBytes >= region, $"rebuilt {result.Statistics.RebuiltBytes} < metadata region {region}");
        Assert.True(delta.Length < described.Length + (region / 8), $"{delta.Length} bytes against {described.Length} with the tables intact (region {region})");
    }

    [Theory]
    [InlineData(DeltaLevel.Fast)]
    [InlineData(DeltaLevel.Best)]
    public async Task Tables_over_the_budget_go_as_stored_bytes_patched_against_the_old_images(DeltaLevel level)
    {
        // A device holds about 3 times an image's decompressed tables while it decodes a metadata section. When
        // either image's tables exceed the budget, the region's stored bytes are patched against the old image's
        // instead, which the device streams. From A to B and back: the larger tables are once new, once old.
        var variant = DeltaImages.Variants.Single(v => v.Name == "gzip");
        var tables = new Dictionary<string, long>();
        foreach (var name in new[] { "A", "B" })
        {
            using var image = SquashFsImage.Open(await _images.GetImageAsync(name, variant));
            tables[name] = image.ReadAllMetadataTables().Where(t => t.Kind != MetadataTableKind.CompressorOptions).Sum(t => (long)t.Data.Length);
        }

        Assert.NotEqual(tables["A"], tables["B"]);
        foreach (var (from, to) in new[] { ("A", "B"), ("B", "A") })
        {
            var old = await _images.ReadImageAsync(from, variant);
            var @new = await _images.ReadImageAsync(to, variant);
            var largest = Math.Max(tables[from], tables[to]);
            var (within, withinResult) = await DeltaTestKit.GenerateAsync(old, @new, new DeltaGeneratorOptions { Level = level, MaxParallelism = 2, MaxMetadataTableBytes = largest });
            Assert.True(withinResult.Statistics.MetadataBytes > 0, $"{from} to {to}: tables at the budget lost their metadata section");
            DeltaTestKit.AssertSameImage(@new, await DeltaTestKit.ApplyAsync(old, within));

            var (over, result) = await DeltaTestKit.GenerateAsync(old, @new, new DeltaGeneratorOptions { Level = level, MaxParallelism = 2, MaxMetadataTableBytes = largest - 1 });
            _output.WriteLine($"{level}, {from} to {to}: tables {tables[from]} and {tables[to]}; {within.Length} bytes with the section, {over.Length} without");
            var region = (long)BinaryPrimitives.ReadUInt64LittleEndian(@new.AsSpan(40)) - (long)BinaryPrimitives.ReadUInt64LittleEndian(@new.AsSpan(64));
            Assert.Equal(DeltaMode.SquashFs, result.Header.Mode);
            Assert.Equal(0, result.Statistics.MetadataBytes);
            Assert.True(result.Statistics.RebuiltBytes >= region, $"{from} to {to}: rebuilt {result.Statistics.RebuiltBytes} < metadata region {region}");
            DeltaTestKit.AssertSameImage(@new, await DeltaTestKit.ApplyAsync(old, over));
        }
    }

    [Fact]
    public async Task A_negative_table_budget_is_refused()
    {
        var e = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => DeltaTestKit.GenerateAsync(Apply.HostileDeltaTests.Base, Apply.HostileDeltaTests.Target, new DeltaGeneratorOptions { MaxMetadataTableBytes = -1 }));
        Assert.Contains("metadata table budget", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Generic_mode_round_trips_any_bytes()
    {
        var random = new Random(7);
        var a = new byte[3 << 20];
        random.NextBytes(a);
        var b = new byte[(3 << 20) + 12345];
        a.AsSpan(0, 1 << 20).CopyTo(b);
        random.NextBytes(b.AsSpan(1 << 20, 5000));
        a.AsSpan((1 << 20) + 100, (2 << 20) - 100).CopyTo(b.AsSpan((1 << 20) + 5000));
        foreach (var level in new[] { DeltaLevel.Fast, DeltaLevel.Best })
        {
            var (delta, result) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { Level = level, MaxParallelism = 2 });
            Assert.Equal(DeltaMode.Generic, result.Header.Mode);
            DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(a, delta));
            Assert.True(delta.Length < 40_000, $"generic delta of {delta.Length} bytes");
        }

        var (empty, _) = await DeltaTestKit.GenerateAsync([], b);
        DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync([], empty));
        var (toEmpty, _) = await DeltaTestKit.GenerateAsync(a, []);
        DeltaTestKit.AssertSameImage([], await DeltaTestKit.ApplyAsync(a, toEmpty));
    }

    [Theory]
    [InlineData(2 << 20)]
    [InlineData((2 << 20) + (300 << 10))]
    public async Task Generic_mode_finds_content_shifted_by_an_insertion_wherever_it_starts(int at)
    {
        // 100 bytes inserted at `at` and 100 removed 64 KiB later: that run's chunks moved, the rest did not.
        // Its reference window must cover the old bytes even when the run starts on a 1 MiB boundary.
        var random = new Random(5);
        var a = new byte[6 << 20];
        random.NextBytes(a);
        var b = a.ToArray();
        random.NextBytes(b.AsSpan(at, 100));
        a.AsSpan(at, (64 << 10) - 100).CopyTo(b.AsSpan(at + 100));
        var (delta, _) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { Level = DeltaLevel.Fast, MaxParallelism = 2 });
        DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(a, delta));
        Assert.True(delta.Length < 4096, $"64 KiB of shifted content cost {delta.Length} bytes");
    }

    [Fact]
    public async Task Forced_generic_mode_round_trips_squashfs_images()
    {
        var variant = DeltaImages.Variants.Single(v => v.Name == "gzip");
        var a = await _images.ReadImageAsync("A", variant);
        var b = await _images.ReadImageAsync("B", variant);
        var (delta, result) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { ForceGeneric = true, MaxParallelism = 2 });
        Assert.Equal(DeltaMode.Generic, result.Header.Mode);
        DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(a, delta));
    }

    [Fact]
    public async Task The_codec_identities_name_library_versions()
    {
        var identities = DeltaCodecs.LocalIdentities();
        Assert.Contains(identities, i => i.StartsWith("xz/", StringComparison.Ordinal));
        Assert.Contains(identities, i => i.StartsWith("zlib/", StringComparison.Ordinal));
        Assert.All(identities, i => Assert.Matches(@"^[a-z0-9]+/\d+\.\d+", i));
        Assert.Equal(identities, DeltaCodecs.Parse(DeltaCodecs.LocalIdentitiesQuery()));
        await Task.CompletedTask;
    }
}
