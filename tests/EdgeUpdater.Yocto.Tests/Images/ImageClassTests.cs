using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Yocto.Tests.Images;

/// <summary>
/// The image command of classes/edgeupdater-image.bbclass (edgeupdater_make_image), run on a small
/// rootfs as BitBake would run it: an EdgeUpdater image has exactly config.json and root/ at its
/// top, keeps ownership, modes, symlinks and hard links of the rootfs, and is reproducible.
/// </summary>
public sealed class ImageClassTests : IDisposable
{
    private readonly TempDirectory _directory = new("yocto-image");

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task Image_holds_config_json_and_the_rootfs_under_root()
    {
        var rootfs = await MakeRootfsAsync();
        var image = _directory.Combine("out.edgeupdater");
        (await LayerImageCommand.BuildAsync(rootfs, "{\"name\": \"demo\", \"version\": \"1.0.0\"}\n", image, cancellationToken: Token)).EnsureSuccess("edgeupdater_make_image");

        // -lln: numeric owners, so the check does not depend on this machine's /etc/passwd.
        var listing = await ExternalTool.RunCheckedAsync("unsquashfs", ["-lln", "-d", string.Empty, image], cancellationToken: Token);
        var entries = listing.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length == 6 && f[5].StartsWith('/'))
            .ToDictionary(f => f[5], f => (Mode: f[0], Owner: f[1]));

        var top = entries.Keys.Where(p => p.LastIndexOf('/') == 0).Select(p => p.Split(' ')[0]).Order(StringComparer.Ordinal);
        Assert.Equal(["/config.json", "/root"], top);
        Assert.Equal("-rw-r--r--", entries["/root/etc/hostname"].Mode);
        Assert.Equal("-rwxr-xr-x", entries["/root/usr/bin/tool"].Mode);
        Assert.Contains("/root/bin -> usr/bin", entries.Keys);
        Assert.Contains("/root/usr/bin/alias -> ./tool", entries.Keys);
        if (Privileges.IsRoot)
        {
            Assert.Equal("1000/1001", entries["/root/home/user/data"].Owner);
        }

        var superblock = await ExternalTool.RunCheckedAsync("unsquashfs", ["-s", image], cancellationToken: Token);
        Assert.Contains("Compression gzip", superblock.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("Block size 131072", superblock.StandardOutput, StringComparison.Ordinal);

        var config = await ExternalTool.RunCheckedAsync("unsquashfs", ["-cat", image, "config.json"], cancellationToken: Token);
        Assert.Equal("{\"name\": \"demo\", \"version\": \"1.0.0\"}\n", config.StandardOutput);

        // The project's own reader accepts it as an EdgeUpdater image (layout and config.json).
        using (var opened = EdgeUpdater.Images.EdgeUpdaterImage.Open(image))
        {
            Assert.Equal(("demo", "1.0.0"), (opened.Config.Name, opened.Config.Version));
        }

        // Hard links stay one inode; the image root is 0755 like any root directory.
        var extracted = _directory.Combine("extracted");
        await ExternalTool.RunCheckedAsync("unsquashfs", ["-d", extracted, "-no-xattrs", image], cancellationToken: Token);
        var inodes = await ExternalTool.RunCheckedAsync("stat", ["-c", "%i", Path.Combine(extracted, "root", "usr", "bin", "tool"), Path.Combine(extracted, "root", "usr", "bin", "tool-hardlink")], cancellationToken: Token);
        var numbers = inodes.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(numbers[0], numbers[1]);
        Assert.Equal((UnixFileMode)0b111_101_101, File.GetUnixFileMode(extracted) & (UnixFileMode)0b111_111_111);
    }

    [Fact]
    public async Task Same_rootfs_gives_the_same_image_bytes()
    {
        var rootfs = await MakeRootfsAsync();
        var first = _directory.Combine("first.edgeupdater");
        var second = _directory.Combine("second.edgeupdater");
        (await LayerImageCommand.BuildAsync(rootfs, "{\"name\": \"demo\", \"version\": \"1.0.0\"}\n", first, cancellationToken: Token)).EnsureSuccess("first build");
        await Task.Delay(1100, Token); // a second later: a clock-dependent creation time would differ
        (await LayerImageCommand.BuildAsync(rootfs, "{\"name\": \"demo\", \"version\": \"1.0.0\"}\n", second, cancellationToken: Token)).EnsureSuccess("second build");
        Assert.Equal(await File.ReadAllBytesAsync(first, Token), await File.ReadAllBytesAsync(second, Token));
    }

    [Fact]
    public async Task Image_larger_than_a_slot_fails_the_build()
    {
        var rootfs = await MakeRootfsAsync();
        await using (var big = new FileStream(Path.Combine(rootfs, "big.bin"), FileMode.Create))
        {
            var noise = new byte[1024 * 1024];
            for (var i = 0; i < 2; i++)
            {
                Random.Shared.NextBytes(noise);
                await big.WriteAsync(noise, Token);
            }
        }

        var result = await LayerImageCommand.BuildAsync(rootfs, "{\"name\": \"demo\", \"version\": \"1.0.0\"}\n", _directory.Combine("big.edgeupdater"), slotSizeMb: 1, cancellationToken: Token);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("the slots hold 1 MiB", result.StandardError, StringComparison.Ordinal);
    }

    private async Task<string> MakeRootfsAsync()
    {
        var rootfs = _directory.Combine("rootfs-" + Guid.NewGuid().ToString("n"));
        Directory.CreateDirectory(Path.Combine(rootfs, "etc"));
        Directory.CreateDirectory(Path.Combine(rootfs, "usr", "bin"));
        Directory.CreateDirectory(Path.Combine(rootfs, "home", "user"));
        await File.WriteAllTextAsync(Path.Combine(rootfs, "etc", "hostname"), "device\n", Token);
        File.SetUnixFileMode(Path.Combine(rootfs, "etc", "hostname"), (UnixFileMode)0b110_100_100);
        var tool = Path.Combine(rootfs, "usr", "bin", "tool");
        await File.WriteAllTextAsync(tool, "#!/bin/sh\n", Token);
        File.SetUnixFileMode(tool, (UnixFileMode)0b111_101_101);
        File.CreateSymbolicLink(Path.Combine(rootfs, "bin"), "usr/bin");
        File.CreateSymbolicLink(Path.Combine(rootfs, "usr", "bin", "alias"), "./tool");
        await ExternalTool.RunCheckedAsync("ln", [tool, Path.Combine(rootfs, "usr", "bin", "tool-hardlink")], cancellationToken: Token);
        var data = Path.Combine(rootfs, "home", "user", "data");
        await File.WriteAllTextAsync(data, "user data\n", Token);
        if (Privileges.IsRoot)
        {
            await ExternalTool.RunCheckedAsync("chown", ["1000:1001", data], cancellationToken: Token);
        }

        return rootfs;
    }
}
