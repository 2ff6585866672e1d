using System.Globalization;
using System.Text;
using EdgeUpdater.Testing;

namespace EdgeUpdater.Yocto.Tests.Initramfs;

/// <summary>
/// The partitions of a device disk as loop devices, one per partition, plus a sysfs tree that names
/// them. The CI kernel has no partition table support (no CONFIG_EFI_PARTITION), so the kernel
/// cannot expose GPT partition names itself; <see cref="SysfsRoot"/> holds
/// <c>class/block/loopN/uevent</c> files in the kernel's format (DEVNAME, DEVTYPE=partition, PARTN,
/// PARTNAME) for the initramfs's PARTLABEL= lookup, while every mount goes to the real loop devices.
/// </summary>
internal sealed class PartitionedLoopDisk : IAsyncDisposable
{
    private readonly Dictionary<string, string> _devices = new(StringComparer.Ordinal);

    private PartitionedLoopDisk(string sysfsRoot, string labelPrefix)
    {
        SysfsRoot = sysfsRoot;
        LabelPrefix = labelPrefix;
    }

    /// <summary>The directory to pass as EDGEUPDATER_SYSFS.</summary>
    public string SysfsRoot { get; }

    public string LabelPrefix { get; }

    /// <summary>The GPT partition name of <paramref name="name"/> on this disk.</summary>
    public string Label(string name) => LabelPrefix + name;

    /// <summary>The device node of partition <paramref name="name"/>.</summary>
    public string Partition(string name) => _devices[name];

    /// <summary>Creates one backing file of (name, MiB) per partition under <paramref name="directory"/> and attaches each.</summary>
    public static async Task<PartitionedLoopDisk> CreateAsync(
        string directory, IReadOnlyList<(string Name, int SizeMiB)> partitions, CancellationToken cancellationToken = default)
    {
        var labelPrefix = "eutest" + Random.Shared.Next(0, int.MaxValue).ToString("x8", CultureInfo.InvariantCulture) + "-";
        var disk = new PartitionedLoopDisk(Path.Combine(directory, "sys"), labelPrefix);
        try
        {
            var number = 0;
            foreach (var (name, size) in partitions)
            {
                number++;
                var backing = Path.Combine(directory, name + ".part");
                await using (var stream = new FileStream(backing, FileMode.CreateNew))
                {
                    stream.SetLength(size * 1024L * 1024);
                }

                var attach = await ExternalTool.RunCheckedAsync("losetup", ["--find", "--show", backing], cancellationToken: cancellationToken);
                var device = attach.StandardOutput.Trim();
                disk._devices[name] = device;
                var deviceName = Path.GetFileName(device);
                var uevent = Path.Combine(disk.SysfsRoot, "class", "block", deviceName, "uevent");
                Directory.CreateDirectory(Path.GetDirectoryName(uevent)!);
                var text = new StringBuilder()
                    .Append("MAJOR=7\n")
                    .Append(CultureInfo.InvariantCulture, $"DEVNAME={deviceName}\n")
                    .Append("DEVTYPE=partition\n")
                    .Append(CultureInfo.InvariantCulture, $"PARTN={number}\n")
                    .Append(CultureInfo.InvariantCulture, $"PARTNAME={labelPrefix}{name}\n");
                await File.WriteAllTextAsync(uevent, text.ToString(), cancellationToken);
            }
        }
        catch
        {
            await disk.DisposeAsync();
            throw;
        }

        return disk;
    }

    /// <summary>Adds a sysfs entry for another device carrying partition name <paramref name="label"/>.</summary>
    public async Task AddForeignPartitionAsync(string deviceName, string label, CancellationToken cancellationToken = default)
    {
        var uevent = Path.Combine(SysfsRoot, "class", "block", deviceName, "uevent");
        Directory.CreateDirectory(Path.GetDirectoryName(uevent)!);
        await File.WriteAllTextAsync(uevent, $"MAJOR=7\nDEVNAME={deviceName}\nDEVTYPE=partition\nPARTN=1\nPARTNAME={label}\n", cancellationToken);
    }

    /// <summary>Copies <paramref name="file"/> to the start of partition <paramref name="name"/>.</summary>
    public async Task WriteAsync(string name, string file, CancellationToken cancellationToken = default)
    {
        await using var source = File.OpenRead(file);
        await using var target = new FileStream(Partition(name), FileMode.Open, FileAccess.Write);
        await source.CopyToAsync(target, cancellationToken);
        await target.FlushAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var device in _devices.Values)
        {
            await ExternalTool.RunAsync("losetup", ["--detach", device]);
        }
    }
}
