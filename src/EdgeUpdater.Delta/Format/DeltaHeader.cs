using System.IO.Hashing;
using System.Text;

using EdgeUpdater.Delta.Format;

namespace EdgeUpdater.Delta;

/// <summary>The delta header: what the delta joins and what the device needs to rebuild it.</summary>
public sealed record DeltaHeader
{
    /// <summary>Format version.</summary>
    public ushort Version { get; init; } = DeltaFormat.Version;

    /// <summary>SquashFS-aware or generic.</summary>
    public DeltaMode Mode { get; init; }

    /// <summary>The level it was generated at.</summary>
    public DeltaLevel Level { get; init; }

    /// <summary>Size of the base image A in bytes.</summary>
    public long BaseSize { get; init; }

    /// <summary>SHA-256 of the base image A.</summary>
    public byte[] BaseSha256 { get; init; } = new byte[32];

    /// <summary>Size of the new image B in bytes.</summary>
    public long TargetSize { get; init; }

    /// <summary>SHA-256 of the new image B.</summary>
    public byte[] TargetSha256 { get; init; } = new byte[32];

    /// <summary>True when the device must compress blocks (data or metadata) with B's codec.</summary>
    public bool UsesRecompression { get; init; }

    /// <summary>B's compressor id as stored in its superblock (0 in generic mode).</summary>
    public ushort Compressor { get; init; }

    /// <summary>B's data block size (0 in generic mode).</summary>
    public uint BlockSize { get; init; }

    /// <summary>B's compressor options block as stored (empty when none).</summary>
    public byte[] CompressorOptions { get; init; } = [];

    /// <summary>Identity of the codec the generator verified recompression with, e.g. <c>xz/5.4.1</c>; empty when none.</summary>
    public string CodecIdentity { get; init; } = "";

    internal const int FixedPrefix = 8 + 2 + 4;

    /// <summary>Encodes the header with its checksum.</summary>
    internal byte[] Encode()
    {
        var body = new ByteWriter();
        body.U8((byte)Mode);
        body.U8((byte)Level);
        body.U32(UsesRecompression ? 1u : 0u);
        body.U64((ulong)BaseSize);
        body.Bytes(BaseSha256);
        body.U64((ulong)TargetSize);
        body.Bytes(TargetSha256);
        body.U16(Compressor);
        body.U32(BlockSize);
        body.Blob(CompressorOptions);
        body.Blob(Encoding.UTF8.GetBytes(CodecIdentity));
        var all = new ByteWriter();
        all.Bytes(DeltaFormat.Magic);
        all.U16(Version);
        all.U32((uint)body.Length);
        all.Bytes(body.WrittenSpan);
        all.U64(XxHash3.HashToUInt64(all.WrittenSpan));
        return all.ToArray();
    }

    /// <summary>Reads and checks a header from the start of <paramref name="stream"/>.</summary>
    internal static async Task<(DeltaHeader Header, long Length)> ReadAsync(Stream stream, CancellationToken cancellationToken)
    {
        var prefix = new byte[FixedPrefix];
        await StreamUtil.ReadExactAsync(stream, prefix, 0, "delta header", cancellationToken).ConfigureAwait(false);
        if (!prefix.AsSpan(0, 8).SequenceEqual(DeltaFormat.Magic))
        {
            throw DeltaException.Corrupted($"Not an EdgeUpdater delta: the first 8 bytes are {Convert.ToHexString(prefix, 0, 8)}, expected {Convert.ToHexString(DeltaFormat.Magic)} (\"EUDELTA\\n\").");
        }

        var reader = new ByteReader(prefix.AsSpan(8), "delta header");
        var version = reader.U16();
        if (version is < DeltaFormat.OldestVersion or > DeltaFormat.Version)
        {
            throw new DeltaException(DeltaErrorCategory.UnsupportedVersion, $"The delta has format version {version}; this library reads versions {DeltaFormat.OldestVersion} to {DeltaFormat.Version}.");
        }

        var bodyLength = reader.U32();
        if (bodyLength > DeltaFormat.MaxHeaderBody)
        {
            throw DeltaException.Overflow($"The delta header claims a body of {bodyLength} bytes; at most {DeltaFormat.MaxHeaderBody} are allowed.");
        }

        var rest = new byte[bodyLength + 8];
        await StreamUtil.ReadExactAsync(stream, rest, FixedPrefix, "delta header", cancellationToken).ConfigureAwait(false);
        var all = new byte[FixedPrefix + bodyLength];
        prefix.CopyTo(all, 0);
        rest.AsSpan(0, (int)bodyLength).CopyTo(all.AsSpan(FixedPrefix));
        var expected = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(rest.AsSpan((int)bodyLength));
        var actual = XxHash3.HashToUInt64(all);
        if (expected != actual)
        {
            throw DeltaException.Corrupted($"The delta header checksum is {actual:x16}; the header says {expected:x16}: the header is corrupted.");
        }

        var body = new ByteReader(all.AsSpan(FixedPrefix), "delta header");
        var mode = (DeltaMode)body.U8();
        var level = (DeltaLevel)body.U8();
        var flags = body.U32();
        if (mode is not (DeltaMode.SquashFs or DeltaMode.Generic) || level is not (DeltaLevel.Fast or DeltaLevel.Best) || (flags & ~1u) != 0)
        {
            throw DeltaException.Corrupted($"The delta header has mode {(byte)mode}, level {(byte)level}, flags 0x{flags:x}; expected mode 1-2, level 1-2, flags bit 0 only.");
        }

        var baseSize = body.U64();
        var baseSha = body.Bytes(32).ToArray();
        var targetSize = body.U64();
        var targetSha = body.Bytes(32).ToArray();
        if (baseSize > long.MaxValue / 2 || targetSize > long.MaxValue / 2)
        {
            throw DeltaException.Overflow($"The delta header claims image sizes {baseSize} and {targetSize}; sizes past 2^62 are refused.");
        }

        var header = new DeltaHeader
        {
            Version = version,
            Mode = mode,
            Level = level,
            UsesRecompression = (flags & 1) != 0,
            BaseSize = (long)baseSize,
            BaseSha256 = baseSha,
            TargetSize = (long)targetSize,
            TargetSha256 = targetSha,
            Compressor = body.U16(),
            BlockSize = body.U32(),
            CompressorOptions = body.Blob(64, "compressor options").ToArray(),
            CodecIdentity = Encoding.UTF8.GetString(body.Blob(64, "codec identity")),
        };
        if (!body.AtEnd)
        {
            throw DeltaException.Corrupted($"The delta header has {body.Remaining} unexpected bytes after its last field.");
        }

        return (header, all.Length + 8);
    }
}
