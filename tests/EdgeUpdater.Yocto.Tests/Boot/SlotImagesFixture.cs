using EdgeUpdater.Testing;
using EdgeUpdater.Yocto.Tests.Images;
using Xunit;

namespace EdgeUpdater.Yocto.Tests.Boot;

/// <summary>
/// Slot images for the boot script tests, built once with the layer's image command: A and B carry a
/// kernel (Image for U-Boot, bzImage for GRUB) and the initramfs under root/boot, as
/// edgeupdater-image.bbclass lays them out; "broken" is a valid image without a kernel.
/// </summary>
public sealed class SlotImagesFixture : IAsyncLifetime
{
    private readonly TempDirectory _directory = new("yocto-slots");

    internal SquashFsListing SlotA { get; private set; } = null!;

    internal SquashFsListing SlotB { get; private set; } = null!;

    internal SquashFsListing Broken { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        SlotA = await BuildAsync("a", withKernel: true);
        SlotB = await BuildAsync("b", withKernel: true);
        Broken = await BuildAsync("broken", withKernel: false);
    }

    public ValueTask DisposeAsync()
    {
        _directory.Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task<SquashFsListing> BuildAsync(string name, bool withKernel)
    {
        var rootfs = _directory.Combine("rootfs-" + name);
        Directory.CreateDirectory(Path.Combine(rootfs, "boot"));
        Directory.CreateDirectory(Path.Combine(rootfs, "etc"));
        await File.WriteAllTextAsync(Path.Combine(rootfs, "etc", "slot-test"), name);
        await File.WriteAllTextAsync(Path.Combine(rootfs, "boot", "edgeupdater-initramfs.cpio.gz"), "initramfs of " + name);
        if (withKernel)
        {
            await File.WriteAllTextAsync(Path.Combine(rootfs, "boot", "Image"), "arm64 kernel of " + name);
            await File.WriteAllTextAsync(Path.Combine(rootfs, "boot", "bzImage"), "x86 kernel of " + name);
        }

        var image = _directory.Combine(name + ".edgeupdater");
        (await LayerImageCommand.BuildAsync(rootfs, $"{{\"name\": \"slot-test\", \"version\": \"1.0.0-{name}\"}}\n", image))
            .EnsureSuccess("edgeupdater_make_image");
        return await SquashFsListing.ReadAsync(image);
    }
}
