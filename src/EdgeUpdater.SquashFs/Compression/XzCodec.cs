using System.Runtime.InteropServices;
using EdgeUpdater.SquashFs.Interop;

namespace EdgeUpdater.SquashFs.Compression;

/// <summary>
/// xz through liblzma: lzma_stream_buffer_encode with LZMA2 at the preset (default 6, optionally
/// extreme), dictionary = the stored size or the block size (metadata: 8192), CRC32 check; each
/// configured BCJ filter is tried in front of LZMA2 and the smallest output wins (ties to the first).
/// liblzma's working memory is recycled from one block to the next (<see cref="LzmaRecyclingAllocator"/>).
/// </summary>
internal sealed unsafe class XzCodec : SquashFsCodec
{
    private static readonly (XzFilters Flag, ulong Id)[] FilterOrder =
    [
        (XzFilters.X86, 0x04), (XzFilters.PowerPC, 0x05), (XzFilters.IA64, 0x06),
        (XzFilters.Arm, 0x07), (XzFilters.ArmThumb, 0x08), (XzFilters.Sparc, 0x09),
    ];

    private readonly LzmaRecyclingAllocator _allocator = new();
    private readonly void* _lzmaOptions;
    private readonly ulong[] _bcj;
    private readonly uint _dictionarySize;
    private byte[]? _scratch;

    public XzCodec(CompressorOptions options, uint blockSize, CodecRole role)
        : base(options, blockSize, role)
    {
        Identity = "xz/" + NativeString(Lzma.VersionString());
        _bcj = role == CodecRole.Metadata ? [] : FilterOrder.Where(f => (options.XzFilters & f.Flag) != 0).Select(f => f.Id).ToArray();
        _dictionarySize = role == CodecRole.Metadata ? MetadataBlockSize : options.XzDictionarySize == 0 ? blockSize : options.XzDictionarySize;
        _lzmaOptions = NativeMemory.AllocZeroed(Lzma.OptionsSize);
    }

    public override string Identity { get; }

    /// <summary>liblzma's recycled working memory (for tests).</summary>
    internal LzmaRecyclingAllocator Allocator => _allocator;

    public override int Decompress(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        ulong memlimit = 64 << 20;
        nuint inPos = 0;
        nuint outPos = 0;
        fixed (byte* src = source)
        fixed (byte* dst = destination)
        {
            var rc = Lzma.StreamBufferDecode(&memlimit, 0, _allocator.Native, src, &inPos, (nuint)source.Length, dst, &outPos, (nuint)destination.Length);
            if (rc != Lzma.LzmaOk || inPos != (nuint)source.Length)
            {
                throw DecompressFailed(rc == Lzma.LzmaOk ? $"{(nuint)source.Length - inPos} bytes left after the xz stream" : $"liblzma error {rc}");
            }
        }

        return (int)outPos;
    }

    protected override int CompressCore(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        var best = CompressWith(0, source, destination);
        foreach (var bcj in _bcj)
        {
            var scratch = (_scratch ??= new byte[destination.Length]).AsSpan(0, destination.Length);
            var length = CompressWith(bcj, source, scratch);
            if (length > 0 && (best == 0 || length < best))
            {
                scratch[..length].CopyTo(destination);
                best = length;
            }
        }

        return best;
    }

    protected override void Dispose(bool disposing)
    {
        NativeMemory.Free(_lzmaOptions);
        _allocator.Dispose();
        base.Dispose(disposing);
    }

    private int CompressWith(ulong bcj, ReadOnlySpan<byte> source, Span<byte> destination)
    {
        var preset = (uint)Options.EffectiveLevel | (Options.XzExtreme ? Lzma.PresetExtreme : 0);
        if (Lzma.LzmaPreset(_lzmaOptions, preset) != 0)
        {
            throw new SquashFsException(SquashFsErrorCategory.Codec, $"liblzma rejected preset {preset}.");
        }

        *(uint*)_lzmaOptions = _dictionarySize;
        var filters = stackalloc Lzma.Filter[3];
        var i = 0;
        if (bcj != 0)
        {
            filters[i++] = new Lzma.Filter { Id = bcj, Options = null };
        }

        filters[i++] = new Lzma.Filter { Id = Lzma.FilterLzma2, Options = _lzmaOptions };
        filters[i] = new Lzma.Filter { Id = Lzma.VliUnknown, Options = null };
        nuint outPos = 0;
        fixed (byte* src = source)
        fixed (byte* dst = destination)
        {
            var rc = Lzma.StreamBufferEncode(filters, Lzma.CheckCrc32, _allocator.Native, src, (nuint)source.Length, dst, &outPos, (nuint)destination.Length);
            if (rc == Lzma.LzmaBufError)
            {
                return 0;
            }

            if (rc != Lzma.LzmaOk)
            {
                throw new SquashFsException(SquashFsErrorCategory.Codec, $"liblzma lzma_stream_buffer_encode failed with {rc}.");
            }
        }

        return (int)outPos;
    }
}
