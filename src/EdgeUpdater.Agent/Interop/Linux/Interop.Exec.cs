using System.Runtime.InteropServices;

namespace EdgeUpdater.Agent.Interop.Linux;

/// <summary>execve(2) and write(2) on stderr: replace the re-executed agent with the workload.</summary>
internal static partial class Libc
{
    [LibraryImport(LibraryName, EntryPoint = "execve", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ExecveNative(string path, [In] string?[] argv, [In] string?[] envp);

    [LibraryImport(LibraryName, EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint WriteNative(int fd, byte* buffer, nuint count);

    /// <summary>Writes straight to file descriptor 2: after chroot, Console could not load what it needs.</summary>
    internal static unsafe void WriteStandardError(string text)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        fixed (byte* pointer = bytes)
        {
            WriteNative(2, pointer, (nuint)bytes.Length);
        }
    }

    /// <summary>Only returns by throwing: on success the process image is replaced.</summary>
    internal static IOException Execve(string path, IReadOnlyList<string> arguments, IReadOnlyList<string> environment)
    {
        string?[] argv = [.. arguments, null];
        string?[] envp = [.. environment, null];
        ExecveNative(path, argv, envp);
        return LastError($"execve {path}");
    }
}
