using EdgeUpdater.SquashFs.IO;
using Xunit;

namespace EdgeUpdater.Delta.Tests.Apply;

/// <summary>An apply interrupted (a power cut while writing) at many points resumes from its checkpoint and gives the same image.</summary>
[Collection(DeltaImagesGroup.Name)]
public sealed class ResumeTests
{
    private readonly DeltaImages _images;

    public ResumeTests(DeltaImages images)
    {
        _images = images;
    }

    /// <summary>B to C on xz: its metadata blocks are replayed from LZMA decisions (format 4).</summary>
    [Theory]
    [InlineData("gzip-4k-no-fragments", DeltaLevel.Best, "A", "B")]
    [InlineData("xz", DeltaLevel.Fast, "A", "B")]
    [InlineData("xz", DeltaLevel.Best, "B", "C")]
    public async Task Interrupted_applies_resume_to_the_same_image(string variantName, DeltaLevel level, string from, string to)
    {
        var (aPath, bPath, deltaPath) = await _images.WriteDeltaAsync(DeltaImages.Variants.Single(v => v.Name == variantName), level, from, to);
        var b = await File.ReadAllBytesAsync(bPath);

        var resumedSomewhere = false;
        for (long limit = 0; limit < b.Length; limit += b.Length / 9)
        {
            var output = _images.NewPath("resume.out");
            var options = new DeltaApplyOptions { CheckpointPath = output + ".checkpoint", CheckpointInterval = 1, MaxParallelism = 2 };
            using (var baseSource = new FileImageSource(aPath))
            await using (var delta = File.OpenRead(deltaPath))
            using (var failing = new PowerCutTarget(output, limit))
            {
                await Assert.ThrowsAsync<IOException>(() => DeltaApplier.ApplyAsync(baseSource, delta, failing, options));
            }

            // Junk past the checkpoint (a half-written buffer) must not matter.
            await using (var junk = new FileStream(output, FileMode.Append))
            {
                junk.Write(new byte[777]);
            }

            var result = await DeltaApplier.ApplyAsync(aPath, deltaPath, output, options with { Resume = true });
            DeltaTestKit.AssertSameImage(b, await File.ReadAllBytesAsync(output));
            Assert.False(File.Exists(options.CheckpointPath));
            resumedSomewhere |= result.ResumedFrom > 0;
            File.Delete(output);
        }

        Assert.True(resumedSomewhere, "no interruption point resumed from a checkpoint");
    }

    [Fact]
    public async Task A_checkpoint_of_another_delta_is_refused()
    {
        var variant = DeltaImages.Variants.Single(v => v.Name == "gzip");
        var aPath = await _images.GetImageAsync("A", variant);
        var bPath = await _images.GetImageAsync("B", variant);
        var cPath = await _images.GetImageAsync("C", variant);
        var ab = _images.NewPath("ab.delta");
        var bc = _images.NewPath("bc.delta");
        await using (var s = File.Create(ab))
        {
            await DeltaGenerator.GenerateAsync(aPath, bPath, s, new DeltaGeneratorOptions { Level = DeltaLevel.Fast });
        }

        await using (var s = File.Create(bc))
        {
            await DeltaGenerator.GenerateAsync(bPath, cPath, s, new DeltaGeneratorOptions { Level = DeltaLevel.Fast });
        }

        var output = _images.NewPath("mismatch.out");
        var options = new DeltaApplyOptions { CheckpointPath = output + ".checkpoint", CheckpointInterval = 1 };
        using (var baseSource = new FileImageSource(aPath))
        await using (var delta = File.OpenRead(ab))
        using (var failing = new PowerCutTarget(output, new FileInfo(bPath).Length - 1))
        {
            await Assert.ThrowsAsync<IOException>(() => DeltaApplier.ApplyAsync(baseSource, delta, failing, options));
        }

        Assert.True(File.Exists(options.CheckpointPath));
        var e = await Assert.ThrowsAsync<DeltaException>(() => DeltaApplier.ApplyAsync(bPath, bc, output, options with { Resume = true }));
        Assert.Equal(DeltaErrorCategory.CheckpointMismatch, e.Category);
    }

    /// <summary>
    /// The fast and best deltas of one pair promise the same images but lay out their sections differently:
    /// resuming one at the other's offsets is refused as such. Without the check it read from wherever those
    /// offsets fell, which here happened to work and elsewhere meets the middle of a section.
    /// </summary>
    [Fact]
    public async Task A_checkpoint_of_the_same_pairs_other_delta_is_refused()
    {
        var variant = DeltaImages.Variants.Single(v => v.Name == "gzip");
        var (aPath, bPath, fast) = await _images.WriteDeltaAsync(variant, DeltaLevel.Fast, "A", "B");
        var (_, _, best) = await _images.WriteDeltaAsync(variant, DeltaLevel.Best, "A", "B");
        var output = _images.NewPath("other-level.out");
        var options = new DeltaApplyOptions { CheckpointPath = output + ".checkpoint", CheckpointInterval = 1 };
        using (var baseSource = new FileImageSource(aPath))
        await using (var delta = File.OpenRead(fast))
        using (var failing = new PowerCutTarget(output, new FileInfo(bPath).Length / 2))
        {
            await Assert.ThrowsAsync<IOException>(() => DeltaApplier.ApplyAsync(baseSource, delta, failing, options));
        }

        Assert.True(File.Exists(options.CheckpointPath));
        var e = await Assert.ThrowsAsync<DeltaException>(() => DeltaApplier.ApplyAsync(aPath, best, output, options with { Resume = true }));
        Assert.Equal(DeltaErrorCategory.CheckpointMismatch, e.Category);

        // The checkpoint's own delta still resumes from it.
        var result = await DeltaApplier.ApplyAsync(aPath, fast, output, options with { Resume = true });
        Assert.True(result.ResumedFrom > 0);
        DeltaTestKit.AssertSameImage(await File.ReadAllBytesAsync(bPath), await File.ReadAllBytesAsync(output));
    }

    [Theory]
    [InlineData(-1L, 0L)]
    [InlineData(100L, long.MinValue)]
    public async Task A_checkpoint_with_a_negative_offset_is_refused(long deltaOffset, long targetOffset)
    {
        var variant = DeltaImages.Variants.Single(v => v.Name == "gzip");
        var (aPath, _, fast) = await _images.WriteDeltaAsync(variant, DeltaLevel.Fast, "A", "B");
        var output = _images.NewPath("negative.out");
        await File.WriteAllBytesAsync(output, []);
        var options = new DeltaApplyOptions { CheckpointPath = output + ".checkpoint", Resume = true };
        DeltaHeader header;
        await using (var delta = File.OpenRead(fast))
        {
            (header, _) = await DeltaHeader.ReadAsync(delta, CancellationToken.None);
        }

        new Delta.Apply.Checkpoint(header.BaseSha256, header.TargetSha256, Delta.Apply.Checkpoint.HashOf(header), deltaOffset, targetOffset).Save(options.CheckpointPath);
        var e = await Assert.ThrowsAsync<DeltaException>(() => DeltaApplier.ApplyAsync(aPath, fast, output, options));
        Assert.Equal(DeltaErrorCategory.CheckpointMismatch, e.Category);
        Assert.Contains("offset", e.Message, StringComparison.Ordinal);
    }
}
