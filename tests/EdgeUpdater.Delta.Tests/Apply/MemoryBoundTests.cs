using Xunit;

namespace EdgeUpdater.Delta.Tests.Apply;

/// <summary>
/// Apply memory is bounded by the format's windows, whatever the image size: generated deltas never
/// exceed them (real RSS is measured by scripts/bench/delta.sh, not here).
/// </summary>
public sealed class MemoryBoundTests
{
    [Theory]
    [InlineData(DeltaLevel.Fast)]
    [InlineData(DeltaLevel.Best)]
    public async Task Large_changed_inputs_stay_inside_the_windows(DeltaLevel level)
    {
        var random = new Random(3);
        var a = new byte[24 << 20];
        for (var i = 0; i < a.Length; i += 4096)
        {
            // Compressible-ish and distinct pages: every page differs, so copies are page-aligned only.
            random.NextBytes(a.AsSpan(i, 512));
        }

        var b = (byte[])a.Clone();
        for (var i = 0; i < b.Length; i += 1 << 16)
        {
            b[i + random.Next(1 << 16)] ^= 0xFF;
        }

        var (delta, _) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { Level = level, MaxParallelism = 2 });
        var info = await DeltaInspector.InspectAsync(new MemoryStream(delta));
        Assert.InRange(info.LargestSection, 1, Format.DeltaFormat.MaxSectionLength);
        Assert.InRange(info.LargestContent, 1, Format.DeltaFormat.MaxContentLength);
        Assert.InRange(info.LargestReference, 1, Format.DeltaFormat.MaxReferenceLength);
        Assert.True(Format.DeltaFormat.MaxContentLength + Format.DeltaFormat.MaxReferenceLength + (2L * Format.DeltaFormat.MaxSectionLength) <= 32L << 20, "the format's windows add up to more than 32 MiB");
        DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(a, delta));
    }
}
