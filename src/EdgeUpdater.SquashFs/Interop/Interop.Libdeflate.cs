using System.Runtime.InteropServices;

namespace EdgeUpdater.SquashFs.Interop;

/// <summary>
/// libdeflate (libdeflate.so.0): an inflater about twice as fast as zlib's, used to read gzip blocks when
/// installed. Optional; zlib stays the fallback and the only compressor (the bytes it writes are the ones
/// mksquashfs writes), and any correct inflater returns the same bytes.
/// </summary>
internal static unsafe partial class Libdeflate
{
    private const string Library = "libdeflate.so.0";

    public const int Success = 0;
    public const int InsufficientSpace = 3;

    [LibraryImport(Library, EntryPoint = "libdeflate_alloc_decompressor")]
    public static partial nint AllocDecompressor();

    [LibraryImport(Library, EntryPoint = "libdeflate_free_decompressor")]
    public static partial void FreeDecompressor(nint decompressor);

    /// <summary>Decompresses one zlib-wrapped stream (header, deflate data, Adler-32), reporting the bytes consumed and produced.</summary>
    [LibraryImport(Library, EntryPoint = "libdeflate_zlib_decompress_ex")]
    public static partial int ZlibDecompress(nint decompressor, byte* input, nuint inputLength, byte* output, nuint outputCapacity, nuint* inputUsed, nuint* outputWritten);
}
