using System.Runtime.InteropServices;

namespace EdgeUpdater.SquashFs.Interop;

/// <summary>liblzo2 (liblzo2.so.2), optional: only for reading lzo images.</summary>
internal static unsafe partial class Lzo
{
    private const string Library = "liblzo2.so.2";

    [LibraryImport(Library, EntryPoint = "lzo_version_string")]
    public static partial byte* VersionString();

    [LibraryImport(Library, EntryPoint = "lzo1x_decompress_safe")]
    public static partial int DecompressSafe(byte* src, nuint srcLength, byte* dst, nuint* dstLength, void* workMemory);
}
