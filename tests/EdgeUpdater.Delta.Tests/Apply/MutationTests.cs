using Xunit;

namespace EdgeUpdater.Delta.Tests.Apply;

/// <summary>
/// Seeded mutations of real deltas: each mutated delta is refused with a <see cref="DeltaException"/>, or
/// (when the mutation hit a byte the format ignores) still yields exactly the new image; never a wrong
/// image declared good, never a hang.
/// </summary>
[Collection(DeltaImagesGroup.Name)]
public sealed class MutationTests
{
    private readonly DeltaImages _images;
    private readonly ITestOutputHelper _output;

    public MutationTests(DeltaImages images, ITestOutputHelper output)
    {
        _images = images;
        _output = output;
    }

    [Theory]
    [InlineData("gzip", "B", "C", DeltaLevel.Best, 11)]
    [InlineData("xz", "A", "B", DeltaLevel.Best, 12)]
    [InlineData("zstd-1m", "A", "B", DeltaLevel.Fast, 13)]
    public async Task Mutated_deltas_are_refused_or_still_exact(string variantName, string from, string to, DeltaLevel level, int seed)
    {
        var variant = DeltaImages.Variants.Single(v => v.Name == variantName);
        var a = await _images.ReadImageAsync(from, variant);
        var b = await _images.ReadImageAsync(to, variant);
        var (delta, _) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { Level = level, MaxParallelism = 2 });
        await MutateAsync(a, b, delta, seed, $"{variantName} {from}->{to} {level}");
    }

    [Fact]
    public async Task Mutated_deltas_with_lzma2_frames_are_refused_or_still_exact()
    {
        using var temp = new Testing.TempDirectory("delta-mutation-lzma2");
        var (a, b) = await Generation.NewContentFrameTests.MakePairAsync(temp, "xz");
        var (delta, _) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { Level = DeltaLevel.Best, MaxParallelism = 2 });
        var info = await MutateAsync(a, b, delta, 14, "new binaries xz A->B Best");
        Assert.True(info.ContentBytesByCoder.GetValueOrDefault("lzma2") > 0, "the delta has no LZMA2 frame to mutate");
    }

    [Theory]
    [InlineData("gzip", "A", "B", DeltaLevel.Best, 31)]
    [InlineData("xz", "A", "B", DeltaLevel.Best, 32)]
    [InlineData("zstd-1m", "A", "B", DeltaLevel.Fast, 33)]
    [InlineData("xz-64k-always-fragments", "B", "C", DeltaLevel.Best, 34)]
    [InlineData("gzip", "A", "B", DeltaLevel.Fast, 35, true)]
    public async Task Damaged_sections_with_valid_checksums_are_refused_or_still_exact(string variantName, string from, string to, DeltaLevel level, int seed, bool generic = false)
    {
        // The section checksums stop almost every random mutation above before the decoders see it; here
        // each damaged payload is sealed again, so the ops, content and metadata decoders get the damage.
        var variant = DeltaImages.Variants.Single(v => v.Name == variantName);
        var a = await _images.ReadImageAsync(from, variant);
        var b = await _images.ReadImageAsync(to, variant);
        var (delta, _) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { Level = level, MaxParallelism = 2, ForceGeneric = generic });
        var sections = await DeltaTestKit.SectionsAsync(delta);
        var random = new Random(seed);
        int refused = 0, exact = 0;
        var categories = new Dictionary<DeltaErrorCategory, int>();
        for (var i = 0; i < 200; i++)
        {
            var (offset, storedLength, kind, payload) = sections[random.Next(sections.Count)];
            var damaged = Mutate(payload, random);
            using var writer = new Format.SectionWriter(Stream.Null);
            byte[] mutated = [.. delta.AsSpan(0, (int)offset), .. writer.Encode(kind, damaged, 0), .. delta.AsSpan((int)(offset + storedLength))];
            if (await RefusedOrExactAsync(a, b, mutated, categories))
            {
                refused++;
            }
            else
            {
                exact++;
            }
        }

        _output.WriteLine($"{variantName} {from}->{to} {level}{(generic ? " generic" : "")}: {sections.Count} sections; {refused} refused ({string.Join(", ", categories.Select(c => $"{c.Key} {c.Value}"))}), {exact} still exact");
        Assert.True(refused > 150, $"only {refused} of 200 damaged sections were refused");
    }

    private async Task<DeltaInfo> MutateAsync(byte[] a, byte[] b, byte[] delta, int seed, string label)
    {
        var info = await DeltaInspector.InspectAsync(new MemoryStream(delta));
        Assert.Equal(Format.DeltaFormat.Version, info.Header.Version);
        var random = new Random(seed);
        int refused = 0, exact = 0;
        var categories = new Dictionary<DeltaErrorCategory, int>();
        for (var i = 0; i < 150; i++)
        {
            if (await RefusedOrExactAsync(a, b, Mutate(delta, random), categories))
            {
                refused++;
            }
            else
            {
                exact++;
            }
        }

        _output.WriteLine($"{label}: delta {delta.Length} bytes; {refused} refused ({string.Join(", ", categories.Select(c => $"{c.Key} {c.Value}"))}), {exact} still exact; content by coder {string.Join(", ", info.ContentBytesByCoder.Select(c => $"{c.Key} {c.Value}"))}");
        Assert.True(refused > 100, $"only {refused} of 150 mutations were refused");
        return info;
    }

    /// <summary>
    /// Applies a mutated delta: true when it is refused (counted by category), false when it still gives
    /// exactly B; anything else (another exception, a wrong image, a hang) fails the test.
    /// </summary>
    private static async Task<bool> RefusedOrExactAsync(byte[] a, byte[] b, byte[] mutated, Dictionary<DeltaErrorCategory, int> categories)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            var result = await DeltaTestKit.ApplyAsync(a, mutated, new DeltaApplyOptions { MaxParallelism = 2 }, timeout.Token).WaitAsync(TimeSpan.FromSeconds(40));
            DeltaTestKit.AssertSameImage(b, result);
            return false;
        }
        catch (DeltaException e)
        {
            categories[e.Category] = categories.GetValueOrDefault(e.Category) + 1;
            return true;
        }
    }

    private static byte[] Mutate(byte[] delta, Random random)
    {
        var bytes = (byte[])delta.Clone();
        var position = random.Next(bytes.Length);
        switch (random.Next(5))
        {
            case 0:
                bytes[position] ^= (byte)(1 << random.Next(8));
                return bytes;
            case 1:
                bytes[position] = (byte)random.Next(256);
                return bytes;
            case 2:
                return bytes[..position];
            case 3:
                var length = Math.Min(random.Next(1, 64), bytes.Length - position);
                return [.. bytes.AsSpan(0, position), .. bytes.AsSpan(position + length)];
            default:
                var insert = new byte[random.Next(1, 16)];
                random.NextBytes(insert);
                return [.. bytes.AsSpan(0, position), .. insert, .. bytes.AsSpan(position)];
        }
    }
}
