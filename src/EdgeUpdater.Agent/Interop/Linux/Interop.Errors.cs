using System.Runtime.InteropServices;

namespace EdgeUpdater.Agent.Interop.Linux;

/// <summary>Turns a failed libc call into an <see cref="IOException"/> carrying the errno text.</summary>
internal static partial class Libc
{
    internal const string LibraryName = "libc";

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
