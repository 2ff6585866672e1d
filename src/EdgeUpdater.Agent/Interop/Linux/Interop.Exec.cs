using System.Runtime.InteropServices;

namespace EdgeUpdater.Agent.Interop.Linux;

/// <summary>execve(2): replace the re-executed agent with the workload.</summary>
internal static partial class Libc
{
    [LibraryImport(LibraryName, EntryPoint = "execve", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ExecveNative(string path, [In] string?[] argv, [In] string?[] envp);

    /// <summary>Only returns by throwing: on success the process image is replaced.</summary>
    internal static IOException Execve(string path, IReadOnlyList<string> arguments, IReadOnlyList<string> environment)
    {
        string?[] argv = [.. arguments, null];
        string?[] envp = [.. environment, null];
        ExecveNative(path, argv, envp);
        return LastError($"execve {path}");
    }
}
