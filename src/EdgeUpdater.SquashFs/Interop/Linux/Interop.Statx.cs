using System.Runtime.InteropServices;

namespace EdgeUpdater.SquashFs.Interop.Linux;

/// <summary>statx(2): one struct layout on every Linux architecture, unlike struct stat.</summary>
internal static unsafe partial class Statx
{
    public const int AtFdCwd = -100;
    public const int AtSymlinkNoFollow = 0x100;
    public const uint BasicStats = 0x7FF;
    private const uint TypeAndInode = 0x101; // STATX_TYPE | STATX_INO
    private const ushort FileTypeMask = 0xF000;
    private const ushort BlockDeviceType = 0x6000;

    /// <summary>struct statx (256 bytes).</summary>
    [StructLayout(LayoutKind.Sequential, Size = 256)]
    public struct Result
    {
        public uint Mask;
        public uint BlockSize;
        public ulong Attributes;
        public uint LinkCount;
        public uint Uid;
        public uint Gid;
        public ushort Mode;
        public ushort Padding1;
        public ulong Inode;
        public ulong Size;
        public ulong Blocks;
        public ulong AttributesMask;
        public long AccessSeconds;
        public uint AccessNanoseconds;
        public int Padding2;
        public long BirthSeconds;
        public uint BirthNanoseconds;
        public int Padding3;
        public long ChangeSeconds;
        public uint ChangeNanoseconds;
        public int Padding4;
        public long ModifySeconds;
        public uint ModifyNanoseconds;
        public int Padding5;
        public uint RdevMajor;
        public uint RdevMinor;
        public uint DevMajor;
        public uint DevMinor;
    }

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Call(int dirfd, string path, int flags, uint mask, Result* result);

    /// <summary>lstat-like without exceptions: false when the path does not exist (or cannot be stat'ed).</summary>
    public static bool TryLStat(string path, out Result result)
    {
        Result local;
        var ok = Call(AtFdCwd, path, AtSymlinkNoFollow, BasicStats, &local) == 0;
        result = local;
        return ok;
    }

    /// <summary>lstat-like: does not follow a final symlink. Throws IOException with the errno text.</summary>
    public static Result LStat(string path)
    {
        Result result;
        if (Call(AtFdCwd, path, AtSymlinkNoFollow, BasicStats, &result) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"statx '{path}': {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }

        return result;
    }

    /// <summary>
    /// True when both paths name the same file after links (device and inode), or the same block device
    /// through different nodes (its device number); false when either does not exist. A C library without
    /// statx (glibc before 2.28, older musl) gets the comparison of the full paths.
    /// </summary>
    public static bool SameFile(string first, string second)
    {
        Result a, b;
        try
        {
            if (Call(AtFdCwd, first, 0, TypeAndInode, &a) != 0 || Call(AtFdCwd, second, 0, TypeAndInode, &b) != 0)
            {
                return false;
            }
        }
        catch (EntryPointNotFoundException)
        {
            return string.Equals(Path.GetFullPath(first), Path.GetFullPath(second), StringComparison.Ordinal);
        }

        return IsBlockDevice(a) && IsBlockDevice(b)
            ? a.RdevMajor == b.RdevMajor && a.RdevMinor == b.RdevMinor
            : a.Inode == b.Inode && a.DevMajor == b.DevMajor && a.DevMinor == b.DevMinor;

        static bool IsBlockDevice(in Result stat) => (stat.Mode & FileTypeMask) == BlockDeviceType;
    }
}
