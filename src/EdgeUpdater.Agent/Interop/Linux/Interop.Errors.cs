using System.Runtime.InteropServices;

namespace EdgeUpdater.Agent.Interop.Linux;

/// <summary>Turns a failed libc call into an <see cref="IOException"/> carrying the errno text.</summary>
internal static partial class Libc
{
    internal const string LibraryName = "libc";

    /// <summary>errno: no space left on the device.</summary>
    internal const int ENOSPC = 28;

    /// <summary>errno: disk quota exceeded (the same number on x86-64 and arm64).</summary>
    internal const int EDQUOT = 122;

    /// <summary>
    /// The file system has no room: .NET reports an errno it has no exception type for as an
    /// <see cref="IOException"/> whose HResult is the errno.
    /// </summary>
    internal static bool IsNoRoom(IOException e) => e.HResult is ENOSPC or EDQUOT;

    /// <summary>Throws for the last P/Invoke error: "<paramref name="what"/>: No such file or directory (errno 2)".</summary>
    internal static IOException LastError(string what)
    {
        var errno = Marshal.GetLastPInvokeError();
        return new IOException($"{what}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno);
    }

    internal static void ThrowIfFailed(int result, string what)
    {
        if (result < 0)
        {
            throw LastError(what);
        }
    }
}
