using System.Runtime.InteropServices;

namespace EdgeUpdater.SquashFs.Interop.Linux;

/// <summary>llistxattr(2) / lgetxattr(2) / lsetxattr(2): xattrs of a path without following symlinks.</summary>
internal static unsafe partial class Xattr
{
    private const int ENODATA = 61;
    private const int ENOTSUP = 95;
    private const int ERANGE = 34;

    [LibraryImport("libc", EntryPoint = "llistxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint ListRaw(string path, byte* list, nuint size);

    [LibraryImport("libc", EntryPoint = "lgetxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint GetRaw(string path, string name, byte* value, nuint size);

    [LibraryImport("libc", EntryPoint = "lsetxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetRaw(string path, string name, byte* value, nuint size, int flags);

    /// <summary>Names of the xattrs of <paramref name="path"/> (empty when the file system has none).</summary>
    public static List<string> List(string path)
    {
        var result = new List<string>();
        for (var attempt = 0; attempt < 4; attempt++)
        {
            var size = ListRaw(path, null, 0);
            if (size < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == ENOTSUP)
                {
                    return result;
                }

                throw Error("llistxattr", path, errno);
            }

            if (size == 0)
            {
                return result;
            }

            var buffer = new byte[size];
            fixed (byte* p = buffer)
            {
                var got = ListRaw(path, p, (nuint)buffer.Length);
                if (got < 0)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    if (errno == ERANGE)
                    {
                        continue;
                    }

                    throw Error("llistxattr", path, errno);
                }

                foreach (var name in System.Text.Encoding.UTF8.GetString(buffer, 0, (int)got).Split('\0', StringSplitOptions.RemoveEmptyEntries))
                {
                    result.Add(name);
                }

                return result;
            }
        }

        throw new IOException($"llistxattr '{path}': the list kept changing size.");
    }

    /// <summary>Value of xattr <paramref name="name"/>, or null when it vanished.</summary>
    public static byte[]? Get(string path, string name)
    {
        for (var attempt = 0; attempt < 4; attempt++)
        {
            var size = GetRaw(path, name, null, 0);
            if (size < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == ENODATA)
                {
                    return null;
                }

                throw Error("lgetxattr", path, errno);
            }

            var buffer = new byte[size];
            fixed (byte* p = buffer)
            {
                var got = GetRaw(path, name, p, (nuint)buffer.Length);
                if (got >= 0)
                {
                    return buffer.AsSpan(0, (int)got).ToArray();
                }

                var errno = Marshal.GetLastPInvokeError();
                if (errno != ERANGE)
                {
                    throw Error("lgetxattr", path, errno);
                }
            }
        }

        throw new IOException($"lgetxattr '{path}' {name}: the value kept changing size.");
    }

    /// <summary>Sets an xattr without following a final symlink.</summary>
    public static void Set(string path, string name, ReadOnlySpan<byte> value)
    {
        fixed (byte* p = value)
        {
            if (SetRaw(path, name, p, (nuint)value.Length, 0) != 0)
            {
                throw Error($"lsetxattr {name}", path, Marshal.GetLastPInvokeError());
            }
        }
    }

    private static IOException Error(string call, string path, int errno) =>
        new($"{call} '{path}': {Marshal.GetPInvokeErrorMessage(errno)}", errno);
}
