using System.Buffers.Binary;
using EdgeUpdater.SquashFs.Format;

namespace EdgeUpdater.SquashFs.Compression;

/// <summary>gzip strategies mksquashfs can try (bit i of the stored strategy field).</summary>
[Flags]
public enum GzipStrategies : ushort
{
    /// <summary>Only the default strategy (nothing stored).</summary>
    None = 0,

    /// <summary>Z_DEFAULT_STRATEGY.</summary>
    Default = 0x01,

    /// <summary>Z_FILTERED.</summary>
    Filtered = 0x02,

    /// <summary>Z_HUFFMAN_ONLY.</summary>
    HuffmanOnly = 0x04,

    /// <summary>Z_RLE.</summary>
    RunLengthEncoded = 0x08,

    /// <summary>Z_FIXED.</summary>
    Fixed = 0x10,
}

/// <summary>xz branch/call/jump filters mksquashfs can try in addition to plain LZMA2 (bit i of the stored flags).</summary>
[Flags]
public enum XzFilters
{
    /// <summary>LZMA2 alone.</summary>
    None = 0,

    /// <summary>x86 BCJ.</summary>
    X86 = 0x01,

    /// <summary>PowerPC BCJ.</summary>
    PowerPC = 0x02,

    /// <summary>IA-64 BCJ.</summary>
    IA64 = 0x04,

    /// <summary>ARM BCJ.</summary>
    Arm = 0x08,

    /// <summary>ARM Thumb BCJ.</summary>
    ArmThumb = 0x10,

    /// <summary>SPARC BCJ.</summary>
    Sparc = 0x20,
}

/// <summary>
/// Compressor options: what the optional block after the superblock says, with mksquashfs's defaults
/// for what it leaves out. One record for every compressor; fields that do not apply keep their defaults.
/// </summary>
public sealed record CompressorOptions
{
    /// <summary>Default gzip level (mksquashfs).</summary>
    public const int DefaultGzipLevel = 9;

    /// <summary>Default zstd level (mksquashfs).</summary>
    public const int DefaultZstdLevel = 15;

    /// <summary>Default lzo level for lzo1x_999.</summary>
    public const int DefaultLzoLevel = 8;

    /// <summary>The compressor.</summary>
    public CompressorId Compressor { get; init; } = CompressorId.Gzip;

    /// <summary>gzip: 1-9; zstd: 1-22; lzo: 1-9 for lzo1x_999; xz: the preset 0-9 (not stored by mksquashfs, 6).</summary>
    public int Level { get; init; } = -1;

    /// <summary>gzip: window bits 8-15.</summary>
    public int GzipWindowBits { get; init; } = 15;

    /// <summary>gzip: strategies to try, smallest output wins.</summary>
    public GzipStrategies GzipStrategies { get; init; }

    /// <summary>xz: dictionary size; 0 means the block size.</summary>
    public uint XzDictionarySize { get; init; }

    /// <summary>xz: BCJ filters to try in addition to plain LZMA2.</summary>
    public XzFilters XzFilters { get; init; }

    /// <summary>xz: use the extreme preset variant (not stored in the image by mksquashfs 4.5).</summary>
    public bool XzExtreme { get; init; }

    /// <summary>lz4: high compression (LZ4_compress_HC at the maximum level).</summary>
    public bool Lz4HighCompression { get; init; }

    /// <summary>lzo: algorithm number (0 lzo1x_1, 1 lzo1x_1_11, 2 lzo1x_1_12, 3 lzo1x_1_15, 4 lzo1x_999).</summary>
    public int LzoAlgorithm { get; init; } = 4;

    /// <summary>The level in effect: <see cref="Level"/> or the compressor's default.</summary>
    public int EffectiveLevel => Level >= 0 ? Level : Compressor switch
    {
        CompressorId.Gzip => DefaultGzipLevel,
        CompressorId.Zstd => DefaultZstdLevel,
        CompressorId.Lzo => DefaultLzoLevel,
        CompressorId.Xz => 6,
        _ => 0,
    };

    /// <summary>Default options for <paramref name="compressor"/>.</summary>
    public static CompressorOptions Default(CompressorId compressor) => new() { Compressor = compressor };

    /// <summary>Parses a stored options block (<paramref name="raw"/> empty when the image has none).</summary>
    public static CompressorOptions Parse(CompressorId compressor, ReadOnlySpan<byte> raw, uint blockSize)
    {
        var options = Default(compressor);
        if (raw.IsEmpty)
        {
            return options;
        }

        switch (compressor)
        {
            case CompressorId.Gzip:
                Need(raw, 8, compressor);
                var level = BinaryPrimitives.ReadInt32LittleEndian(raw);
                var window = BinaryPrimitives.ReadInt16LittleEndian(raw[4..]);
                var strategies = BinaryPrimitives.ReadUInt16LittleEndian(raw[6..]);
                if (level < 1 || level > 9 || window < 8 || window > 15 || strategies > 0x1F)
                {
                    throw SquashFsException.Corrupted($"gzip compressor options are invalid: level {level} (1-9), window {window} (8-15), strategies 0x{strategies:x} (bits 0-4).");
                }

                return options with { Level = level, GzipWindowBits = window, GzipStrategies = (GzipStrategies)strategies };
            case CompressorId.Xz:
                Need(raw, 8, compressor);
                var dictionary = BinaryPrimitives.ReadUInt32LittleEndian(raw);
                var flags = BinaryPrimitives.ReadInt32LittleEndian(raw[4..]);
                if (dictionary < 4096 || !IsXzDictionarySize(dictionary) || (flags & ~0x3F) != 0)
                {
                    throw SquashFsException.Corrupted($"xz compressor options are invalid: dictionary size {dictionary} (2^n or 2^n+2^(n+1)), filter flags 0x{flags:x} (bits 0-5).");
                }

                return options with { XzDictionarySize = dictionary == blockSize ? 0 : dictionary, XzFilters = (XzFilters)flags };
            case CompressorId.Lz4:
                Need(raw, 8, compressor);
                var version = BinaryPrimitives.ReadInt32LittleEndian(raw);
                var lz4Flags = BinaryPrimitives.ReadInt32LittleEndian(raw[4..]);
                if (version != 1 || (lz4Flags & ~1) != 0)
                {
                    throw SquashFsException.Unsupported($"lz4 compressor options: format version {version} flags 0x{lz4Flags:x}; only the legacy format (1) with optional HC flag (1) is supported.");
                }

                return options with { Lz4HighCompression = lz4Flags == 1 };
            case CompressorId.Zstd:
                Need(raw, 4, compressor);
                var zstdLevel = BinaryPrimitives.ReadInt32LittleEndian(raw);
                if (zstdLevel < 1 || zstdLevel > 22)
                {
                    throw SquashFsException.Corrupted($"zstd compressor options: level {zstdLevel} is outside 1-22.");
                }

                return options with { Level = zstdLevel };
            case CompressorId.Lzo:
                Need(raw, 8, compressor);
                var algorithm = BinaryPrimitives.ReadInt32LittleEndian(raw);
                var lzoLevel = BinaryPrimitives.ReadInt32LittleEndian(raw[4..]);
                if (algorithm < 0 || algorithm > 4)
                {
                    throw SquashFsException.Corrupted($"lzo compressor options: algorithm {algorithm} is outside 0-4.");
                }

                return options with { LzoAlgorithm = algorithm, Level = lzoLevel };
            default:
                return options;
        }
    }

    /// <summary>
    /// The options block mksquashfs would store for these options, or null when it stores none
    /// (everything at its default). lz4 always stores one.
    /// </summary>
    public byte[]? Encode(uint blockSize)
    {
        switch (Compressor)
        {
            case CompressorId.Gzip:
                if (EffectiveLevel == DefaultGzipLevel && GzipWindowBits == 15 && GzipStrategies == GzipStrategies.None)
                {
                    return null;
                }

                var gzip = new byte[8];
                BinaryPrimitives.WriteInt32LittleEndian(gzip, EffectiveLevel);
                BinaryPrimitives.WriteInt16LittleEndian(gzip.AsSpan(4), (short)GzipWindowBits);
                BinaryPrimitives.WriteUInt16LittleEndian(gzip.AsSpan(6), (ushort)GzipStrategies);
                return gzip;
            case CompressorId.Xz:
                var dictionary = XzDictionarySize == 0 ? blockSize : XzDictionarySize;
                if (dictionary == blockSize && XzFilters == XzFilters.None)
                {
                    return null;
                }

                var xz = new byte[8];
                BinaryPrimitives.WriteUInt32LittleEndian(xz, dictionary);
                BinaryPrimitives.WriteInt32LittleEndian(xz.AsSpan(4), (int)XzFilters);
                return xz;
            case CompressorId.Lz4:
                var lz4 = new byte[8];
                BinaryPrimitives.WriteInt32LittleEndian(lz4, 1);
                BinaryPrimitives.WriteInt32LittleEndian(lz4.AsSpan(4), Lz4HighCompression ? 1 : 0);
                return lz4;
            case CompressorId.Zstd:
                if (EffectiveLevel == DefaultZstdLevel)
                {
                    return null;
                }

                var zstd = new byte[4];
                BinaryPrimitives.WriteInt32LittleEndian(zstd, EffectiveLevel);
                return zstd;
            default:
                return null;
        }
    }

    /// <summary>Short human description, e.g. "gzip level 9 window 15".</summary>
    public string Describe() => Compressor switch
    {
        CompressorId.Gzip => $"gzip level {EffectiveLevel}, window {GzipWindowBits}, strategies {(GzipStrategies == GzipStrategies.None ? "default" : GzipStrategies.ToString())}",
        CompressorId.Xz => $"xz dictionary {(XzDictionarySize == 0 ? "block size" : XzDictionarySize.ToString(System.Globalization.CultureInfo.InvariantCulture))}, filters {XzFilters}",
        CompressorId.Lz4 => Lz4HighCompression ? "lz4 high compression" : "lz4",
        CompressorId.Zstd => $"zstd level {EffectiveLevel}",
        CompressorId.Lzo => $"lzo algorithm {LzoAlgorithm} level {EffectiveLevel}",
        _ => Compressor.ToString(),
    };

    private static bool IsXzDictionarySize(uint size)
    {
        var n = System.Numerics.BitOperations.TrailingZeroCount(size);
        return size == 1u << n || (n < 30 && size == (1u << n) + (1u << (n + 1)));
    }

    private static void Need(ReadOnlySpan<byte> raw, int bytes, CompressorId compressor)
    {
        if (raw.Length < bytes)
        {
            throw SquashFsException.Corrupted($"{compressor} compressor options need {bytes} bytes; the block has {raw.Length}.");
        }
    }
}
