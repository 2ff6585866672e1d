using EdgeUpdater.SquashFs.Compression;
using EdgeUpdater.SquashFs.Format;
using Xunit;

namespace EdgeUpdater.SquashFs.Tests.Compression;

/// <summary>
/// One xz codec serves a worker for a whole generation or apply: a codec that has compressed and decompressed
/// other inputs (other sizes, filters, incompressible data) gives what a fresh one gives, and a damaged
/// stream is refused without spoiling the codec for the next block. liblzma's working memory stays with
/// the codec from one block to the next, up to a bound that a hostile stream cannot move.
/// </summary>
public sealed class XzCodecTests
{
    public static TheoryData<string, int> Variants() => new()
    {
        { "plain", 131072 },
        { "x86+arm", 131072 },
        { "plain", 4096 },
        { "extreme", 65536 },
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void A_reused_codec_compresses_exactly_like_a_fresh_one(string variant, int blockSize)
    {
        var options = CompressorOptions.Default(CompressorId.Xz) with
        {
            XzFilters = variant == "x86+arm" ? XzFilters.X86 | XzFilters.Arm : XzFilters.None,
            XzExtreme = variant == "extreme",
        };
        var inputs = Inputs(blockSize);
        foreach (var role in new[] { CodecRole.Data, CodecRole.Metadata })
        {
            var size = role == CodecRole.Metadata ? SquashFsCodec.MetadataBlockSize : blockSize;
            using var reused = SquashFsCodec.Create(options, (uint)blockSize, role);
            var output = new byte[size];
            var plain = new byte[size];
            foreach (var input in inputs.Select(i => i.AsSpan(0, Math.Min(i.Length, size)).ToArray()))
            {
                using var fresh = SquashFsCodec.Create(options, (uint)blockSize, role);
                var expected = new byte[size];
                var freshCompressed = fresh.TryCompress(input, expected, out var expectedLength);
                var reusedCompressed = reused.TryCompress(input, output, out var length);
                Assert.Equal(freshCompressed, reusedCompressed);
                Assert.Equal(expected.AsSpan(0, expectedLength).ToArray(), output.AsSpan(0, length).ToArray());
                if (reusedCompressed)
                {
                    Assert.Equal(input.Length, reused.Decompress(output.AsSpan(0, length), plain));
                    Assert.Equal(input, plain.AsSpan(0, input.Length).ToArray());
                }
            }
        }
    }

    [Fact]
    public void A_corrupt_stream_is_refused_and_the_codec_still_works()
    {
        using var codec = SquashFsCodec.Create(CompressorOptions.Default(CompressorId.Xz), 131072, CodecRole.Data);
        var input = Inputs(131072)[1];
        var output = new byte[131072];
        Assert.True(codec.TryCompress(input, output, out var length));
        var damaged = output.AsSpan(0, length).ToArray();
        damaged[length / 2] ^= 0x55;
        var plain = new byte[131072];
        Assert.Throws<SquashFsException>(() => codec.Decompress(damaged, plain));
        Assert.Equal(input.Length, codec.Decompress(output.AsSpan(0, length), plain));
        Assert.Equal(input, plain.AsSpan(0, input.Length).ToArray());
    }

    [Theory]
    [InlineData(CodecRole.Metadata, 131072)]
    [InlineData(CodecRole.Data, 131072)]
    [InlineData(CodecRole.Data, 1048576)]
    public void Liblzma_working_memory_is_taken_once_and_then_recycled(CodecRole role, int blockSize)
    {
        var options = CompressorOptions.Default(CompressorId.Xz) with { XzFilters = XzFilters.X86 };
        using var codec = (XzCodec)SquashFsCodec.Create(options, (uint)blockSize, role);
        var size = role == CodecRole.Metadata ? SquashFsCodec.MetadataBlockSize : blockSize;
        var output = new byte[size];
        var plain = new byte[size];
        var inputs = Inputs(size).Where(i => i.Length == size).ToArray();

        void Round()
        {
            foreach (var input in inputs)
            {
                if (codec.TryCompress(input, output, out var length))
                {
                    Assert.Equal(size, codec.Decompress(output.AsSpan(0, length), plain));
                }
            }
        }

        Round();
        var first = codec.Allocator.Statistics;
        Assert.InRange(first.Blocks, 1, 32);
        Round();
        Round();
        var later = codec.Allocator.Statistics;
        Assert.Equal(first.Allocated, later.Allocated);
        Assert.Equal(first.Bytes, later.Bytes);
        Assert.InRange(later.Bytes, 1, 24 << 20);
    }

    [Fact]
    public void A_stream_that_asks_for_a_huge_dictionary_decodes_without_its_memory_being_kept()
    {
        // 32 MiB of dictionary is legal for xz and within the decoder's 64 MiB limit, but no SquashFS block
        // needs it: neither the encoder's hundreds of MiB nor the decoder's 32 MiB may stay with the codec.
        var input = Inputs(131072)[1];
        var stream = new byte[131072];
        var huge = CompressorOptions.Default(CompressorId.Xz) with { XzDictionarySize = 32 << 20 };
        using (var encoder = (XzCodec)SquashFsCodec.Create(huge, 131072, CodecRole.Data))
        {
            Assert.True(encoder.TryCompress(input, stream, out var length));
            Array.Resize(ref stream, length);
            Assert.InRange(encoder.Allocator.Statistics.Bytes, 0, 24 << 20);
        }

        using var codec = (XzCodec)SquashFsCodec.Create(CompressorOptions.Default(CompressorId.Xz), 131072, CodecRole.Data);
        var plain = new byte[131072];
        Assert.Equal(input.Length, codec.Decompress(stream, plain));
        Assert.Equal(input, plain);
        Assert.InRange(codec.Allocator.Statistics.Bytes, 0, 24 << 20);
    }

    /// <summary>Text-like, random (incompressible), zeros, tiny and mixed inputs, in an order that changes sizes.</summary>
    private static byte[][] Inputs(int blockSize)
    {
        var random = new Random(7);
        var text = new byte[blockSize];
        for (var i = 0; i < text.Length; i++)
        {
            text[i] = (byte)"the quick brown fox jumps over the lazy dog\n"[(i * 7 / 5) % 44];
        }

        var noise = new byte[blockSize];
        random.NextBytes(noise);
        var mixed = (byte[])text.Clone();
        random.NextBytes(mixed.AsSpan(blockSize / 3, blockSize / 3));
        return [text, mixed, noise, new byte[blockSize], [1, 2, 3], text[..(blockSize / 2)], noise[..100], mixed];
    }
}
