using System.Runtime.InteropServices;

namespace EdgeUpdater.SquashFs.Interop.Linux;

/// <summary>statx(2): one struct layout on every Linux architecture, unlike struct stat.</summary>
internal static unsafe partial class Statx
{
    public const int AtFdCwd = -100;
    public const int AtSymlinkNoFollow = 0x100;
    public const uint BasicStats = 0x7FF;

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
}
