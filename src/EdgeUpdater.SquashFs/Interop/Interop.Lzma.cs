using System.Runtime.InteropServices;

namespace EdgeUpdater.SquashFs.Interop;

/// <summary>liblzma (liblzma.so.5), the library mksquashfs uses for xz.</summary>
internal static unsafe partial class Lzma
{
    private const string Library = "liblzma.so.5";

    public const int LzmaOk = 0;
    public const int LzmaBufError = 10;
    public const uint CheckCrc32 = 1;
    public const ulong FilterLzma2 = 0x21;
    public const ulong VliUnknown = ulong.MaxValue;
    public const uint PresetExtreme = 0x80000000;

    /// <summary>Size reserved for lzma_options_lzma (the real struct is ~112 bytes; liblzma fills it).</summary>
    public const int OptionsSize = 256;

    [StructLayout(LayoutKind.Sequential)]
    public struct Filter
    {
        public ulong Id;
        public void* Options;
    }

    [LibraryImport(Library, EntryPoint = "lzma_version_string")]
    public static partial byte* VersionString();

    /// <summary>Returns true on error (lzma_bool).</summary>
    [LibraryImport(Library, EntryPoint = "lzma_lzma_preset")]
    public static partial byte LzmaPreset(void* options, uint preset);

    [LibraryImport(Library, EntryPoint = "lzma_stream_buffer_encode")]
    public static partial int StreamBufferEncode(Filter* filters, uint check, void* allocator, byte* input, nuint inputSize, byte* output, nuint* outputPosition, nuint outputSize);

    [LibraryImport(Library, EntryPoint = "lzma_stream_buffer_decode")]
    public static partial int StreamBufferDecode(ulong* memlimit, uint flags, void* allocator, byte* input, nuint* inputPosition, nuint inputSize, byte* output, nuint* outputPosition, nuint outputSize);
}
