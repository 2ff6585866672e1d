using EdgeUpdater.SquashFs.Compression;
using EdgeUpdater.SquashFs.Format;
using Xunit;

namespace EdgeUpdater.SquashFs.Tests.Compression;

/// <summary>
/// One xz codec serves a worker for a whole generation or apply: a codec that has compressed and decompressed
/// other inputs (other sizes, filters, incompressible data) gives what a fresh one gives, and a damaged
/// stream is refused without spoiling the codec for the next block.
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
