using EdgeUpdater.SquashFs.Interop;

namespace EdgeUpdater.SquashFs.Compression;

/// <summary>lzo through liblzo2 when it is installed: reading only.</summary>
internal sealed unsafe class LzoCodec : SquashFsCodec
{
    public LzoCodec(CompressorOptions options, uint blockSize, CodecRole role)
        : base(options, blockSize, role)
    {
        Identity = "lzo/" + NativeString(Lzo.VersionString());
    }

    public override string Identity { get; }

    public override int Decompress(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        nuint length = (nuint)destination.Length;
        fixed (byte* src = source)
        fixed (byte* dst = destination)
        {
            var rc = Lzo.DecompressSafe(src, (nuint)source.Length, dst, &length, null);
            if (rc != 0)
            {
                throw DecompressFailed($"liblzo2 error {rc}");
            }
        }

        return (int)length;
    }

    protected override int CompressCore(ReadOnlySpan<byte> source, Span<byte> destination) =>
        throw SquashFsException.Unsupported("lzo compression is not supported; lzo images can only be read.");
}
