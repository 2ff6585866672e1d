namespace EdgeUpdater.Testing;

/// <summary>A read-only loop mount of a SquashFS image by the kernel (needs root); unmounted on dispose.</summary>
public sealed class SquashFsMount : IAsyncDisposable
{
    private SquashFsMount(string mountPoint)
    {
        MountPoint = mountPoint;
    }

    /// <summary>Where the image is mounted.</summary>
    public string MountPoint { get; }

    /// <summary>Mounts <paramref name="image"/> at <paramref name="mountPoint"/> with <c>mount -t squashfs -o loop,ro</c>.</summary>
    public static async Task<SquashFsMount> MountAsync(string image, string mountPoint)
    {
        Privileges.RequireRoot("mounting a SquashFS image needs a loop device");
        Directory.CreateDirectory(mountPoint);
        await ExternalTool.RunCheckedAsync("mount", ["-t", "squashfs", "-o", "loop,ro", image, mountPoint], TimeSpan.FromSeconds(60));
        return new SquashFsMount(mountPoint);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        var result = await ExternalTool.RunAsync("umount", [MountPoint], TimeSpan.FromSeconds(60));
        if (result.ExitCode != 0)
        {
            await ExternalTool.RunAsync("umount", ["-l", MountPoint], TimeSpan.FromSeconds(60));
        }
    }
}
