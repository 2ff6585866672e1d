using Xunit;

namespace EdgeUpdater.Delta.Tests.Apply;

/// <summary>
/// A fresh apply writes over its output in place (a file slot that still holds an older image) instead of
/// truncating it first: whatever the output held, larger or smaller than B, the result is exactly B, and
/// what it held never makes a failed apply pass.
/// </summary>
[Collection(DeltaImagesGroup.Name)]
public sealed class OverwrittenOutputTests
{
    private readonly DeltaImages _images;

    public OverwrittenOutputTests(DeltaImages images)
    {
        _images = images;
    }

    [Theory]
    [InlineData(3.0)]
    [InlineData(1.0)]
    [InlineData(0.4)]
    public async Task Whatever_the_output_held_the_apply_leaves_exactly_the_new_image(double heldShareOfB)
    {
        var (aPath, bPath, deltaPath) = await _images.WriteDeltaAsync(DeltaImages.Variants.Single(v => v.Name == "xz"), DeltaLevel.Fast);
        var b = await File.ReadAllBytesAsync(bPath);
        var output = _images.NewPath("overwritten.out");
        var held = new byte[(int)(b.Length * heldShareOfB)];
        new Random(11).NextBytes(held);
        await File.WriteAllBytesAsync(output, held);

        await DeltaApplier.ApplyAsync(aPath, deltaPath, output, new DeltaApplyOptions { MaxParallelism = 2 });

        DeltaTestKit.AssertSameImage(b, await File.ReadAllBytesAsync(output));
        File.Delete(output);
    }

    [Fact]
    public async Task An_output_that_already_holds_the_new_image_does_not_make_a_cut_delta_pass()
    {
        var (aPath, bPath, deltaPath) = await _images.WriteDeltaAsync(DeltaImages.Variants.Single(v => v.Name == "gzip"), DeltaLevel.Fast);
        var b = await File.ReadAllBytesAsync(bPath);
        var delta = await File.ReadAllBytesAsync(deltaPath);
        var cut = _images.NewPath("cut.delta");
        await File.WriteAllBytesAsync(cut, delta.AsSpan(0, delta.Length - 40).ToArray());
        var output = _images.NewPath("holds-b.out");
        await File.WriteAllBytesAsync(output, b);

        var refused = await Assert.ThrowsAsync<DeltaException>(() => DeltaApplier.ApplyAsync(aPath, cut, output));

        Assert.Equal(DeltaErrorCategory.Truncated, refused.Category);
        File.Delete(output);
    }
}
