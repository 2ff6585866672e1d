using EdgeUpdater.SquashFs.Interop;

namespace EdgeUpdater.SquashFs.Compression;

/// <summary>lz4 through liblz4: LZ4_compress_default, or LZ4_compress_HC at LZ4HC_CLEVEL_MAX with -Xhc.</summary>
internal sealed unsafe class Lz4Codec : SquashFsCodec
{
    public Lz4Codec(CompressorOptions options, uint blockSize, CodecRole role)
        : base(options, blockSize, role)
    {
        Identity = "lz4/" + NativeString(Lz4.VersionString());
    }

    public override string Identity { get; }

    public override int Decompress(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        fixed (byte* src = source)
        fixed (byte* dst = destination)
        {
            var rc = Lz4.DecompressSafe(src, dst, source.Length, destination.Length);
            if (rc < 0)
            {
                throw DecompressFailed($"liblz4 error {rc}");
            }

            return rc;
        }
    }

    protected override int CompressCore(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        fixed (byte* src = source)
        fixed (byte* dst = destination)
        {
            return Options.Lz4HighCompression
                ? Lz4.CompressHC(src, dst, source.Length, destination.Length, Lz4.HighCompressionMaxLevel)
                : Lz4.CompressDefault(src, dst, source.Length, destination.Length);
        }
    }
}
