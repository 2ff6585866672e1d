using System.Runtime.InteropServices;

namespace EdgeUpdater.Agent.Interop.Linux;

/// <summary>kill(2): polite stops for workloads and the fault-injection self-kill.</summary>
internal static partial class Libc
{
    internal const int SigKill = 9;
    internal const int SigTerm = 15;

    [LibraryImport(LibraryName, EntryPoint = "kill", SetLastError = true)]
    private static partial int KillNative(int pid, int signal);

    [LibraryImport(LibraryName, EntryPoint = "getpid")]
    internal static partial int GetProcessId();

    /// <summary>Sends <paramref name="signal"/>; returns false when the process no longer exists (ESRCH).</summary>
    internal static bool Kill(int pid, int signal)
    {
        if (KillNative(pid, signal) == 0)
        {
            return true;
        }

        var errno = Marshal.GetLastPInvokeError();
        return errno == 3 ? false : throw new IOException($"kill({pid}, {signal}): {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno);
    }
}
