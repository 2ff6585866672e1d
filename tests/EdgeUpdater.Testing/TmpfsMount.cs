using System.Globalization;

namespace EdgeUpdater.Testing;

/// <summary>
/// A tmpfs of a fixed size (needs root): a real file system that runs out of space where a test wants it
/// to. Unmounted on dispose.
/// </summary>
public sealed class TmpfsMount : IAsyncDisposable
{
    private TmpfsMount(string mountPoint)
    {
        MountPoint = mountPoint;
    }

    /// <summary>Where the file system is mounted.</summary>
    public string MountPoint { get; }

    /// <summary>A path inside the mount.</summary>
    public string Combine(string name) => Path.Combine(MountPoint, name);

    /// <summary>Mounts a tmpfs of <paramref name="bytes"/> bytes (rounded up to pages by the kernel) at <paramref name="mountPoint"/>.</summary>
    public static async Task<TmpfsMount> MountAsync(string mountPoint, long bytes)
    {
        Privileges.RequireRoot("mounting a tmpfs of a fixed size");
        Directory.CreateDirectory(mountPoint);
        await ExternalTool.RunCheckedAsync("mount", ["-t", "tmpfs", "-o", Size(bytes), "tmpfs", mountPoint], TimeSpan.FromSeconds(30));
        return new TmpfsMount(mountPoint);
    }

    /// <summary>Changes the size in place (<c>mount -o remount</c>); the files stay.</summary>
    public async Task ResizeAsync(long bytes) =>
        await ExternalTool.RunCheckedAsync("mount", ["-o", "remount," + Size(bytes), MountPoint], TimeSpan.FromSeconds(30));

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        var result = await ExternalTool.RunAsync("umount", [MountPoint], TimeSpan.FromSeconds(30));
        if (result.ExitCode != 0)
        {
            await ExternalTool.RunAsync("umount", ["-l", MountPoint], TimeSpan.FromSeconds(30));
        }
    }

    private static string Size(long bytes) => "size=" + bytes.ToString(CultureInfo.InvariantCulture);
}
