using System.Runtime.InteropServices;

namespace EdgeUpdater.Agent.Interop.Linux;

/// <summary>open(2)+fsync(2) of a directory, so that a rename in it survives a power cut.</summary>
internal static partial class Libc
{
    private const int OpenReadOnly = 0;
    // O_DIRECTORY differs by architecture: 0x10000 on x86 is O_DIRECT on ARM, where O_DIRECTORY is 0x4000.
    private static int OpenDirectory => RuntimeInformation.ProcessArchitecture is Architecture.Arm or Architecture.Arm64 ? 0x4000 : 0x10000;
    private const int OpenCloseOnExec = 0x80000;

    [LibraryImport(LibraryName, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenNative(string path, int flags);

    [LibraryImport(LibraryName, EntryPoint = "fsync", SetLastError = true)]
    private static partial int FsyncNative(int fd);

    [LibraryImport(LibraryName, EntryPoint = "close", SetLastError = true)]
    private static partial int CloseNative(int fd);

    internal static void FsyncDirectory(string path)
    {
        var fd = OpenNative(path, OpenReadOnly | OpenDirectory | OpenCloseOnExec);
        if (fd < 0)
        {
            throw LastError($"open directory {path}");
        }

        try
        {
            ThrowIfFailed(FsyncNative(fd), $"fsync directory {path}");
        }
        finally
        {
            CloseNative(fd);
        }
    }
}
