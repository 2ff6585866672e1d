using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace EdgeUpdater.Agent.Interop.Linux;

/// <summary>Loop devices: LOOP_CTL_GET_FREE on /dev/loop-control and LOOP_CONFIGURE (Linux 5.8+).</summary>
internal static partial class Libc
{
    private const uint LoopCtlGetFree = 0x4C82;
    private const uint LoopConfigure = 0x4C0A;
    private const uint LoFlagsReadOnly = 1;
    private const uint LoFlagsAutoClear = 4;
    private const int LoNameSize = 64;
    private const int LoKeySize = 32;

    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct LoopInfo64
    {
        public ulong Device;
        public ulong Inode;
        public ulong RDevice;
        public ulong Offset;
        public ulong SizeLimit;
        public uint Number;
        public uint EncryptType;
        public uint EncryptKeySize;
        public uint Flags;
        public fixed byte FileName[LoNameSize];
        public fixed byte CryptName[LoNameSize];
        public fixed byte EncryptKey[LoKeySize];
        public fixed ulong Init[2];
    }

    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct LoopConfig
    {
        public uint Fd;
        public uint BlockSize;
        public LoopInfo64 Info;
        public fixed ulong Reserved[8];
    }

    [LibraryImport(LibraryName, EntryPoint = "ioctl", SetLastError = true)]
    private static partial int IoctlNoArgument(SafeFileHandle fd, nuint request);

    [LibraryImport(LibraryName, EntryPoint = "ioctl", SetLastError = true)]
    private static unsafe partial int IoctlPointer(SafeFileHandle fd, nuint request, void* argument);

    /// <summary>
    /// Attaches <paramref name="backingFile"/> read-only to a free loop device with autoclear and returns
    /// its path and an open handle. Autoclear detaches the device when its last user goes, so the caller
    /// keeps the handle open until the device is mounted (the mount then holds it), then disposes it.
    /// Retries when another process takes the same free device first.
    /// </summary>
    internal static unsafe (string Path, SafeFileHandle Handle) AttachLoopReadOnly(string backingFile)
    {
        using var backing = File.OpenHandle(backingFile, FileMode.Open, FileAccess.Read);
        for (var attempt = 0; ; attempt++)
        {
            int number;
            using (var control = File.OpenHandle("/dev/loop-control", FileMode.Open, FileAccess.ReadWrite))
            {
                number = IoctlNoArgument(control, LoopCtlGetFree);
                if (number < 0)
                {
                    throw LastError("LOOP_CTL_GET_FREE on /dev/loop-control");
                }
            }

            var devicePath = $"/dev/loop{number}";
            var device = File.OpenHandle(devicePath, FileMode.Open, FileAccess.Read);
            var config = default(LoopConfig);
            config.Fd = (uint)backing.DangerousGetHandle();
            config.Info.Flags = LoFlagsReadOnly | LoFlagsAutoClear;
            if (IoctlPointer(device, LoopConfigure, &config) == 0)
            {
                return (devicePath, device);
            }

            var errno = Marshal.GetLastPInvokeError();
            device.Dispose();
            if (errno != 16 || attempt >= 10)
            {
                throw new IOException($"LOOP_CONFIGURE {devicePath} with {backingFile}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno);
            }
        }
    }
}
