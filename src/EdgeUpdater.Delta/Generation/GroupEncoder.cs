using EdgeUpdater.Delta.Format;
using EdgeUpdater.Delta.Patching;
using EdgeUpdater.SquashFs.Compression;
using EdgeUpdater.SquashFs.IO;
using EdgeUpdater.SquashFs.Reader;

namespace EdgeUpdater.Delta.Generation;

/// <summary>A run of units that become one ops section, preceded by a content section when framed.</summary>
internal sealed class UnitGroup
{
    public List<Unit> Units { get; } = [];

    public bool Framed { get; set; }

    public int ContentLength { get; set; }

    public long LiteralLength { get; set; }

    public List<ReferenceItem> Reference { get; } = [];

    public HashSet<ReferenceItem> ReferenceSet { get; } = [];

    public long ReferenceLength { get; set; }
}

/// <summary>Everything a worker needs to turn groups into sections; one per worker thread.</summary>
internal sealed class GroupEncoder : IDisposable
{
    private readonly IImageSource _old;
    private readonly IImageSource _new;
    private readonly SquashFsImage? _oldImage;
    private readonly SquashFsImage? _newImage;
    private readonly SquashFsCodec? _newCodec;
    private readonly SectionWriter _sections = new(Stream.Null);
    private readonly ZstdPatcher _zstd = new();
    private readonly int _frameLevel;
    private readonly int _opsLevel;
    private readonly byte[] _scratch;
    private readonly byte[] _stored;
    private readonly byte[] _decoded;
    private long _cachedOffset = -1;
    private int _cachedLength;

    public GroupEncoder(IImageSource oldSource, IImageSource newSource, SquashFsImage? oldImage, SquashFsImage? newImage, bool recompress, int frameLevel, int opsLevel)
    {
        _old = oldSource;
        _new = newSource;
        _oldImage = oldImage;
        _newImage = newImage;
        _newCodec = recompress && newImage is not null ? newImage.CreateCodec(CodecRole.Data) : null;
        _frameLevel = frameLevel;
        _opsLevel = opsLevel;
        var block = Math.Max(newImage?.BlockSize ?? 0, oldImage?.BlockSize ?? 0);
        _scratch = new byte[Math.Max(block, 4096)];
        _stored = new byte[Math.Max(block, 4096)];
        _decoded = new byte[Math.Max(oldImage?.BlockSize ?? 0, 4096)];
    }

    /// <summary>Encodes a group into its sections (content section first when framed); updates <paramref name="stats"/>.</summary>
    public List<(SectionKind Kind, byte[] Bytes)> Encode(UnitGroup group, DeltaStatistics stats)
    {
        var result = new List<(SectionKind, byte[])>();
        var reproducible = new HashSet<Unit>();
        byte[]? frame = null;
        var contentLength = 0;
        if (group.Framed)
        {
            // Decompress first, patch, and only when the frame pays verify the (expensive) recompression.
            var content = new byte[group.ContentLength];
            var slices = new List<(Unit Unit, int Start, int Length, long Cost)>();
            foreach (var unit in group.Units)
            {
                switch (unit)
                {
                    case BlockUnit { Reference.Count: > 0 } block:
                        var length = DecodeNewBlock(block, content.AsSpan(contentLength));
                        slices.Add((unit, contentLength, length, block.Block.StoredSize));
                        contentLength += length;
                        break;
                    case ChunkUnit chunk:
                        _new.ReadAt(chunk.Offset, content.AsSpan(contentLength, (int)chunk.Length));
                        slices.Add((unit, contentLength, (int)chunk.Length, chunk.Length));
                        contentLength += (int)chunk.Length;
                        break;
                }
            }

            if (contentLength > 0)
            {
                var reference = BuildReference(group.Reference);
                frame = _zstd.Encode(reference, content.AsSpan(0, contentLength), _frameLevel);
                var literalCost = slices.Sum(s => s.Cost);
                var hasChunks = slices.Any(s => s.Unit is ChunkUnit);
                var recompressing = slices.Any(s => s.Unit is BlockUnit { Raw: false, Block.IsCompressed: true });
                var overhead = frame.Length + (8L * slices.Count);
                if (!hasChunks && (recompressing ? overhead * 5 >= literalCost * 4 : overhead >= literalCost))
                {
                    // Saves less than a fifth: not worth recompressing (here to verify, on the device to
                    // rebuild); send the stored blocks.
                    frame = null;
                    contentLength = 0;
                }
                else
                {
                    var kept = 0;
                    foreach (var slice in slices)
                    {
                        if (slice.Unit is ChunkUnit || Reproduces((BlockUnit)slice.Unit, content.AsSpan(slice.Start, slice.Length)))
                        {
                            content.AsSpan(slice.Start, slice.Length).CopyTo(content.AsSpan(kept));
                            kept += slice.Length;
                            reproducible.Add(slice.Unit);
                        }
                        else
                        {
                            stats.IrreproducibleBlocks++;
                        }
                    }

                    if (kept != contentLength)
                    {
                        contentLength = kept;
                        frame = kept > 0 ? _zstd.Encode(reference, content.AsSpan(0, kept), _frameLevel) : null;
                    }
                }
            }
        }

        if (frame is not null)
        {
            var head = new ByteWriter(256 + (group.Reference.Count * 8));
            ContentFrame.WriteItems(head, contentLength, group.Reference);
            head.Blob(frame);
            result.Add((SectionKind.Content, _sections.Encode(SectionKind.Content, head.WrittenSpan, 0)));
        }

        var ops = new OpsBuilder(stats, 0);
        foreach (var unit in group.Units)
        {
            switch (unit)
            {
                case CopyUnit copy:
                    ops.Copy(copy.BaseOffset, copy.Length);
                    break;
                case ZerosUnit zeros:
                    ops.Zeros(zeros.Length);
                    break;
                case XorUnit xor:
                    ops.XorBase(xor.BaseOffset, xor.Xor);
                    break;
                case LiteralUnit literal:
                    var bytes = new byte[literal.Length];
                    _new.ReadAt(literal.Offset, bytes);
                    ops.Literal(bytes);
                    break;
                case BlockUnit block:
                    var stored = _stored.AsSpan(0, (int)block.Block.StoredSize);
                    _new.ReadAt(block.Block.Offset, stored);
                    if (reproducible.Contains(unit))
                    {
                        var flags = (block.Block.IsCompressed && !block.Raw ? BlockFlags.None : BlockFlags.Uncompressed)
                            | (block.Block.Kind == StoredBlockKind.Fragment ? BlockFlags.Fragment : BlockFlags.None);
                        ops.Block(flags, _lastLengths[block], stored);
                    }
                    else
                    {
                        ops.Literal(stored);
                    }

                    break;
                case ChunkUnit chunk:
                    var chunkBytes = new byte[chunk.Length];
                    _new.ReadAt(chunk.Offset, chunkBytes);
                    if (reproducible.Contains(unit))
                    {
                        ops.Block(BlockFlags.Uncompressed, chunkBytes.Length, chunkBytes);
                    }
                    else
                    {
                        ops.Literal(chunkBytes);
                    }

                    break;
                default:
                    throw new InvalidOperationException($"Unit {unit.GetType().Name} cannot be in an ops group.");
            }
        }

        _lastLengths.Clear();
        var payload = ops.Take();
        if (payload.Length > 0)
        {
            result.Add((SectionKind.Ops, _sections.Encode(SectionKind.Ops, payload, _opsLevel)));
        }

        return result;
    }

    /// <summary>Content length of each block decoded for the group being encoded.</summary>
    private readonly Dictionary<BlockUnit, int> _lastLengths = [];

    /// <summary>The content of a changed block: decompressed, or its stored bytes for raw units and uncompressed blocks.</summary>
    private int DecodeNewBlock(BlockUnit unit, Span<byte> destination)
    {
        var block = unit.Block;
        var stored = _stored.AsSpan(0, (int)block.StoredSize);
        _new.ReadAt(block.Offset, stored);
        int length;
        if (!block.IsCompressed || unit.Raw)
        {
            stored.CopyTo(destination);
            length = stored.Length;
        }
        else
        {
            length = _newImage!.ReadBlockData(block.Offset, block.StoredSize, true, destination[..Math.Min(destination.Length, _newImage.BlockSize)], "new block");
        }

        _lastLengths[unit] = length;
        return length;
    }

    /// <summary>True when the device can rebuild the block's stored bytes from <paramref name="content"/>.</summary>
    private bool Reproduces(BlockUnit unit, ReadOnlySpan<byte> content)
    {
        var block = unit.Block;
        if (!block.IsCompressed || unit.Raw)
        {
            return true;
        }

        var stored = _stored.AsSpan(0, (int)block.StoredSize);
        _new.ReadAt(block.Offset, stored);
        return _newCodec is not null
            && _newCodec.TryCompress(content, _scratch, out var written)
            && written == stored.Length
            && _scratch.AsSpan(0, written).SequenceEqual(stored);
    }

    private byte[] BuildReference(IReadOnlyList<ReferenceItem> items)
    {
        var total = items.Sum(i => (long)i.Length);
        var reference = new byte[total];
        var position = 0;
        foreach (var item in items)
        {
            ReadReferenceItem(item, reference.AsSpan(position, item.Length));
            position += item.Length;
        }

        return reference;
    }

    private void ReadReferenceItem(ReferenceItem item, Span<byte> destination)
    {
        if (item.IsRaw)
        {
            _old.ReadAt(item.Offset, destination);
            return;
        }

        if (_cachedOffset != item.Offset)
        {
            _cachedLength = _oldImage!.ReadBlockData(item.Offset, item.StoredSize, item.Compressed, _decoded, "base block");
            _cachedOffset = item.Offset;
        }

        _decoded.AsSpan(item.Start, Math.Min(item.Length, Math.Max(0, _cachedLength - item.Start))).CopyTo(destination);
    }

    public void Dispose()
    {
        _newCodec?.Dispose();
        _zstd.Dispose();
        _sections.Dispose();
    }
}
