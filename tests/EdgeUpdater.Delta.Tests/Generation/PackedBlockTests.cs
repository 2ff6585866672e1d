using EdgeUpdater.Delta.Format;
using EdgeUpdater.Delta.Generation;
using EdgeUpdater.Delta.Patching;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Delta.Tests.Generation;

/// <summary>
/// At the fast level, blocks that have nothing in A to be patched against and that their compressor shrank
/// to about a third or less go as their stored bytes into zstd frames of their own, which find the short
/// repeats the compressor left; the device only decodes them. Not for xz images (nothing is left). zstd
/// images are packed too (the Debian pair's fast delta: 8 KB smaller), but this synthetic table leaves
/// nothing in mksquashfs's zstd blocks; their round trips are covered with every other variant. Deflate's
/// blocks are packed with zstd's optimal parser, the others' with the lazy one.
/// </summary>
public sealed class PackedBlockTests
{
    [Theory]
    [InlineData("gzip")]
    [InlineData("lz4")]
    [InlineData("xz")]
    public async Task Well_compressed_new_blocks_are_packed_and_round_trip(string compressor)
    {
        using var temp = new TempDirectory("delta-packed");
        var (a, b) = await MakePairAsync(temp, compressor);

        var (delta, result) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { Level = DeltaLevel.Fast, MaxParallelism = 2 });

        DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(a, delta));
        Assert.Equal(0, result.Statistics.RecompressedBlocks);
        // Pack frames: zstd frames without reference items.
        var frames = (await DeltaTestKit.FramesAsync(delta)).Where(f => f.Head.Coder == FrameCoder.Zstd && f.Head.Items.Count == 0).ToList();
        if (compressor == "xz")
        {
            Assert.Equal(0, result.Statistics.PackedBlocks);
            Assert.Empty(frames);
        }
        else
        {
            Assert.True(result.Statistics.PackedBlocks > 0, $"no block packed; {result.Statistics.LiteralBytes} literal bytes");
            Assert.NotEmpty(frames);
        }

        // Deflate's blocks get the optimal parser, the others the lazy one: each frame is what that coder makes of its content.
        using var patcher = new ZstdPatcher();
        foreach (var (head, frame) in frames)
        {
            var content = new byte[head.ContentLength];
            patcher.Decode([], frame, content, "pack frame");
            Assert.Equal(frame, patcher.Pack(content, optimal: compressor == "gzip").ToArray());
        }
    }

    /// <summary>
    /// A: one config file; B: A plus two 1 MiB tables (<see cref="DeltaImages.Records"/>), which every
    /// compressor shrinks to well under a third.
    /// </summary>
    private static async Task<(byte[] A, byte[] B)> MakePairAsync(TempDirectory temp, string compressor)
    {
        var b = await DeltaTestKit.StartPairAsync(temp);
        Directory.CreateDirectory(Path.Combine(b, "usr", "lib"));
        await File.WriteAllBytesAsync(Path.Combine(b, "usr", "lib", "table-1.bin"), DeltaImages.Records(1 << 20, 3, changes: 1));
        await File.WriteAllBytesAsync(Path.Combine(b, "usr", "lib", "table-2.bin"), DeltaImages.Records(1 << 20, 4, changes: 2));
        return await DeltaTestKit.SquashPairAsync(temp, compressor);
    }
}
