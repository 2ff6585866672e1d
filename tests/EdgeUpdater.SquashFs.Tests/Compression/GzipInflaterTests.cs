using EdgeUpdater.SquashFs.Compression;
using EdgeUpdater.SquashFs.Reader;
using Xunit;

namespace EdgeUpdater.SquashFs.Tests.Compression;

/// <summary>gzip blocks read through libdeflate (when installed) and through zlib give the same bytes and the same refusals.</summary>
[Collection(MksquashfsImagesGroup.Name)]
public sealed class GzipInflaterTests
{
    private readonly MksquashfsImages _images;

    public GzipInflaterTests(MksquashfsImages images)
    {
        _images = images;
    }

    [Theory]
    [InlineData("gzip")]
    [InlineData("gzip-level1-4k")]
    [InlineData("gzip-strategies")]
    public async Task Libdeflate_and_zlib_inflate_every_block_to_the_same_bytes(string variantName)
    {
        var variant = MksquashfsImages.Variants.Single(v => v.Name == variantName);
        using var image = SquashFsImage.Open(await _images.GetImageAsync(variant));
        using var fast = new GzipCodec(image.CompressorOptions, (uint)image.BlockSize, CodecRole.Data);
        using var zlib = new GzipCodec(image.CompressorOptions, (uint)image.BlockSize, CodecRole.Data, useLibdeflate: false);
        // scripts/lib/deps.sh installs libdeflate0: here the fast path must be the one taken.
        Assert.True(fast.UsesLibdeflate, "libdeflate.so.0 is not installed");
        Assert.False(zlib.UsesLibdeflate);

        var raw = new byte[image.BlockSize];
        var a = new byte[image.BlockSize];
        var b = new byte[image.BlockSize];
        var blocks = 0;
        foreach (var block in image.EnumerateStoredBlocks().Where(block => block.IsCompressed))
        {
            var stored = raw.AsSpan(0, (int)block.StoredSize);
            image.ReadStoredBytes(block.Offset, stored);
            var lengthA = fast.Decompress(stored, a);
            var lengthB = zlib.Decompress(stored, b);
            Assert.Equal(lengthB, lengthA);
            Assert.True(a.AsSpan(0, lengthA).SequenceEqual(b.AsSpan(0, lengthB)), $"{block.Kind} block at {block.Offset}");
            blocks++;
        }

        Assert.True(blocks > 0);
    }

    [Theory]
    [InlineData("flipped")]
    [InlineData("truncated")]
    [InlineData("trailing")]
    [InlineData("small-output")]
    public async Task Damaged_blocks_are_refused_by_both_inflaters(string damage)
    {
        var variant = MksquashfsImages.Variants.Single(v => v.Name == "gzip");
        using var image = SquashFsImage.Open(await _images.GetImageAsync(variant));
        var block = image.EnumerateStoredBlocks().First(b => b.IsCompressed && b.StoredSize > 1000);
        var stored = new byte[block.StoredSize + 8];
        image.ReadStoredBytes(block.Offset, stored.AsSpan(0, (int)block.StoredSize));
        var input = damage switch
        {
            "flipped" => Flip(stored.AsSpan(0, (int)block.StoredSize).ToArray()),
            "truncated" => stored.AsSpan(0, (int)block.StoredSize / 2).ToArray(),
            "trailing" => stored.AsSpan(0, (int)block.StoredSize + 8).ToArray(),
            _ => stored.AsSpan(0, (int)block.StoredSize).ToArray(),
        };
        var output = new byte[damage == "small-output" ? 100 : image.BlockSize];
        foreach (var useLibdeflate in new[] { true, false })
        {
            using var codec = new GzipCodec(image.CompressorOptions, (uint)image.BlockSize, CodecRole.Data, useLibdeflate);
            var error = Assert.Throws<SquashFsException>(() => codec.Decompress(input, output));
            Assert.Equal(SquashFsErrorCategory.Corrupted, error.Category);
            Assert.StartsWith("Gzip block does not decompress", error.Message, StringComparison.Ordinal);
        }

        static byte[] Flip(byte[] bytes)
        {
            for (var i = bytes.Length / 3; i < (bytes.Length / 3) + 8; i++)
            {
                bytes[i] ^= 0xA5;
            }

            return bytes;
        }
    }
}
