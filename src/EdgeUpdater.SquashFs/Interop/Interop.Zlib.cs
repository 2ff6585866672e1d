using System.Runtime.InteropServices;

namespace EdgeUpdater.SquashFs.Interop;

/// <summary>zlib (libz.so.1), the library mksquashfs uses for gzip.</summary>
internal static unsafe partial class Zlib
{
    private const string Library = "libz.so.1";

    public const int ZOk = 0;
    public const int ZStreamEnd = 1;
    public const int ZBufError = -5;
    public const int ZFinish = 4;
    public const int ZDeflated = 8;

    /// <summary>z_stream on LP64 Linux (uLong is 64-bit).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct ZStream
    {
        public byte* NextIn;
        public uint AvailIn;
        public nuint TotalIn;
        public byte* NextOut;
        public uint AvailOut;
        public nuint TotalOut;
        public nint Msg;
        public nint State;
        public nint ZAlloc;
        public nint ZFree;
        public nint Opaque;
        public int DataType;
        public nuint Adler;
        public nuint Reserved;
    }

    [LibraryImport(Library, EntryPoint = "zlibVersion")]
    public static partial byte* ZlibVersion();

    [LibraryImport(Library, EntryPoint = "deflateInit2_")]
    public static partial int DeflateInit2(ZStream* strm, int level, int method, int windowBits, int memLevel, int strategy, byte* version, int streamSize);

    [LibraryImport(Library, EntryPoint = "deflateReset")]
    public static partial int DeflateReset(ZStream* strm);

    [LibraryImport(Library, EntryPoint = "deflateParams")]
    public static partial int DeflateParams(ZStream* strm, int level, int strategy);

    [LibraryImport(Library, EntryPoint = "deflate")]
    public static partial int Deflate(ZStream* strm, int flush);

    [LibraryImport(Library, EntryPoint = "deflateEnd")]
    public static partial int DeflateEnd(ZStream* strm);

    [LibraryImport(Library, EntryPoint = "inflateInit_")]
    public static partial int InflateInit(ZStream* strm, byte* version, int streamSize);

    [LibraryImport(Library, EntryPoint = "inflateReset")]
    public static partial int InflateReset(ZStream* strm);

    [LibraryImport(Library, EntryPoint = "inflate")]
    public static partial int Inflate(ZStream* strm, int flush);

    [LibraryImport(Library, EntryPoint = "inflateEnd")]
    public static partial int InflateEnd(ZStream* strm);
}
