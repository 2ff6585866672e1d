using System.Security.Cryptography;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Delta.Tests.Apply;

/// <summary>
/// <see cref="DeltaApplyOptions.ExpectedTarget"/>: a caller that knows the image it wants (a device, from its
/// signed manifest) has a delta for another image refused from the header, before its output is truncated,
/// reserved or written.
/// </summary>
[Collection(DeltaImagesGroup.Name)]
public sealed class ExpectedTargetTests
{
    private readonly DeltaImages _images;

    public ExpectedTargetTests(DeltaImages images)
    {
        _images = images;
    }

    [Fact]
    public async Task A_delta_for_another_image_is_refused_and_the_output_keeps_what_it_held()
    {
        var (aPath, b, deltaPath) = await PairAsync();
        var c = await _images.ReadImageAsync("C", Gzip);
        var output = _images.NewPath("expected.out");
        var previous = RandomNumberGenerator.GetBytes(b.Length + 12_345);
        await File.WriteAllBytesAsync(output, previous);

        var refused = await Assert.ThrowsAsync<DeltaException>(() => DeltaApplier.ApplyAsync(aPath, deltaPath, output, new DeltaApplyOptions { ExpectedTarget = Identity(c) }));

        Assert.Equal(DeltaErrorCategory.WrongTarget, refused.Category);
        Assert.Contains(Convert.ToHexStringLower(SHA256.HashData(c)), refused.Message, StringComparison.Ordinal);
        Assert.Equal(previous, await File.ReadAllBytesAsync(output));

        await DeltaApplier.ApplyAsync(aPath, deltaPath, output, new DeltaApplyOptions { ExpectedTarget = Identity(b) });
        DeltaTestKit.AssertSameImage(b, await File.ReadAllBytesAsync(output));
    }

    [Fact]
    public async Task The_expected_image_is_checked_before_room_is_reserved_for_the_one_the_header_names()
    {
        // A header naming an image too large for the output would otherwise be reported as a full disk.
        var (aPath, b, deltaPath) = await PairAsync();
        await using var small = await ScratchMount.TmpfsAsync(_images.NewPath("expected-fs"), b.Length / 2);
        var smaller = new ExpectedImage(b.Length / 4, SHA256.HashData(b.AsSpan(0, b.Length / 4)));

        var refused = await Assert.ThrowsAsync<DeltaException>(() => DeltaApplier.ApplyAsync(aPath, deltaPath, small.Combine("b.sqfs"), new DeltaApplyOptions { ExpectedTarget = smaller }));

        Assert.Equal(DeltaErrorCategory.WrongTarget, refused.Category);
    }

    private static ImageVariant Gzip => DeltaImages.Variants.Single(v => v.Name == "gzip");

    private static ExpectedImage Identity(byte[] image) => new(image.Length, SHA256.HashData(image));

    private async Task<(string A, byte[] B, string Delta)> PairAsync()
    {
        var (aPath, bPath, deltaPath) = await _images.WriteDeltaAsync(Gzip, DeltaLevel.Fast);
        return (aPath, await File.ReadAllBytesAsync(bPath), deltaPath);
    }
}
