using System.Runtime.InteropServices;

namespace EdgeUpdater.Delta.Interop;

/// <summary>libc calls .NET has no API for.</summary>
internal static partial class Libc
{
    /// <summary>sync_file_range flag: start writeback of the range's dirty pages and return without waiting.</summary>
    public const uint SyncFileRangeWrite = 2;

    [LibraryImport("libc", EntryPoint = "sync_file_range", SetLastError = true)]
    public static partial int SyncFileRange(Microsoft.Win32.SafeHandles.SafeFileHandle fd, long offset, long nbytes, uint flags);
}
