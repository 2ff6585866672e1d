using EdgeUpdater.SquashFs.Interop;

namespace EdgeUpdater.SquashFs.Compression;

/// <summary>zstd through libzstd: ZSTD_compressCCtx at the stored level (default 15).</summary>
internal sealed unsafe class ZstdCodec : SquashFsCodec
{
    private readonly nint _cctx;
    private readonly nint _dctx;

    public ZstdCodec(CompressorOptions options, uint blockSize, CodecRole role)
        : base(options, blockSize, role)
    {
        Identity = "zstd/" + NativeString(Zstd.VersionString());
        _cctx = Zstd.CreateCCtx();
        _dctx = Zstd.CreateDCtx();
        if (_cctx == 0 || _dctx == 0)
        {
            throw new SquashFsException(SquashFsErrorCategory.Codec, "libzstd could not create a context.");
        }
    }

    public override string Identity { get; }

    public override int Decompress(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        fixed (byte* src = source)
        fixed (byte* dst = destination)
        {
            var rc = Zstd.DecompressDCtx(_dctx, dst, (nuint)destination.Length, src, (nuint)source.Length);
            if (Zstd.IsError(rc) != 0)
            {
                throw DecompressFailed("libzstd: " + NativeString(Zstd.GetErrorName(rc)));
            }

            return (int)rc;
        }
    }

    protected override int CompressCore(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        fixed (byte* src = source)
        fixed (byte* dst = destination)
        {
            var rc = Zstd.CompressCCtx(_cctx, dst, (nuint)destination.Length, src, (nuint)source.Length, Options.EffectiveLevel);
            // Any error (in practice "destination too small") means: store the block uncompressed.
            return Zstd.IsError(rc) != 0 ? 0 : (int)rc;
        }
    }

    protected override void Dispose(bool disposing)
    {
        Zstd.FreeCCtx(_cctx);
        Zstd.FreeDCtx(_dctx);
        base.Dispose(disposing);
    }
}
