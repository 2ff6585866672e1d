using System.Security.Cryptography;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Delta.Tests.Apply;

/// <summary>
/// A fresh apply writes over its output in place (a file slot that still holds an older image) instead of
/// truncating it first: whatever the output held, larger or smaller than B, the result is exactly B, and
/// what it held never makes a failed apply pass. An output that is the base itself is refused before
/// anything is opened, so the base stays as it was.
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

    public enum BaseAlias
    {
        SamePath,
        SymbolicLink,
        HardLink,
    }

    [Theory]
    [InlineData(BaseAlias.SamePath)]
    [InlineData(BaseAlias.SymbolicLink)]
    [InlineData(BaseAlias.HardLink)]
    public async Task An_output_that_is_the_base_file_is_refused_and_the_base_kept(BaseAlias alias)
    {
        var (aPath, _, deltaPath) = await _images.WriteDeltaAsync(DeltaImages.Variants.Single(v => v.Name == "gzip"), DeltaLevel.Fast);
        var basePath = _images.NewPath("base.sqfs");
        File.Copy(aPath, basePath);
        var before = SHA256.HashData(await File.ReadAllBytesAsync(basePath));
        var output = alias switch
        {
            BaseAlias.SamePath => basePath,
            BaseAlias.SymbolicLink => File.CreateSymbolicLink(_images.NewPath("base-link.sqfs"), basePath).FullName,
            _ => await HardLinkAsync(basePath, _images.NewPath("base-hardlink.sqfs")),
        };

        var refused = await Assert.ThrowsAsync<DeltaException>(() => DeltaApplier.ApplyAsync(basePath, deltaPath, output));

        Assert.Equal(DeltaErrorCategory.Unsupported, refused.Category);
        Assert.Contains("is the base image", refused.Message, StringComparison.Ordinal);
        Assert.Equal(before, SHA256.HashData(await File.ReadAllBytesAsync(basePath)));
    }

    [Fact]
    public async Task An_output_that_is_the_base_block_device_under_another_node_is_refused()
    {
        Privileges.RequireRoot("loop devices and device nodes");
        var (aPath, _, deltaPath) = await _images.WriteDeltaAsync(DeltaImages.Variants.Single(v => v.Name == "gzip"), DeltaLevel.Fast);
        var backing = _images.NewPath("base-slot.img");
        File.Copy(aPath, backing);
        var before = SHA256.HashData(await File.ReadAllBytesAsync(backing));
        var device = (await ExternalTool.RunCheckedAsync("losetup", ["--find", "--show", backing])).StandardOutput.Trim();
        var otherNode = _images.NewPath("same-device-node");
        try
        {
            var numbers = (await ExternalTool.RunCheckedAsync("stat", ["-c", "%Hr %Lr", device])).StandardOutput.Trim().Split(' ');
            await ExternalTool.RunCheckedAsync("mknod", [otherNode, "b", numbers[0], numbers[1]]);

            var refused = await Assert.ThrowsAsync<DeltaException>(() => DeltaApplier.ApplyAsync(device, deltaPath, otherNode));

            Assert.Equal(DeltaErrorCategory.Unsupported, refused.Category);
            Assert.Equal(before, SHA256.HashData(await File.ReadAllBytesAsync(backing)));
        }
        finally
        {
            File.Delete(otherNode);
            await ExternalTool.RunCheckedAsync("losetup", ["-d", device]);
        }
    }

    private static async Task<string> HardLinkAsync(string target, string link)
    {
        await ExternalTool.RunCheckedAsync("ln", [target, link]);
        return link;
    }
}
