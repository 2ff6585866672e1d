using EdgeUpdater.Agent.Interop.Linux;

namespace EdgeUpdater.Agent.Activation;

/// <summary>
/// Mounts one slot of an app target: the SquashFS image read-only through a loop device, then an
/// overlay whose lower layer is the image's <c>root/</c> and whose upper directory belongs to the slot.
/// </summary>
internal sealed class ImageMount
{
    private readonly string _targetDirectory;

    /// <param name="targetDirectory">The target's directory under the state directory.</param>
    public ImageMount(string targetDirectory)
    {
        _targetDirectory = targetDirectory;
    }

    public string ImageDirectory => Path.Combine(_targetDirectory, "mnt", "image");

    /// <summary>The merged root the workload runs in.</summary>
    public string RootDirectory => Path.Combine(_targetDirectory, "mnt", "root");

    public string UpperDirectory(string slot) => Path.Combine(_targetDirectory, "overlay", slot, "upper");

    public string WorkDirectory(string slot) => Path.Combine(_targetDirectory, "overlay", slot, "work");

    /// <summary>Mounts the image alone (no overlay), for reading its config.json.</summary>
    public void MountImage(string imagePath)
    {
        Directory.CreateDirectory(ImageDirectory);
        var (loop, handle) = Libc.AttachLoopReadOnly(imagePath);
        using var holdUntilMounted = handle;
        try
        {
            Libc.Mount(loop, ImageDirectory, "squashfs", Libc.MsReadOnly | Libc.MsNoDev, null);
        }
        catch (IOException e)
        {
            throw new IOException($"{imagePath} is not a mountable SquashFS image: {e.Message}", e);
        }
    }

    /// <summary>Puts the overlay of <paramref name="slot"/> over the mounted image, at <see cref="RootDirectory"/>.</summary>
    public void MountRoot(string slot)
    {
        var lower = Path.Combine(ImageDirectory, "root");
        if (!Directory.Exists(lower))
        {
            throw new IOException($"the image has no root/ directory (looked in {lower})");
        }

        Directory.CreateDirectory(UpperDirectory(slot));
        Directory.CreateDirectory(WorkDirectory(slot));
        Directory.CreateDirectory(RootDirectory);
        Libc.Mount("overlay", RootDirectory, "overlay", 0, $"lowerdir={lower},upperdir={UpperDirectory(slot)},workdir={WorkDirectory(slot)}");
    }

    public string ReadConfigJson() => File.ReadAllText(Path.Combine(ImageDirectory, "config.json"));

    public byte[] ReadConfigBytes() => File.ReadAllBytes(Path.Combine(ImageDirectory, "config.json"));

    /// <summary>Unmounts everything below the target's mount directory (overlay first); safe when nothing is mounted.</summary>
    public void UnmountAll()
    {
        foreach (var mountPoint in MountTable.MountsBelow(Path.Combine(_targetDirectory, "mnt")))
        {
            // Detach: a workload's private namespace may still hold its copy; the loop device clears itself later.
            Libc.Unmount(mountPoint, Libc.MntDetach);
        }
    }

    /// <summary>Deletes the slot's upper layer: a newly written image starts from its pristine root.</summary>
    public void ResetUpper(string slot)
    {
        var directory = Path.Combine(_targetDirectory, "overlay", slot);
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
