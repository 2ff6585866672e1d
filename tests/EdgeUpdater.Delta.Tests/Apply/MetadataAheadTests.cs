using EdgeUpdater.Delta.Format;
using EdgeUpdater.SquashFs.IO;
using Xunit;

namespace EdgeUpdater.Delta.Tests.Apply;

/// <summary>
/// A seekable delta has its metadata section (last in the delta) decoded beside the data sections; a
/// pipe has it decoded in its turn. Both give the same image, and the same error for the same damage.
/// </summary>
[Collection(DeltaImagesGroup.Name)]
public sealed class MetadataAheadTests
{
    private readonly DeltaImages _images;

    public MetadataAheadTests(DeltaImages images)
    {
        _images = images;
    }

    [Theory]
    [InlineData("xz", "A", "B", DeltaLevel.Fast)]
    [InlineData("gzip", "B", "C", DeltaLevel.Best)]
    [InlineData("zstd-no-xattrs-no-exports", "A", "B", DeltaLevel.Best)]
    [InlineData("gzip-uncompressed", "A", "B", DeltaLevel.Fast)]
    [InlineData("xz-64k-always-fragments", "A", "C", DeltaLevel.Best)]
    public async Task A_seekable_delta_has_its_metadata_decoded_ahead_and_a_pipe_in_turn(string variantName, string from, string to, DeltaLevel level)
    {
        var (a, b, delta) = await PairAsync(variantName, from, to, level);

        var (ahead, aheadImage) = await ApplyAsync(a, delta, seekable: true);
        DeltaTestKit.AssertSameImage(b, aheadImage);
        Assert.True(ahead.MetadataDecodedAhead, "a seekable delta's metadata section was not decoded ahead");

        var (inTurn, inTurnImage) = await ApplyAsync(a, delta, seekable: false);
        DeltaTestKit.AssertSameImage(b, inTurnImage);
        Assert.False(inTurn.MetadataDecodedAhead, "a pipe cannot be read ahead");
    }

    [Fact]
    public async Task A_metadata_region_larger_than_the_read_ahead_limit_is_decoded_in_turn()
    {
        var (a, b, delta) = await PairAsync("xz", "A", "B", DeltaLevel.Fast);
        var (result, image) = await ApplyAsync(a, delta, seekable: true, new DeltaApplyOptions { MaxParallelism = 2, MetadataAheadLimit = 1024 });
        DeltaTestKit.AssertSameImage(b, image);
        Assert.False(result.MetadataDecodedAhead);
    }

    [Fact]
    public async Task A_seekable_delta_is_read_in_turn_when_the_options_say_not_to_read_ahead()
    {
        // As the CLI does for a delta read over HTTP, where a seek is a request.
        var (a, b, delta) = await PairAsync("xz", "A", "B", DeltaLevel.Fast);
        var (result, image) = await ApplyAsync(a, delta, seekable: true, new DeltaApplyOptions { MaxParallelism = 2, ReadMetadataAhead = false });
        DeltaTestKit.AssertSameImage(b, image);
        Assert.False(result.MetadataDecodedAhead);
    }

    [Theory]
    [InlineData("xz", DeltaLevel.Fast, 21)]
    [InlineData("gzip", DeltaLevel.Best, 22)]
    public async Task Damage_inside_the_metadata_section_is_reported_the_same_ahead_or_in_turn(string variantName, DeltaLevel level, int seed)
    {
        var (a, b, delta) = await PairAsync(variantName, "A", "B", level);
        var (offset, storedLength, _, payload) = (await DeltaTestKit.SectionsAsync(delta)).Single(s => s.Kind == SectionKind.Metadata);
        var random = new Random(seed);
        var refused = 0;
        for (var i = 0; i < 40; i++)
        {
            // Damage the payload, then seal the section again: its checksum passes, its decoding must not.
            var damaged = (byte[])payload.Clone();
            var position = random.Next(damaged.Length);
            if (random.Next(2) == 0)
            {
                damaged[position] ^= (byte)(1 << random.Next(8));
            }
            else
            {
                damaged = damaged[..position];
            }

            using var writer = new SectionWriter(Stream.Null);
            byte[] mutated = [.. delta.AsSpan(0, (int)offset), .. writer.Encode(SectionKind.Metadata, damaged, 0), .. delta.AsSpan((int)(offset + storedLength))];
            var ahead = await OutcomeAsync(a, mutated, seekable: true);
            var inTurn = await OutcomeAsync(a, mutated, seekable: false);
            Assert.Equal(inTurn.Error?.Category, ahead.Error?.Category);
            Assert.Equal(inTurn.Error?.Message, ahead.Error?.Message);
            if (ahead.Error is null)
            {
                // A change the format ignores: both must still give exactly B.
                DeltaTestKit.AssertSameImage(b, ahead.Image!);
                DeltaTestKit.AssertSameImage(b, inTurn.Image!);
            }
            else
            {
                refused++;
            }
        }

        Assert.True(refused > 30, $"only {refused} of 40 damaged metadata sections were refused");
    }

    private async Task<(byte[] A, byte[] B, byte[] Delta)> PairAsync(string variantName, string from, string to, DeltaLevel level)
    {
        var variant = DeltaImages.Variants.Single(v => v.Name == variantName);
        var a = await _images.ReadImageAsync(from, variant);
        var b = await _images.ReadImageAsync(to, variant);
        var (delta, _) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { Level = level, MaxParallelism = 2 });
        return (a, b, delta);
    }

    private static async Task<(DeltaException? Error, byte[]? Image)> OutcomeAsync(byte[] a, byte[] delta, bool seekable)
    {
        try
        {
            return (null, (await ApplyAsync(a, delta, seekable)).Image);
        }
        catch (DeltaException e)
        {
            return (e, null);
        }
    }

    private static async Task<(DeltaApplyResult Result, byte[] Image)> ApplyAsync(byte[] a, byte[] delta, bool seekable, DeltaApplyOptions? options = null)
    {
        using var baseSource = new MemoryImageSource(a);
        using var memory = new MemoryStream(delta, writable: false);
        using var input = seekable ? (Stream)memory : new PipeLikeStream(memory);
        using var output = new MemoryStream();
        DeltaApplyResult result;
        using (var sink = new StreamImageSink(output, leaveOpen: true))
        {
            result = await DeltaApplier.ApplyAsync(baseSource, input, sink, options ?? new DeltaApplyOptions { MaxParallelism = 2 }).WaitAsync(TimeSpan.FromSeconds(30));
        }

        return (result, output.ToArray());
    }

    /// <summary>Reads front to back only, like a pipe or an HTTP response.</summary>
    private sealed class PipeLikeStream(Stream inner) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
