using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.IO.Hashing;
using System.Text;
using EdgeUpdater.Delta.Format;

namespace EdgeUpdater.Delta;

/// <summary>
/// What is known about one image's compressed blocks (data, fragment and metadata, by offset): whether its
/// codec, recompressing a block's content, gives the stored bytes again. That proof is the most expensive
/// step of a <see cref="DeltaLevel.Best"/> generation (on xz images, more than half of its CPU time), and it
/// depends only on the new image and the codec, not on the base. A server that makes deltas from many bases
/// to one image keeps that image's record and proves each block once.
/// </summary>
/// <remarks>
/// Thread-safe: concurrent generations to the same image may share a record. A record names the image (its
/// SHA-256) and the codec (library and version) its outcomes hold for; a generation to another image or with
/// another codec empties it before use, so a record given by mistake costs time, never a wrong delta.
/// Format of <see cref="Write"/>: docs/delta-format.md, "Reproduction record".
/// </remarks>
public sealed class ReproductionRecord
{
    /// <summary>Version of the serialized form; <see cref="Read"/> refuses others.</summary>
    public const ushort FormatVersion = 1;

    private const int MaxEntries = 1 << 24;
    private static ReadOnlySpan<byte> Magic => "EURR"u8;

    private readonly ConcurrentDictionary<long, bool> _blocks = new();
    private readonly Lock _bind = new();

    /// <summary>Creates an empty record, bound to a codec by the first generation that uses it.</summary>
    public ReproductionRecord()
    {
    }

    /// <summary>The codec identity (<c>xz/5.4.1</c>) the entries hold for; null while unbound.</summary>
    public string? CodecIdentity { get; private set; }

    /// <summary>SHA-256 (lowercase hex) of the image the entries hold for; null while unbound.</summary>
    public string? ImageSha256 { get; private set; }

    /// <summary>Blocks whose outcome is recorded.</summary>
    public int Count => _blocks.Count;

    /// <summary>Recorded blocks that recompress to their stored bytes (the rest would go literally).</summary>
    public int ReproducingCount => _blocks.Count(block => block.Value);

    /// <summary>Reads a record written by <see cref="Write"/>; throws a <see cref="DeltaException"/> (Corrupted, UnsupportedVersion) for anything else.</summary>
    public static ReproductionRecord Read(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 4 + 2 + 8 || !bytes.StartsWith(Magic))
        {
            throw new DeltaException(DeltaErrorCategory.Corrupted, "Reproduction record: not a record (bad magic or too short).");
        }

        var version = BinaryPrimitives.ReadUInt16LittleEndian(bytes[4..]);
        if (version != FormatVersion)
        {
            throw new DeltaException(DeltaErrorCategory.UnsupportedVersion, $"Reproduction record version {version}; this build reads version {FormatVersion}.");
        }

        var body = bytes[..^8];
        var expected = BinaryPrimitives.ReadUInt64LittleEndian(bytes[^8..]);
        var actual = XxHash64.HashToUInt64(body);
        if (actual != expected)
        {
            throw new DeltaException(DeltaErrorCategory.Corrupted, $"Reproduction record: checksum {actual:x16}, the record says {expected:x16}.");
        }

        var reader = new ByteReader(body[6..], "reproduction record");
        var identity = Encoding.UTF8.GetString(reader.Blob(256, "codec identity"));
        var image = Convert.ToHexStringLower(reader.Bytes(32));
        var count = reader.VarInt(MaxEntries, "entry count");
        var bound = identity.Length > 0;
        var record = new ReproductionRecord { CodecIdentity = bound ? identity : null, ImageSha256 = bound ? image : null };
        long offset = 0;
        for (var i = 0; i < count; i++)
        {
            var entry = reader.VarU();
            offset += (long)(entry >> 1);
            if (offset < 0 || (i > 0 && entry >> 1 == 0))
            {
                throw new DeltaException(DeltaErrorCategory.Corrupted, $"Reproduction record: entry {i} is out of order.");
            }

            record._blocks[offset] = (entry & 1) != 0;
        }

        if (!reader.AtEnd)
        {
            throw new DeltaException(DeltaErrorCategory.Corrupted, $"Reproduction record: {reader.Remaining} bytes after the last entry.");
        }

        return record;
    }

    /// <summary>Writes the record (format version <see cref="FormatVersion"/>, checksummed).</summary>
    public void Write(Stream output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var writer = new ByteWriter(64 + (_blocks.Count * 4));
        writer.Bytes(Magic);
        writer.U16(FormatVersion);
        KeyValuePair<long, bool>[] entries;
        lock (_bind)
        {
            // Taken together, so that the entries written are those of the binding written.
            writer.Blob(Encoding.UTF8.GetBytes(CodecIdentity ?? ""));
            writer.Bytes(ImageSha256 is null ? new byte[32] : Convert.FromHexString(ImageSha256));
            entries = _blocks.ToArray();
        }

        Array.Sort(entries, (x, y) => x.Key.CompareTo(y.Key));
        writer.VarU((ulong)entries.Length);
        long previous = 0;
        foreach (var (offset, reproduces) in entries)
        {
            writer.VarU(((ulong)(offset - previous) << 1) | (reproduces ? 1UL : 0UL));
            previous = offset;
        }

        writer.U64(XxHash64.HashToUInt64(writer.WrittenSpan));
        output.Write(writer.WrittenSpan);
    }

    /// <summary>
    /// Makes the record hold for this codec and image: a record of another codec (a library upgraded since)
    /// or of another image is emptied first, since its outcomes say nothing about these.
    /// </summary>
    internal void Bind(string codecIdentity, ReadOnlySpan<byte> imageSha256)
    {
        var image = Convert.ToHexStringLower(imageSha256);
        lock (_bind)
        {
            if (CodecIdentity != codecIdentity || ImageSha256 != image)
            {
                _blocks.Clear();
                CodecIdentity = codecIdentity;
                ImageSha256 = image;
            }
        }
    }

    /// <summary>Offsets with a recorded outcome.</summary>
    internal ICollection<long> Offsets => _blocks.Keys;

    internal bool TryGet(long offset, out bool reproduces) => _blocks.TryGetValue(offset, out reproduces);

    internal void Set(long offset, bool reproduces) => _blocks[offset] = reproduces;
}
