using EdgeUpdater.Delta.Format;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Delta.Tests.Generation;

/// <summary>
/// Ops sections carry B's stored bytes as literals: compressed harder on images whose compressor keeps its
/// literals as plain bytes (LZ4, LZO), at zstd level 1 (fast) on entropy-coded ones, where more effort
/// finds nothing.
/// </summary>
public sealed class OpsSectionTests
{
    [Theory]
    [InlineData("lz4", true)]
    [InlineData("lzo", true)]
    [InlineData("gzip", false)]
    public async Task Ops_sections_are_compressed_harder_only_where_it_pays(string compressor, bool harder)
    {
        using var temp = new TempDirectory("delta-ops-level");
        var b = await DeltaTestKit.StartPairAsync(temp);
        Directory.CreateDirectory(Path.Combine(b, "usr", "share"));
        await File.WriteAllBytesAsync(Path.Combine(b, "usr", "share", "new.log"), HexLog(1 << 20, 5));
        var (oldImage, newImage) = await DeltaTestKit.SquashPairAsync(temp, compressor);

        var (delta, _) = await DeltaTestKit.GenerateAsync(oldImage, newImage, new DeltaGeneratorOptions { Level = DeltaLevel.Fast, MaxParallelism = 2 });

        DeltaTestKit.AssertSameImage(newImage, await DeltaTestKit.ApplyAsync(oldImage, delta));
        var ops = (await DeltaTestKit.SectionsAsync(delta)).Where(s => s.Kind == SectionKind.Ops).ToList();
        using var sections = new SectionWriter(Stream.Null);
        var stored = ops.Sum(s => s.StoredLength);
        var atLevel1 = ops.Sum(s => (long)sections.Encode(SectionKind.Ops, s.Payload, 1).Length);
        if (harder)
        {
            Assert.True(stored < atLevel1 * 99 / 100, $"ops sections take {stored} bytes; at level 1 {atLevel1}");
        }
        else
        {
            Assert.Equal(atLevel1, stored);
        }
    }

    /// <summary>Log-like lines with a random 64-bit hex id each: LZ4 and LZO shrink it to about half, not to a third, so it goes literally (no pack frames).</summary>
    private static byte[] HexLog(int size, int seed)
    {
        var random = new Random(seed);
        var text = new System.Text.StringBuilder();
        for (var line = 0; text.Length < size; line++)
        {
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"{line:D7} request {random.NextInt64():x16} served in {random.Next(1000)} ms\n");
        }

        return System.Text.Encoding.ASCII.GetBytes(text.ToString(0, size));
    }
}
