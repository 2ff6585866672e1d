using System.Globalization;

namespace EdgeUpdater.Testing;

/// <summary>
/// A small real file system of a fixed size (needs root), for tests that need one to run out of space or
/// to have its own limits: a tmpfs, or ext4 on a loop device. Unmounted on dispose.
/// </summary>
public sealed class ScratchMount : IAsyncDisposable
{
    private ScratchMount(string mountPoint)
    {
        MountPoint = mountPoint;
    }

    /// <summary>Where the file system is mounted.</summary>
    public string MountPoint { get; }

    /// <summary>A path inside the mount.</summary>
    public string Combine(string name) => Path.Combine(MountPoint, name);

    /// <summary>Mounts a tmpfs of <paramref name="bytes"/> bytes (rounded up to pages by the kernel) at <paramref name="mountPoint"/>.</summary>
    public static async Task<ScratchMount> TmpfsAsync(string mountPoint, long bytes)
    {
        Privileges.RequireRoot("mounting a tmpfs of a fixed size");
        Directory.CreateDirectory(mountPoint);
        await ExternalTool.RunCheckedAsync("mount", ["-t", "tmpfs", "-o", Size(bytes), "tmpfs", mountPoint], TimeSpan.FromSeconds(30));
        return new ScratchMount(mountPoint);
    }

    /// <summary>
    /// Makes an ext4 file system of <paramref name="bytes"/> bytes (4 KiB blocks) in the file <paramref name="image"/>
    /// and mounts it at <paramref name="mountPoint"/> through a loop device (freed again by the unmount).
    /// </summary>
    /// <param name="image">The file that holds the file system.</param>
    /// <param name="mountPoint">Where to mount it.</param>
    /// <param name="bytes">Its size.</param>
    /// <param name="extents">
    /// False: without the extent feature, as ext2 and ext3 lay files out: such files have no fallocate, and
    /// the largest file is about 4 TiB instead of 16 TiB.
    /// </param>
    public static async Task<ScratchMount> LoopExt4Async(string image, string mountPoint, long bytes, bool extents = true)
    {
        Privileges.RequireRoot("an ext4 file system on a loop device");
        Directory.CreateDirectory(mountPoint);
        await ExternalTool.RunCheckedAsync("truncate", ["-s", bytes.ToString(CultureInfo.InvariantCulture), image], TimeSpan.FromSeconds(30));
        string[] features = extents ? [] : ["-O", "^extent,^64bit"];
        await ExternalTool.RunCheckedAsync("mkfs.ext4", ["-q", "-F", "-b", "4096", .. features, image], TimeSpan.FromSeconds(60));
        await ExternalTool.RunCheckedAsync("mount", ["-o", "loop", image, mountPoint], TimeSpan.FromSeconds(30));
        return new ScratchMount(mountPoint);
    }

    /// <summary>Changes a tmpfs's size in place (<c>mount -o remount</c>); the files stay.</summary>
    public async Task ResizeAsync(long bytes) =>
        await ExternalTool.RunCheckedAsync("mount", ["-o", "remount," + Size(bytes), MountPoint], TimeSpan.FromSeconds(30));

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        var result = await ExternalTool.RunAsync("umount", [MountPoint], TimeSpan.FromSeconds(30));
        if (result.ExitCode != 0)
        {
            // Still busy (a process of the test holds a file there): detach it now, freed when closed.
            await ExternalTool.RunAsync("umount", ["-l", MountPoint], TimeSpan.FromSeconds(30));
        }
    }

    private static string Size(long bytes) => "size=" + bytes.ToString(CultureInfo.InvariantCulture);
}
