using System.Runtime.InteropServices;

namespace EdgeUpdater.Agent.Interop.Linux;

/// <summary>setgroups(2), setgid(2), setuid(2), chown(2): drop to the workload's user (glibc applies them to every thread).</summary>
internal static partial class Libc
{
    [LibraryImport(LibraryName, EntryPoint = "setgroups", SetLastError = true)]
    private static unsafe partial int SetGroupsNative(nuint size, uint* groups);

    [LibraryImport(LibraryName, EntryPoint = "setgid", SetLastError = true)]
    private static partial int SetGidNative(uint gid);

    [LibraryImport(LibraryName, EntryPoint = "setuid", SetLastError = true)]
    private static partial int SetUidNative(uint uid);

    [LibraryImport(LibraryName, EntryPoint = "chown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ChownNative(string path, uint uid, uint gid);

    [LibraryImport(LibraryName, EntryPoint = "geteuid")]
    internal static partial uint GetEffectiveUserId();

    internal static unsafe void SetGroups(ReadOnlySpan<uint> groups)
    {
        fixed (uint* pointer = groups)
        {
            ThrowIfFailed(SetGroupsNative((nuint)groups.Length, pointer), $"setgroups({string.Join(',', groups.ToArray())})");
        }
    }

    internal static void SetGid(uint gid) => ThrowIfFailed(SetGidNative(gid), $"setgid({gid})");

    internal static void Chown(string path, uint uid, uint gid) => ThrowIfFailed(ChownNative(path, uid, gid), $"chown {uid}:{gid} {path}");

    internal static void SetUid(uint uid) => ThrowIfFailed(SetUidNative(uid), $"setuid({uid})");
}
