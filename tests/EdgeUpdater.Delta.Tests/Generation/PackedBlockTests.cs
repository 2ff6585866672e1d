using EdgeUpdater.Delta.Format;
using EdgeUpdater.Delta.Generation;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Delta.Tests.Generation;

/// <summary>
/// At the fast level, blocks that have nothing in A to be patched against and that their compressor shrank
/// to about a third or less go as their stored bytes into zstd frames of their own, which find the short
/// repeats the compressor left; the device only decodes them. Not for xz images (nothing is left). zstd
/// images are packed too (the Debian pair's fast delta: 14 KB smaller), but this synthetic table leaves
/// nothing in mksquashfs's zstd blocks; their round trips are covered with every other variant.
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
        var frames = await ReferenceFreeFramesAsync(delta);
        if (compressor == "xz")
        {
            Assert.Equal(0, result.Statistics.PackedBlocks);
            Assert.Equal(0, frames);
        }
        else
        {
            Assert.True(result.Statistics.PackedBlocks > 0, $"no block packed; {result.Statistics.LiteralBytes} literal bytes");
            Assert.True(frames > 0);
        }
    }

    /// <summary>
    /// A: one config file; B: A plus two 1 MiB tables (<see cref="DeltaImages.Records"/>), which every
    /// compressor shrinks to well under a third.
    /// </summary>
    private static async Task<(byte[] A, byte[] B)> MakePairAsync(TempDirectory temp, string compressor)
    {
        var a = temp.Combine("A");
        Directory.CreateDirectory(Path.Combine(a, "etc"));
        await File.WriteAllBytesAsync(Path.Combine(a, "etc", "base.conf"), DeltaImages.Text(20_000, 1));
        var b = temp.Combine("B");
        await ExternalTool.RunCheckedAsync("cp", ["-a", a, b]);
        Directory.CreateDirectory(Path.Combine(b, "usr", "lib"));
        await File.WriteAllBytesAsync(Path.Combine(b, "usr", "lib", "table-1.bin"), DeltaImages.Records(1 << 20, 3, changes: 1));
        await File.WriteAllBytesAsync(Path.Combine(b, "usr", "lib", "table-2.bin"), DeltaImages.Records(1 << 20, 4, changes: 2));
        foreach (var tree in new[] { "A", "B" })
        {
            await ExternalTool.RunCheckedAsync("mksquashfs", [temp.Combine(tree), temp.Combine(tree + ".sqfs"), "-comp", compressor, "-noappend", "-no-progress", "-quiet", "-processors", "2", "-mkfs-time", "1600000000", "-all-time", "1600000000"], TimeSpan.FromMinutes(1));
        }

        return (await File.ReadAllBytesAsync(temp.Combine("A.sqfs")), await File.ReadAllBytesAsync(temp.Combine("B.sqfs")));
    }

    /// <summary>How many of the delta's content frames are zstd frames without a reference (packed blocks).</summary>
    private static async Task<int> ReferenceFreeFramesAsync(byte[] delta)
    {
        var stream = new MemoryStream(delta);
        var (header, length) = await DeltaHeader.ReadAsync(stream, CancellationToken.None);
        using var reader = new SectionReader(stream, length);
        var count = 0;
        while (true)
        {
            var section = await reader.ReadAsync(CancellationToken.None);
            if (section.Kind == SectionKind.End)
            {
                return count;
            }

            if (section.Kind == SectionKind.Content)
            {
                var bytes = new ByteReader(section.Payload.AsSpan(0, section.Length), "content section");
                var head = ContentFrame.ReadHead(ref bytes, header.Version, header.BaseSize, header.BlockSize);
                count += head.Coder == FrameCoder.Zstd && head.Items.Count == 0 ? 1 : 0;
            }
        }
    }
}
