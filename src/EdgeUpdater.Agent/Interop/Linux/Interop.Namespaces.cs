using System.Runtime.InteropServices;

namespace EdgeUpdater.Agent.Interop.Linux;

/// <summary>unshare(2), chroot(2), chdir(2): the workload's own mount namespace and root.</summary>
internal static partial class Libc
{
    internal const int CloneNewNs = 0x00020000;

    [LibraryImport(LibraryName, EntryPoint = "unshare", SetLastError = true)]
    private static partial int UnshareNative(int flags);

    [LibraryImport(LibraryName, EntryPoint = "chroot", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ChrootNative(string path);

    [LibraryImport(LibraryName, EntryPoint = "chdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ChdirNative(string path);

    internal static void Unshare(int flags) => ThrowIfFailed(UnshareNative(flags), $"unshare(0x{flags:x})");

    internal static void Chroot(string path) => ThrowIfFailed(ChrootNative(path), $"chroot {path}");

    internal static void Chdir(string path) => ThrowIfFailed(ChdirNative(path), $"chdir {path}");
}
