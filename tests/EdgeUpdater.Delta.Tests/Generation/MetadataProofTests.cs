using System.Diagnostics;
using EdgeUpdater.Delta.Metadata;
using EdgeUpdater.SquashFs.Metadata;
using EdgeUpdater.SquashFs.Reader;
using Xunit;

namespace EdgeUpdater.Delta.Tests.Generation;

/// <summary>
/// The generator's proof of how the device rebuilds the new image's metadata blocks: on xz, a block that replays
/// from its LZMA decisions has liblzma's proof put off until its table is to be recompressed after all, and no
/// one may ask whether liblzma reproduces it before that proof has run.
/// </summary>
public sealed class MetadataProofTests(DeltaImages images) : IClassFixture<DeltaImages>
{
    [Fact]
    public async Task A_block_that_replays_is_proved_by_its_codec_only_when_asked()
    {
        using var image = SquashFsImage.Open(await images.GetImageAsync(images.TreeB, Xz));
        var offsets = CompressedBlocks(image);
        var record = new ReproductionRecord();

        var proof = MetadataProof.Run(image, 2, record, withCodec: true, recordDecisions: true);

        Assert.True(offsets.Count >= 3, $"only {offsets.Count} compressed metadata blocks");
        foreach (var offset in offsets)
        {
            // mksquashfs's xz metadata blocks all replay (LzmaDecisionsTests): none was given to liblzma.
            Assert.True(proof.TryGetRecord(offset, out var decisions) && decisions.Length > 2, $"block at {offset} has no decisions");
            Assert.False(record.TryGet(offset, out _), $"block at {offset} was proved by liblzma although it replays");
            Assert.Throws<UnreachableException>(() => proof.Reproduces(offset));
        }

        proof.EnsureProven(offsets);

        foreach (var offset in offsets)
        {
            Assert.True(proof.Reproduces(offset), $"liblzma does not reproduce the block at {offset}");
            Assert.True(record.TryGet(offset, out var reproduces) && reproduces);
        }

        Assert.Equal(0, proof.Recalled);
    }

    [Fact]
    public async Task Without_decisions_every_block_is_proved_at_once_and_recorded()
    {
        using var image = SquashFsImage.Open(await images.GetImageAsync(images.TreeB, Xz));
        var offsets = CompressedBlocks(image);
        var record = new ReproductionRecord();

        var proof = MetadataProof.Run(image, 2, record, withCodec: true, recordDecisions: false);

        Assert.All(offsets, offset => Assert.True(proof.Reproduces(offset)));
        Assert.All(offsets, offset => Assert.False(proof.TryGetRecord(offset, out _)));
        Assert.Equal(offsets.Count, record.Count);
    }

    [Fact]
    public async Task A_recorded_outcome_is_recalled_and_the_decisions_are_still_recorded()
    {
        using var image = SquashFsImage.Open(await images.GetImageAsync(images.TreeB, Xz));
        var offsets = CompressedBlocks(image);
        var record = new ReproductionRecord();
        foreach (var offset in offsets)
        {
            // Says the opposite of the truth, so that a recomputed outcome would show.
            record.Set(offset, false);
        }

        var proof = MetadataProof.Run(image, 2, record, withCodec: true, recordDecisions: true);

        Assert.Equal(offsets.Count, proof.Recalled);
        Assert.All(offsets, offset => Assert.False(proof.Reproduces(offset)));
        Assert.All(offsets, offset => Assert.True(proof.TryGetRecord(offset, out _)));
    }

    [Fact]
    public async Task Without_a_codec_nothing_is_proved_and_the_decisions_are_recorded()
    {
        using var image = SquashFsImage.Open(await images.GetImageAsync(images.TreeB, Xz));
        var offsets = CompressedBlocks(image);

        var proof = MetadataProof.Run(image, 2, null, withCodec: false, recordDecisions: true);
        proof.EnsureProven(offsets);

        Assert.All(offsets, offset => Assert.False(proof.Reproduces(offset)));
        Assert.All(offsets, offset => Assert.True(proof.TryGetRecord(offset, out _)));
    }

    private static ImageVariant Xz => DeltaImages.Variants.Single(v => v.Name == "xz");

    private static List<long> CompressedBlocks(SquashFsImage image) =>
        [.. image.ReadAllMetadataTables().Where(t => t.Kind != MetadataTableKind.CompressorOptions).SelectMany(t => t.Blocks).Where(b => b.IsCompressed).Select(b => b.Offset)];
}
