using System.Runtime.InteropServices;

namespace EdgeUpdater.SquashFs.Interop;

/// <summary>libzstd (libzstd.so.1), the library mksquashfs uses for zstd.</summary>
internal static unsafe partial class Zstd
{
    private const string Library = "libzstd.so.1";

    [LibraryImport(Library, EntryPoint = "ZSTD_versionString")]
    public static partial byte* VersionString();

    [LibraryImport(Library, EntryPoint = "ZSTD_createCCtx")]
    public static partial nint CreateCCtx();

    [LibraryImport(Library, EntryPoint = "ZSTD_freeCCtx")]
    public static partial nuint FreeCCtx(nint cctx);

    [LibraryImport(Library, EntryPoint = "ZSTD_compressCCtx")]
    public static partial nuint CompressCCtx(nint cctx, byte* dst, nuint dstCapacity, byte* src, nuint srcSize, int level);

    [LibraryImport(Library, EntryPoint = "ZSTD_createDCtx")]
    public static partial nint CreateDCtx();

    [LibraryImport(Library, EntryPoint = "ZSTD_freeDCtx")]
    public static partial nuint FreeDCtx(nint dctx);

    [LibraryImport(Library, EntryPoint = "ZSTD_decompressDCtx")]
    public static partial nuint DecompressDCtx(nint dctx, byte* dst, nuint dstCapacity, byte* src, nuint srcSize);

    [LibraryImport(Library, EntryPoint = "ZSTD_isError")]
    public static partial uint IsError(nuint code);

    [LibraryImport(Library, EntryPoint = "ZSTD_getErrorName")]
    public static partial byte* GetErrorName(nuint code);
}
