using System.Runtime.InteropServices;

namespace EdgeUpdater.Delta.Interop;

/// <summary>libc calls .NET has no API for.</summary>
internal static partial class Libc
{
    /// <summary>sync_file_range flag: start writeback of the range's dirty pages and return without waiting.</summary>
    public const uint SyncFileRangeWrite = 2;

    /// <summary>fallocate mode: allocate the blocks but leave the file's size as it is.</summary>
    public const int FallocateKeepSize = 1;

    /// <summary>errno: no space left on the device.</summary>
    public const int ENOSPC = 28;

    /// <summary>errno: disk quota exceeded (the same number on x86-64 and arm64).</summary>
    public const int EDQUOT = 122;

    /// <summary>errno: larger than the file system's largest file (vfat's 4 GiB, ext4's 16 TiB).</summary>
    public const int EFBIG = 27;

    /// <summary>
    /// ENOSPC or EDQUOT: the storage has no room. .NET reports an errno it has no exception type for as an
    /// <see cref="System.IO.IOException"/> whose HResult is the errno.
    /// </summary>
    public static bool IsNoRoom(int errno) => errno is ENOSPC or EDQUOT;

    /// <summary>
    /// True when both paths name the same file after links (device and inode), or the same block device
    /// through different nodes (its device number); false when either does not exist. A C library without
    /// statx (glibc before 2.28, older musl) gets the comparison of the full paths.
    /// </summary>
    public static unsafe bool SameFile(string first, string second)
    {
        var a = stackalloc byte[StatxSize];
        var b = stackalloc byte[StatxSize];
        try
        {
            if (Statx(AtCurrentDirectory, first, 0, StatxType | StatxIno, a) != 0 || Statx(AtCurrentDirectory, second, 0, StatxType | StatxIno, b) != 0)
            {
                return false;
            }
        }
        catch (EntryPointNotFoundException)
        {
            return string.Equals(Path.GetFullPath(first), Path.GetFullPath(second), StringComparison.Ordinal);
        }

        static bool IsBlockDevice(byte* statx) => (*(ushort*)(statx + StatxModeOffset) & FileTypeMask) == BlockDeviceType;
        return IsBlockDevice(a) && IsBlockDevice(b)
            ? *(ulong*)(a + StatxRdevOffset) == *(ulong*)(b + StatxRdevOffset)
            : *(ulong*)(a + StatxInoOffset) == *(ulong*)(b + StatxInoOffset) && *(ulong*)(a + StatxDevOffset) == *(ulong*)(b + StatxDevOffset);
    }

    // statx(2): its struct is laid out the same on every architecture, unlike stat's.
    private const int AtCurrentDirectory = -100;
    private const uint StatxType = 0x1;
    private const uint StatxIno = 0x100;
    private const int StatxSize = 256;
    private const int StatxModeOffset = 28;
    private const int StatxInoOffset = 32;
    private const int StatxRdevOffset = 128; // stx_rdev_major, stx_rdev_minor
    private const int StatxDevOffset = 136; // stx_dev_major, stx_dev_minor
    private const int FileTypeMask = 0xF000;
    private const int BlockDeviceType = 0x6000;

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int Statx(int directory, string path, int flags, uint mask, byte* result);

    [LibraryImport("libc", EntryPoint = "sync_file_range", SetLastError = true)]
    public static partial int SyncFileRange(Microsoft.Win32.SafeHandles.SafeFileHandle fd, long offset, long nbytes, uint flags);

    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    public static partial int Fallocate(Microsoft.Win32.SafeHandles.SafeFileHandle fd, int mode, long offset, long length);
}
