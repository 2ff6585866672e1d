using System.Runtime.InteropServices;

namespace EdgeUpdater.Agent.Interop.Linux;

/// <summary>mount(2) and umount2(2).</summary>
internal static partial class Libc
{
    internal const ulong MsReadOnly = 1;
    internal const ulong MsNoSuid = 2;
    internal const ulong MsNoDev = 4;
    internal const ulong MsBind = 4096;
    internal const ulong MsRec = 16384;
    internal const ulong MsPrivate = 1 << 18;

    internal const int MntDetach = 2;

    [LibraryImport(LibraryName, EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MountNative(string? source, string target, string? fileSystemType, ulong flags, string? data);

    [LibraryImport(LibraryName, EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Umount2Native(string target, int flags);

    internal static void Mount(string? source, string target, string? fileSystemType, ulong flags, string? data)
    {
        ThrowIfFailed(
            MountNative(source, target, fileSystemType, flags, data),
            $"mount {source ?? "none"} on {target} (type {fileSystemType ?? "none"}, flags 0x{flags:x}, {data ?? "no data"})");
    }

    /// <summary>Unmounts; returns false when nothing was mounted there (EINVAL) or it is gone (ENOENT).</summary>
    internal static bool Unmount(string target, int flags = 0)
    {
        if (Umount2Native(target, flags) == 0)
        {
            return true;
        }

        var errno = Marshal.GetLastPInvokeError();
        if (errno is 22 or 2)
        {
            return false;
        }

        throw new IOException($"umount {target}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno);
    }
}
