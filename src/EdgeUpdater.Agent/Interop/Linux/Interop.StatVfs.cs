using System.Runtime.InteropServices;

namespace EdgeUpdater.Agent.Interop.Linux;

/// <summary>statvfs(3): free space before a download starts.</summary>
internal static partial class Libc
{
    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct StatVfsBuffer
    {
        public ulong BlockSize;
        public ulong FragmentSize;
        public ulong Blocks;
        public ulong BlocksFree;
        public ulong BlocksAvailable;
        public ulong Files;
        public ulong FilesFree;
        public ulong FilesAvailable;
        public ulong FileSystemId;
        public ulong Flags;
        public ulong NameMax;
        public fixed int Spare[6];
    }

    [LibraryImport(LibraryName, EntryPoint = "statvfs", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int StatVfsNative(string path, StatVfsBuffer* buffer);

    /// <summary>Bytes an unprivileged writer may still allocate on the file system holding <paramref name="path"/>.</summary>
    internal static unsafe long AvailableBytes(string path)
    {
        StatVfsBuffer buffer;
        ThrowIfFailed(StatVfsNative(path, &buffer), $"statvfs {path}");
        return (long)(buffer.BlocksAvailable * buffer.FragmentSize);
    }
}
