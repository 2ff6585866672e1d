using System.Runtime.InteropServices;

namespace EdgeUpdater.Delta.Interop;

/// <summary>libzstd (libzstd.so.1): the advanced API used for prefix ("patch-from") frames.</summary>
internal static unsafe partial class Zstd
{
    private const string Library = "libzstd.so.1";

    public const int CompressionLevel = 100;
    public const int WindowLog = 101;
    public const int HashLog = 102;
    public const int ChainLog = 103;
    public const int SearchLog = 104;
    public const int MinMatch = 105;
    public const int TargetLength = 106;
    public const int Strategy = 107;
    public const int EnableLongDistanceMatching = 160;
    public const int LdmMinMatch = 162;
    public const int ContentSizeFlag = 200;
    public const int ChecksumFlag = 201;
    public const int DictIdFlag = 202;
    public const int DecompressWindowLogMax = 100;
    public const int ResetSessionAndParameters = 3;
    public const ulong ContentSizeUnknown = ulong.MaxValue;
    public const ulong ContentSizeError = ulong.MaxValue - 1;

    [LibraryImport(Library, EntryPoint = "ZSTD_versionString")]
    public static partial byte* VersionString();

    [LibraryImport(Library, EntryPoint = "ZSTD_createCCtx")]
    public static partial nint CreateCCtx();

    [LibraryImport(Library, EntryPoint = "ZSTD_freeCCtx")]
    public static partial nuint FreeCCtx(nint cctx);

    [LibraryImport(Library, EntryPoint = "ZSTD_CCtx_reset")]
    public static partial nuint CCtxReset(nint cctx, int directive);

    [LibraryImport(Library, EntryPoint = "ZSTD_CCtx_setParameter")]
    public static partial nuint CCtxSetParameter(nint cctx, int parameter, int value);

    [LibraryImport(Library, EntryPoint = "ZSTD_CCtx_refPrefix")]
    public static partial nuint CCtxRefPrefix(nint cctx, byte* prefix, nuint prefixSize);

    [LibraryImport(Library, EntryPoint = "ZSTD_compress2")]
    public static partial nuint Compress2(nint cctx, byte* dst, nuint dstCapacity, byte* src, nuint srcSize);

    [LibraryImport(Library, EntryPoint = "ZSTD_compressBound")]
    public static partial nuint CompressBound(nuint srcSize);

    [LibraryImport(Library, EntryPoint = "ZSTD_createDCtx")]
    public static partial nint CreateDCtx();

    [LibraryImport(Library, EntryPoint = "ZSTD_freeDCtx")]
    public static partial nuint FreeDCtx(nint dctx);

    [LibraryImport(Library, EntryPoint = "ZSTD_DCtx_reset")]
    public static partial nuint DCtxReset(nint dctx, int directive);

    [LibraryImport(Library, EntryPoint = "ZSTD_DCtx_setParameter")]
    public static partial nuint DCtxSetParameter(nint dctx, int parameter, int value);

    [LibraryImport(Library, EntryPoint = "ZSTD_DCtx_refPrefix")]
    public static partial nuint DCtxRefPrefix(nint dctx, byte* prefix, nuint prefixSize);

    [LibraryImport(Library, EntryPoint = "ZSTD_decompressDCtx")]
    public static partial nuint DecompressDCtx(nint dctx, byte* dst, nuint dstCapacity, byte* src, nuint srcSize);

    [LibraryImport(Library, EntryPoint = "ZSTD_getFrameContentSize")]
    public static partial ulong GetFrameContentSize(byte* src, nuint srcSize);

    [LibraryImport(Library, EntryPoint = "ZSTD_isError")]
    public static partial uint IsError(nuint code);

    [LibraryImport(Library, EntryPoint = "ZSTD_getErrorName")]
    public static partial byte* GetErrorName(nuint code);
}
