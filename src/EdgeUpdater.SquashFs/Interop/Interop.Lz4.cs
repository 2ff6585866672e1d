using System.Runtime.InteropServices;

namespace EdgeUpdater.SquashFs.Interop;

/// <summary>liblz4 (liblz4.so.1), the library mksquashfs uses for lz4.</summary>
internal static unsafe partial class Lz4
{
    private const string Library = "liblz4.so.1";

    /// <summary>LZ4HC_CLEVEL_MAX, the level mksquashfs -Xhc uses.</summary>
    public const int HighCompressionMaxLevel = 12;

    [LibraryImport(Library, EntryPoint = "LZ4_versionString")]
    public static partial byte* VersionString();

    [LibraryImport(Library, EntryPoint = "LZ4_compress_default")]
    public static partial int CompressDefault(byte* src, byte* dst, int srcSize, int dstCapacity);

    [LibraryImport(Library, EntryPoint = "LZ4_compress_HC")]
    public static partial int CompressHC(byte* src, byte* dst, int srcSize, int dstCapacity, int level);

    [LibraryImport(Library, EntryPoint = "LZ4_decompress_safe")]
    public static partial int DecompressSafe(byte* src, byte* dst, int compressedSize, int dstCapacity);
}
