using System.Runtime.InteropServices;

namespace EdgeUpdater.Delta.Interop;

/// <summary>liblzma (liblzma.so.5): raw LZMA2 streams with an optional BCJ filter, for content frames.</summary>
internal static unsafe partial class Lzma
{
    private const string Library = "liblzma.so.5";

    public const int Ok = 0;
    public const int BufError = 10;
    public const ulong FilterLzma2 = 0x21;
    public const ulong VliUnknown = ulong.MaxValue;

    /// <summary>Bytes reserved for lzma_options_lzma (about 112 bytes in liblzma 5.x; it fills what it knows).</summary>
    public const int OptionsSize = 256;

    [StructLayout(LayoutKind.Sequential)]
    public struct Filter
    {
        public ulong Id;
        public void* Options;
    }

    [LibraryImport(Library, EntryPoint = "lzma_version_number")]
    public static partial uint VersionNumber();

    [LibraryImport(Library, EntryPoint = "lzma_version_string")]
    public static partial byte* VersionString();

    /// <summary>Returns true (non-zero) on error (lzma_bool).</summary>
    [LibraryImport(Library, EntryPoint = "lzma_lzma_preset")]
    public static partial byte LzmaPreset(void* options, uint preset);

    [LibraryImport(Library, EntryPoint = "lzma_filter_encoder_is_supported")]
    public static partial byte FilterEncoderIsSupported(ulong id);

    [LibraryImport(Library, EntryPoint = "lzma_filter_decoder_is_supported")]
    public static partial byte FilterDecoderIsSupported(ulong id);

    [LibraryImport(Library, EntryPoint = "lzma_raw_buffer_encode")]
    public static partial int RawBufferEncode(Filter* filters, void* allocator, byte* input, nuint inputSize, byte* output, nuint* outputPosition, nuint outputSize);

    [LibraryImport(Library, EntryPoint = "lzma_raw_buffer_decode")]
    public static partial int RawBufferDecode(Filter* filters, void* allocator, byte* input, nuint* inputPosition, nuint inputSize, byte* output, nuint* outputPosition, nuint outputSize);
}
