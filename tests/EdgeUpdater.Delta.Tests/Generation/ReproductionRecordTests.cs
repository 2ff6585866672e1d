using System.Security.Cryptography;
using Xunit;

namespace EdgeUpdater.Delta.Tests.Generation;

/// <summary>
/// A <see cref="ReproductionRecord"/> lets later generations to the same image skip the recompression proofs
/// made before, without changing a byte of the delta; it is bound to the image and the codec, survives being
/// written and read, and a damaged one is refused with a precise error.
/// </summary>
[Collection(DeltaImagesGroup.Name)]
public sealed class ReproductionRecordTests
{
    private readonly DeltaImages _images;

    public ReproductionRecordTests(DeltaImages images)
    {
        _images = images;
    }

    [Theory]
    [InlineData("xz", DeltaLevel.Best)]
    [InlineData("gzip", DeltaLevel.Best)]
    // Not plain xz at fast: there every metadata block of B replays from its decisions, so none is proved.
    [InlineData("xz-64k-always-fragments", DeltaLevel.Fast)]
    public async Task Proofs_made_once_serve_later_generations_to_the_same_image(string variantName, DeltaLevel level)
    {
        var variant = DeltaImages.Variants.Single(v => v.Name == variantName);
        var a = await _images.ReadImageAsync("A", variant);
        var b = await _images.ReadImageAsync("B", variant);
        var c = await _images.ReadImageAsync("C", variant);
        var record = new ReproductionRecord();

        var (plain, plainResult) = await DeltaTestKit.GenerateAsync(a, b, Options(level, null));
        var (first, firstResult) = await DeltaTestKit.GenerateAsync(a, b, Options(level, record));
        Assert.Equal(plain, first);
        Assert.Equal(0, firstResult.Statistics.ProofsRecalled);
        var proven = plainResult.Statistics.MetadataBlocksRecompressed + (level == DeltaLevel.Best ? plainResult.Statistics.RecompressedBlocks : 0);
        Assert.True(proven > 0, "nothing recompressed: nothing to prove");
        Assert.True(record.Count >= proven, $"{record.Count} outcomes recorded, {proven} blocks recompressed");
        Assert.Equal(firstResult.Header.CodecIdentity, record.CodecIdentity);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(b)), record.ImageSha256);

        // Through its serialized form, like a server restart or the CLI's --reproduction-record.
        using var file = new MemoryStream();
        record.Write(file);
        var reread = ReproductionRecord.Read(file.ToArray());
        Assert.Equal(record.Count, reread.Count);

        var (again, againResult) = await DeltaTestKit.GenerateAsync(a, b, Options(level, reread));
        Assert.Equal(plain, again);
        Assert.True(againResult.Statistics.ProofsRecalled >= proven, $"{againResult.Statistics.ProofsRecalled} recalled, {proven} recompressed");

        // Another base, same target: same bytes as without the record, and it applies exactly.
        var (fromC, _) = await DeltaTestKit.GenerateAsync(c, b, Options(level, null));
        var (fromCWithRecord, fromCResult) = await DeltaTestKit.GenerateAsync(c, b, Options(level, reread));
        Assert.Equal(fromC, fromCWithRecord);
        Assert.True(fromCResult.Statistics.ProofsRecalled > 0);
        DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(c, fromCWithRecord));
    }

    [Fact]
    public async Task Concurrent_generations_to_one_image_share_a_record()
    {
        var variant = DeltaImages.Variants.Single(v => v.Name == "xz-64k-always-fragments");
        var a = await _images.ReadImageAsync("A", variant);
        var b = await _images.ReadImageAsync("B", variant);
        var c = await _images.ReadImageAsync("C", variant);
        var (fromA, _) = await DeltaTestKit.GenerateAsync(a, b, Options(DeltaLevel.Best, null));
        var (fromC, _) = await DeltaTestKit.GenerateAsync(c, b, Options(DeltaLevel.Best, null));

        var record = new ReproductionRecord();
        var runs = await Task.WhenAll(Enumerable.Range(0, 4).Select(i => Task.Run(() => DeltaTestKit.GenerateAsync(i % 2 == 0 ? a : c, b, Options(DeltaLevel.Best, record)))));
        for (var i = 0; i < runs.Length; i++)
        {
            Assert.Equal(i % 2 == 0 ? fromA : fromC, runs[i].Delta);
        }

        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(b)), record.ImageSha256);
        Assert.True(record.Count > 0);
    }

    [Fact]
    public async Task A_record_of_another_image_is_emptied_not_trusted()
    {
        var variant = DeltaImages.Variants.Single(v => v.Name == "xz");
        var a = await _images.ReadImageAsync("A", variant);
        var b = await _images.ReadImageAsync("B", variant);
        var c = await _images.ReadImageAsync("C", variant);
        var record = new ReproductionRecord();
        await DeltaTestKit.GenerateAsync(a, b, Options(DeltaLevel.Best, record));

        // Every outcome claimed false: had the record been kept for C, its blocks would go literally.
        foreach (var offset in record.Offsets.ToList())
        {
            record.Set(offset, false);
        }

        var (delta, result) = await DeltaTestKit.GenerateAsync(b, c, Options(DeltaLevel.Best, record));
        Assert.Equal(0, result.Statistics.ProofsRecalled);
        Assert.Equal(0, result.Statistics.IrreproducibleBlocks);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(c)), record.ImageSha256);
        DeltaTestKit.AssertSameImage(c, await DeltaTestKit.ApplyAsync(b, delta));
    }

    [Fact]
    public async Task Recorded_failures_send_blocks_literally_and_the_delta_stays_exact()
    {
        var variant = DeltaImages.Variants.Single(v => v.Name == "xz");
        var a = await _images.ReadImageAsync("A", variant);
        var b = await _images.ReadImageAsync("B", variant);
        var record = new ReproductionRecord();
        var (proven, provenResult) = await DeltaTestKit.GenerateAsync(a, b, Options(DeltaLevel.Best, record));
        Assert.Equal(record.Count, record.ReproducingCount);
        foreach (var offset in record.Offsets.ToList())
        {
            record.Set(offset, false);
        }

        Assert.Equal(0, record.ReproducingCount);

        var (delta, result) = await DeltaTestKit.GenerateAsync(a, b, Options(DeltaLevel.Best, record));
        Assert.Equal(provenResult.Statistics.RecompressedBlocks, result.Statistics.IrreproducibleBlocks);
        Assert.Equal(0, result.Statistics.RecompressedBlocks);
        Assert.Equal(0, result.Statistics.MetadataBlocksRecompressed);
        Assert.True(delta.Length > proven.Length);
        DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(a, delta));
    }

    [Fact]
    public async Task A_damaged_record_is_refused_with_a_precise_error()
    {
        var variant = DeltaImages.Variants.Single(v => v.Name == "gzip");
        var record = new ReproductionRecord();
        await DeltaTestKit.GenerateAsync(await _images.ReadImageAsync("A", variant), await _images.ReadImageAsync("B", variant), Options(DeltaLevel.Best, record));
        using var file = new MemoryStream();
        record.Write(file);
        var bytes = file.ToArray();

        for (var i = 0; i < bytes.Length; i++)
        {
            var damaged = (byte[])bytes.Clone();
            damaged[i] ^= 0x10;
            var e = Assert.Throws<DeltaException>(() => ReproductionRecord.Read(damaged));
            Assert.Contains("Reproduction record", e.Message, StringComparison.Ordinal);
        }

        for (var length = 0; length < bytes.Length; length += Math.Max(1, bytes.Length / 50))
        {
            Assert.Throws<DeltaException>(() => ReproductionRecord.Read(bytes.AsSpan(0, length)));
        }

        var newer = (byte[])bytes.Clone();
        newer[4] = 2;
        Assert.Equal(DeltaErrorCategory.UnsupportedVersion, Assert.Throws<DeltaException>(() => ReproductionRecord.Read(newer)).Category);
    }

    private static DeltaGeneratorOptions Options(DeltaLevel level, ReproductionRecord? record) =>
        new() { Level = level, MaxParallelism = 2, Reproduction = record };
}
