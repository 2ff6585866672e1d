using EdgeUpdater.Delta.Format;
using EdgeUpdater.Delta.Metadata;

namespace EdgeUpdater.Delta;

/// <summary>What a delta is made of, read without applying it.</summary>
public sealed record DeltaInfo
{
    /// <summary>The header.</summary>
    public required DeltaHeader Header { get; init; }

    /// <summary>Total delta size in bytes.</summary>
    public long DeltaBytes { get; init; }

    /// <summary>Delta bytes by section kind (header, ops, content, metadata, end).</summary>
    public required IReadOnlyDictionary<string, long> DeltaBytesBySection { get; init; }

    /// <summary>New-image bytes copied from the base image.</summary>
    public long CopiedBytes { get; init; }

    /// <summary>New-image bytes given literally (literal, XOR-against-base).</summary>
    public long LiteralBytes { get; init; }

    /// <summary>New-image bytes of blocks rebuilt from patched content (recompressed or raw).</summary>
    public long RebuiltBytes { get; init; }

    /// <summary>Blocks rebuilt by recompression on the device.</summary>
    public long RecompressedBlocks { get; init; }

    /// <summary>New-image bytes of zero runs.</summary>
    public long ZeroBytes { get; init; }

    /// <summary>New-image bytes the metadata section rebuilds.</summary>
    public long MetadataBytes { get; init; }

    /// <summary>Metadata blocks the section rebuilds, by how each is stored.</summary>
    public MetadataBlockCounts MetadataBlocks { get; init; } = new();

    /// <summary>
    /// Metadata tables by how the section gives their decompressed bytes: <c>predicted</c> from the base image,
    /// <c>patch</c> against the prediction, <c>literal</c>, <c>derived</c> from the new inode table.
    /// </summary>
    public IReadOnlyDictionary<string, int> MetadataTablesByEncoding { get; init; } = new Dictionary<string, int>();

    /// <summary>Largest uncompressed section payload (bounds the applier's section buffers).</summary>
    public int LargestSection { get; init; }

    /// <summary>Largest content the content sections before one ops section decode to, together.</summary>
    public int LargestContent { get; init; }

    /// <summary>Delta bytes of content sections by frame coder (<c>zstd</c>: patches against the base; <c>lzma2</c>: new content).</summary>
    public IReadOnlyDictionary<string, long> ContentBytesByCoder { get; init; } = new Dictionary<string, long>();

    /// <summary>Largest reference a content section builds from the base image.</summary>
    public long LargestReference { get; init; }
}

/// <summary>How a delta's metadata blocks are stored.</summary>
public sealed record MetadataBlockCounts
{
    /// <summary>Compressed on the device with the image's codec.</summary>
    public int Recompressed { get; init; }

    /// <summary>Written by replaying their LZMA decisions (format 4, xz): no codec, no match search.</summary>
    public int Replayed { get; init; }

    /// <summary>Stored uncompressed in the image, rebuilt from the table's bytes.</summary>
    public int Uncompressed { get; init; }

    /// <summary>Given by the delta as their stored bytes.</summary>
    public int Literal { get; init; }

    /// <summary>All of them.</summary>
    public int Total => Recompressed + Replayed + Uncompressed + Literal;
}

/// <summary>Reads a delta's structure (checking every section) without a base image.</summary>
public static class DeltaInspector
{
    /// <summary>Reads <paramref name="delta"/> to its end and sums its operations.</summary>
    public static async Task<DeltaInfo> InspectAsync(Stream delta, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(delta);
        var (header, headerLength) = await DeltaHeader.ReadAsync(delta, cancellationToken).ConfigureAwait(false);
        var bySection = new Dictionary<string, long> { ["header"] = headerLength };
        long copied = 0, literal = 0, rebuilt = 0, recompressed = 0, zeros = 0, largestReference = 0;
        int largestSection = 0, largestContent = 0, pendingContent = 0;
        var byCoder = new Dictionary<string, long>();
        var byTableEncoding = new Dictionary<string, int>();
        var metadataBlocks = new MetadataBlockCounts();
        using var reader = new SectionReader(delta, headerLength);
        while (true)
        {
            var section = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var name = section.Kind.ToString().ToLowerInvariant();
            bySection[name] = bySection.GetValueOrDefault(name) + section.StoredLength;
            largestSection = Math.Max(largestSection, section.Length);
            if (section.Kind == SectionKind.Content)
            {
                var content = new ByteReader(section.Payload.AsSpan(0, section.Length), "content section");
                // Without the base, its block size is unknown: SquashFS blocks are at most 1 MiB.
                var head = Generation.ContentFrame.ReadHead(ref content, header.Version, header.BaseSize, 1u << 20);
                pendingContent += head.ContentLength;
                largestContent = Math.Max(largestContent, pendingContent);
                largestReference = Math.Max(largestReference, head.Items.Sum(i => (long)i.Length));
                var coder = head.Coder.ToString().ToLowerInvariant();
                byCoder[coder] = byCoder.GetValueOrDefault(coder) + section.StoredLength;
            }

            if (section.Kind == SectionKind.Ops)
            {
                pendingContent = 0;
                Sum(section.Payload.AsSpan(0, section.Length), section.DeltaOffset, ref copied, ref literal, ref rebuilt, ref recompressed, ref zeros);
            }

            if (section.Kind == SectionKind.Metadata)
            {
                var parsed = MetadataSection.Parse(section.Payload.AsSpan(0, section.Length), section.DeltaOffset, header.Version);
                foreach (var table in parsed.Tables)
                {
                    var encoding = table.Encoding.ToString().ToLowerInvariant();
                    byTableEncoding[encoding] = byTableEncoding.GetValueOrDefault(encoding) + 1;
                    int Count(MetadataBlockEncoding kind) => table.BlockEncodings.Count(e => e == kind);
                    metadataBlocks = metadataBlocks with
                    {
                        Recompressed = metadataBlocks.Recompressed + Count(MetadataBlockEncoding.Compressed),
                        Replayed = metadataBlocks.Replayed + Count(MetadataBlockEncoding.Replayed),
                        Uncompressed = metadataBlocks.Uncompressed + Count(MetadataBlockEncoding.Uncompressed),
                        Literal = metadataBlocks.Literal + Count(MetadataBlockEncoding.Literal),
                    };
                }
            }

            if (section.Kind == SectionKind.End)
            {
                break;
            }
        }

        return new DeltaInfo
        {
            Header = header,
            DeltaBytes = reader.Offset,
            DeltaBytesBySection = bySection,
            CopiedBytes = copied,
            LiteralBytes = literal,
            RebuiltBytes = rebuilt,
            RecompressedBlocks = recompressed,
            ZeroBytes = zeros,
            MetadataBytes = Math.Max(0, header.TargetSize - copied - literal - rebuilt - zeros),
            LargestSection = largestSection,
            LargestContent = largestContent,
            LargestReference = largestReference,
            ContentBytesByCoder = byCoder,
            MetadataBlocks = metadataBlocks,
            MetadataTablesByEncoding = byTableEncoding,
        };
    }

    private static void Sum(ReadOnlySpan<byte> payload, long offset, ref long copied, ref long literal, ref long rebuilt, ref long recompressed, ref long zeros)
    {
        var reader = new ByteReader(payload, $"ops section at delta offset {offset}");
        while (!reader.AtEnd)
        {
            switch ((OpCode)reader.U8())
            {
                case OpCode.Copy:
                    reader.VarS();
                    copied += (long)reader.VarU();
                    break;
                case OpCode.Literal:
                    literal += reader.Blob(DeltaFormat.MaxSectionLength, "literal").Length;
                    break;
                case OpCode.Zeros:
                    zeros += (long)reader.VarU();
                    break;
                case OpCode.XorBase:
                    reader.VarU();
                    literal += reader.Blob(DeltaFormat.MaxSectionLength, "xor").Length;
                    break;
                case OpCode.Block:
                    var flags = (BlockFlags)reader.U8();
                    reader.VarU();
                    rebuilt += (long)reader.VarU();
                    reader.U32();
                    recompressed += (flags & BlockFlags.Uncompressed) == 0 ? 1 : 0;
                    break;
                default:
                    throw DeltaException.Corrupted($"Ops section at delta offset {offset}: unknown op code at {reader.Position - 1}.");
            }
        }
    }
}
