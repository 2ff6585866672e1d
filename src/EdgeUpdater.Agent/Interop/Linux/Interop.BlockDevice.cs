using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace EdgeUpdater.Agent.Interop.Linux;

/// <summary>BLKGETSIZE64: the capacity of a block-device slot.</summary>
internal static partial class Libc
{
    private const uint BlkGetSize64 = 0x80081272;

    internal static unsafe long BlockDeviceSize(SafeFileHandle device, string path)
    {
        ulong size;
        if (IoctlPointer(device, BlkGetSize64, &size) < 0)
        {
            throw LastError($"BLKGETSIZE64 {path}");
        }

        return (long)size;
    }
}
