using System.Runtime.InteropServices;

namespace EdgeUpdater.SquashFs.Interop.Linux;

/// <summary>mknod(2), link(2), lchown(2) and utimensat(2) for extracting images.</summary>
internal static unsafe partial class FileNodes
{
    private const int AtSymlinkNoFollow = 0x100;

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "mknod", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MknodRaw(string path, uint mode, ulong device);

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LinkRaw(string existing, string path);

    [LibraryImport("libc", EntryPoint = "lchown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LchownRaw(string path, uint uid, uint gid);

    [LibraryImport("libc", EntryPoint = "utimensat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int UtimensatRaw(int dirfd, string path, TimeSpec* times, int flags);

    [LibraryImport("libc", EntryPoint = "chmod", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ChmodRaw(string path, uint mode);

    /// <summary>Creates a device node, FIFO or socket node; mode includes the type bits.</summary>
    public static void Mknod(string path, uint mode, uint major, uint minor)
    {
        // glibc's makedev encoding.
        var device = ((ulong)(major & 0xFFFFF000) << 32) | ((ulong)(major & 0xFFF) << 8) | ((ulong)(minor & 0xFFFFFF00) << 12) | (minor & 0xFF);
        Check(MknodRaw(path, mode, device), "mknod", path);
    }

    /// <summary>Creates a hard link.</summary>
    public static void Link(string existing, string path) => Check(LinkRaw(existing, path), "link", path);

    /// <summary>Changes the owner without following a final symlink.</summary>
    public static void Lchown(string path, uint uid, uint gid) => Check(LchownRaw(path, uid, gid), "lchown", path);

    /// <summary>Sets permission bits (including setuid/setgid/sticky).</summary>
    public static void Chmod(string path, uint mode) => Check(ChmodRaw(path, mode), "chmod", path);

    /// <summary>Sets atime and mtime without following a final symlink.</summary>
    public static void SetTimes(string path, long seconds)
    {
        var times = stackalloc TimeSpec[2];
        times[0] = new TimeSpec { Seconds = seconds };
        times[1] = new TimeSpec { Seconds = seconds };
        Check(UtimensatRaw(-100, path, times, AtSymlinkNoFollow), "utimensat", path);
    }

    private static void Check(int rc, string call, string path)
    {
        if (rc != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"{call} '{path}': {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
    }
}
