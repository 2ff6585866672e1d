using System.Runtime.InteropServices;
using EdgeUpdater.SquashFs.Interop;

namespace EdgeUpdater.SquashFs.Compression;

/// <summary>
/// gzip through zlib: deflateInit2(level, Z_DEFLATED, window bits, memLevel 8, first strategy); per block
/// deflateReset (+ deflateParams per strategy when several are configured) and deflate(Z_FINISH); the
/// smallest result wins, ties to the first. Metadata always uses the default strategy alone. Reading
/// goes through libdeflate when it is installed (faster; same bytes), else through zlib's inflate.
/// </summary>
internal sealed unsafe class GzipCodec : SquashFsCodec
{
    private static readonly (GzipStrategies Flag, int Zlib)[] StrategyOrder =
    [
        (GzipStrategies.Default, 0), (GzipStrategies.Filtered, 1), (GzipStrategies.HuffmanOnly, 2),
        (GzipStrategies.RunLengthEncoded, 3), (GzipStrategies.Fixed, 4),
    ];

    private readonly Zlib.ZStream* _inflate;
    private readonly nint _libdeflate;
    private readonly byte* _version;
    private Zlib.ZStream* _deflate;
    private readonly int[] _strategies;
    private byte[]? _scratch;

    public GzipCodec(CompressorOptions options, uint blockSize, CodecRole role)
        : this(options, blockSize, role, useLibdeflate: true)
    {
    }

    /// <summary>Tests pass <paramref name="useLibdeflate"/> false to exercise the zlib inflater.</summary>
    internal GzipCodec(CompressorOptions options, uint blockSize, CodecRole role, bool useLibdeflate)
        : base(options, blockSize, role)
    {
        var selected = StrategyOrder.Where(s => (options.GzipStrategies & s.Flag) != 0).Select(s => s.Zlib).ToArray();
        _strategies = role == CodecRole.Metadata || selected.Length == 0 ? [0] : selected;
        var version = Zlib.ZlibVersion();
        Identity = "zlib/" + NativeString(version);
        _version = version;
        if (useLibdeflate)
        {
            try
            {
                _libdeflate = Libdeflate.AllocDecompressor();
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                _libdeflate = 0;
            }
        }

        _inflate = (Zlib.ZStream*)NativeMemory.AllocZeroed((nuint)sizeof(Zlib.ZStream));
        var rc = Zlib.InflateInit(_inflate, version, sizeof(Zlib.ZStream));
        if (rc != Zlib.ZOk)
        {
            throw new SquashFsException(SquashFsErrorCategory.Codec, $"zlib inflateInit failed with {rc}.");
        }
    }

    public override string Identity { get; }

    /// <summary>True when blocks are read through libdeflate.</summary>
    internal bool UsesLibdeflate => _libdeflate != 0;

    public override int Decompress(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        if (_libdeflate != 0)
        {
            nuint used = 0;
            nuint written = 0;
            fixed (byte* src = source)
            fixed (byte* dst = destination)
            {
                var result = Libdeflate.ZlibDecompress(_libdeflate, src, (nuint)source.Length, dst, (nuint)destination.Length, &used, &written);
                if (result != Libdeflate.Success)
                {
                    throw DecompressFailed(result == Libdeflate.InsufficientSpace ? $"output larger than {destination.Length} bytes" : $"bad or truncated zlib data (libdeflate result {result})");
                }
            }

            if (used != (nuint)source.Length)
            {
                throw DecompressFailed($"{(nuint)source.Length - used} bytes left after the end of the deflate stream");
            }

            return (int)written;
        }

        _ = Zlib.InflateReset(_inflate);
        fixed (byte* src = source)
        fixed (byte* dst = destination)
        {
            _inflate->NextIn = src;
            _inflate->AvailIn = (uint)source.Length;
            _inflate->NextOut = dst;
            _inflate->AvailOut = (uint)destination.Length;
            var rc = Zlib.Inflate(_inflate, Zlib.ZFinish);
            if (rc != Zlib.ZStreamEnd)
            {
                throw DecompressFailed(rc == Zlib.ZBufError || rc == Zlib.ZOk ? $"output larger than {destination.Length} bytes or input truncated" : $"zlib error {rc}");
            }

            if (_inflate->AvailIn != 0)
            {
                throw DecompressFailed($"{_inflate->AvailIn} bytes left after the end of the deflate stream");
            }

            return (int)_inflate->TotalOut;
        }
    }

    protected override int CompressCore(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        if (_deflate is null)
        {
            // Created on first use: a deflate state at level 9 costs ~256 KiB that readers never need.
            _deflate = (Zlib.ZStream*)NativeMemory.AllocZeroed((nuint)sizeof(Zlib.ZStream));
            var rc = Zlib.DeflateInit2(_deflate, Options.EffectiveLevel, Zlib.ZDeflated, Options.GzipWindowBits, 8, _strategies[0], _version, sizeof(Zlib.ZStream));
            if (rc != Zlib.ZOk)
            {
                NativeMemory.Free(_deflate);
                _deflate = null;
                throw new SquashFsException(SquashFsErrorCategory.Codec, $"zlib deflateInit2 failed with {rc} (level {Options.EffectiveLevel}, window {Options.GzipWindowBits}).");
            }
        }

        var best = 0;
        fixed (byte* src = source)
        {
            for (var i = 0; i < _strategies.Length; i++)
            {
                // Later strategies compress into scratch; the winner is copied to the destination.
                var target = i == 0 ? destination : (_scratch ??= new byte[destination.Length]).AsSpan(0, destination.Length);
                fixed (byte* dst = target)
                {
                    _ = Zlib.DeflateReset(_deflate);
                    _deflate->NextIn = src;
                    _deflate->AvailIn = (uint)source.Length;
                    _deflate->NextOut = dst;
                    _deflate->AvailOut = (uint)target.Length;
                    if (_strategies.Length > 1)
                    {
                        var prc = Zlib.DeflateParams(_deflate, Options.EffectiveLevel, _strategies[i]);
                        if (prc != Zlib.ZOk)
                        {
                            throw new SquashFsException(SquashFsErrorCategory.Codec, $"zlib deflateParams failed with {prc}.");
                        }
                    }

                    var rc = Zlib.Deflate(_deflate, Zlib.ZFinish);
                    var length = (int)_deflate->TotalOut;
                    if (rc == Zlib.ZStreamEnd)
                    {
                        if (best == 0 || length < best)
                        {
                            if (i != 0)
                            {
                                target[..length].CopyTo(destination);
                            }

                            best = length;
                        }
                    }
                    else if (rc != Zlib.ZOk && rc != Zlib.ZBufError)
                    {
                        throw new SquashFsException(SquashFsErrorCategory.Codec, $"zlib deflate failed with {rc}.");
                    }
                }
            }
        }

        return best;
    }

    protected override void Dispose(bool disposing)
    {
        if (_deflate is not null)
        {
            _ = Zlib.DeflateEnd(_deflate);
            NativeMemory.Free(_deflate);
        }

        if (_libdeflate != 0)
        {
            Libdeflate.FreeDecompressor(_libdeflate);
        }

        _ = Zlib.InflateEnd(_inflate);
        NativeMemory.Free(_inflate);
        base.Dispose(disposing);
    }
}
