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

    [LibraryImport("libc", EntryPoint = "sync_file_range", SetLastError = true)]
    public static partial int SyncFileRange(Microsoft.Win32.SafeHandles.SafeFileHandle fd, long offset, long nbytes, uint flags);

    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    public static partial int Fallocate(Microsoft.Win32.SafeHandles.SafeFileHandle fd, int mode, long offset, long length);
}
