using EdgeUpdater.Delta.Format;
using EdgeUpdater.Delta.Patching;
using EdgeUpdater.SquashFs.Compression;
using EdgeUpdater.SquashFs.IO;
using EdgeUpdater.SquashFs.Reader;

namespace EdgeUpdater.Delta.Generation;

/// <summary>
/// A run of units that become one ops section, preceded by up to two content sections: a zstd frame of
/// content patched against a reference (changed blocks, generic chunks) and a frame of new content (LZMA2
/// of new files' content at the best level; zstd of well-compressed blocks' stored bytes otherwise).
/// </summary>
internal sealed class UnitGroup
{
    public List<Unit> Units { get; } = [];

    public bool Framed { get; set; }

    /// <summary>Upper bound of the patched content (fragment blocks count as a whole block).</summary>
    public int PatchContentLength { get; set; }

    /// <summary>Upper bound of the new content.</summary>
    public int FreshContentLength { get; set; }

    public int ContentLength => PatchContentLength + FreshContentLength;

    public long LiteralLength { get; set; }

    public List<ReferenceItem> Reference { get; } = [];

    public HashSet<ReferenceItem> ReferenceSet { get; } = [];

    public long ReferenceLength { get; set; }

    /// <summary>zstd level of the group's patch frame, when not the level's (<see cref="FrameSettings.ZstdLevel"/>).</summary>
    public int? ZstdLevel { get; set; }
}

/// <summary>Everything a worker needs to turn groups into sections; one per worker thread.</summary>
internal sealed class GroupEncoder : IDisposable
{
    private readonly IImageSource _old;
    private readonly IImageSource _new;
    private readonly SquashFsImage? _oldImage;
    private readonly SquashFsImage? _newImage;
    private readonly bool _recompress;
    private readonly SectionWriter _sections = new(Stream.Null);
    private readonly ZstdPatcher _zstd = new();
    private readonly FrameSettings _settings;
    private readonly byte[] _stored;
    private readonly byte[] _decoded;

    // Reused from group to group: a group's frames are megabytes, and fresh arrays for each cost page
    // faults and zeroing (8 to 12 % of fast's CPU time on xz before).
    private readonly ByteWriter _head = new(1 << 16);
    private readonly ByteWriter _opsBuffer = new(1 << 16);
    private byte[] _patchContent = [];
    private byte[] _freshContent = [];
    private byte[] _reference = [];
    private byte[] _literal = [];
    private long _cachedOffset = -1;
    private int _cachedLength;

    public GroupEncoder(IImageSource oldSource, IImageSource newSource, SquashFsImage? oldImage, SquashFsImage? newImage, bool recompress, FrameSettings settings)
    {
        _old = oldSource;
        _new = newSource;
        _oldImage = oldImage;
        _newImage = newImage;
        _recompress = recompress && newImage is not null;
        _settings = settings;
        var block = Math.Max(newImage?.BlockSize ?? 0, oldImage?.BlockSize ?? 0);
        _stored = new byte[Math.Max(block, 4096)];
        _decoded = new byte[Math.Max(oldImage?.BlockSize ?? 0, 4096)];
    }

    /// <summary>Encodes a group into its sections (content sections first); updates <paramref name="stats"/>.</summary>
    public List<(SectionKind Kind, byte[] Bytes)> Encode(UnitGroup group, DeltaStatistics stats, CancellationToken cancellationToken = default)
    {
        var result = new List<(SectionKind, byte[])>();
        // Which frame each rebuilt unit takes its content from, and that content's length.
        var frameOf = new Dictionary<Unit, int>();
        var contentLengths = new Dictionary<Unit, int>();
        var frames = 0;
        if (group.Framed)
        {
            var patch = new FrameDraft(Scratch(ref _patchContent, group.PatchContentLength));
            var fresh = new FrameDraft(Scratch(ref _freshContent, group.FreshContentLength));
            foreach (var unit in group.Units)
            {
                cancellationToken.ThrowIfCancellationRequested();
                switch (unit)
                {
                    case BlockUnit { Reference.Count: > 0 } block:
                        patch.Add(unit, DecodeNewBlock(block, patch.Free), block.Block.StoredSize, 0);
                        break;
                    case BlockUnit { Fresh: true } block:
                        fresh.Add(unit, DecodeNewBlock(block, fresh.Free), block.Block.StoredSize, block.Machine);
                        break;
                    case ChunkUnit chunk:
                        _new.ReadAt(chunk.Offset, patch.Free[..(int)chunk.Length]);
                        patch.Add(unit, (int)chunk.Length, chunk.Length, 0);
                        break;
                }
            }

            if (patch.Length > 0)
            {
                // Decompress first, patch, and only when the frame pays verify the (expensive) recompression.
                var referenceLength = BuildReference(group.Reference);
                var recompressing = patch.Slices.Any(s => s.Unit is BlockUnit { Raw: false, Block.IsCompressed: true });
                var frame = Finish(patch, stats, "zstd", (content, cost, count) =>
                {
                    var encoded = _zstd.Compress(_reference.AsSpan(0, referenceLength), content, group.ZstdLevel ?? _settings.ZstdLevel);
                    var overhead = encoded.Length + (8L * count);
                    // Generic chunks are kept whatever; recompressed blocks must save a fifth of their stored
                    // bytes (recompression costs time here to verify and on the device to rebuild).
                    return patch.Slices.Any(s => s.Unit is ChunkUnit) || (recompressing ? overhead * 5 < cost * 4 : overhead < cost) ? encoded : default;
                }, cancellationToken);
                if (!frame.IsEmpty)
                {
                    _head.Clear();
                    ContentFrame.WriteZstdHead(_head, patch.Length, group.Reference);
                    _head.Blob(frame.Span);
                    result.Add((SectionKind.Content, _sections.Encode(SectionKind.Content, _head.WrittenSpan, 0)));
                    patch.Assign(frames++, frameOf, contentLengths);
                }
            }

            if (fresh.Length > 0 && fresh.Slices.All(s => s.Unit is BlockUnit { Raw: true }))
            {
                // Stored bytes of well-compressed blocks, taken as they are: nothing to recompress or verify.
                var frame = Finish(fresh, stats, "pack", (content, cost, count) =>
                {
                    var encoded = _zstd.Pack(content, _settings.OptimalPack);
                    return encoded.Length + (8L * count) < cost ? encoded : default;
                }, cancellationToken);
                if (!frame.IsEmpty)
                {
                    _head.Clear();
                    ContentFrame.WriteZstdHead(_head, fresh.Length, []);
                    _head.Blob(frame.Span);
                    result.Add((SectionKind.Content, _sections.Encode(SectionKind.Content, _head.WrittenSpan, 0)));
                    fresh.Assign(frames++, frameOf, contentLengths);
                    stats.PackedBlocks += fresh.Slices.Count;
                }
            }
            else if (fresh.Length > 0)
            {
                var filter = ChooseFilter(fresh);
                var frame = Finish(fresh, stats, "lzma2", (content, cost, count) =>
                {
                    // Kept only when it saves a sixteenth of the stored blocks: the device recompresses every one.
                    // LzmaCoder's null (the stream did not fit) converts to the empty frame, "does not pay".
                    var capacity = cost - (cost / 16) - (8L * count);
                    return capacity > 0 ? LzmaCoder.Encode(content, filter, LzmaCoder.DictionaryFor(content.Length), (int)Math.Min(capacity, int.MaxValue)) : default;
                }, cancellationToken);
                if (!frame.IsEmpty)
                {
                    _head.Clear();
                    ContentFrame.WriteLzmaHead(_head, fresh.Length, filter, LzmaCoder.DictionaryFor(fresh.Length));
                    _head.Blob(frame.Span);
                    result.Add((SectionKind.Content, _sections.Encode(SectionKind.Content, _head.WrittenSpan, 0)));
                    fresh.Assign(frames++, frameOf, contentLengths);
                    stats.NewFileBlocksRebuilt += fresh.Slices.Count;
                }
            }
        }

        _opsBuffer.Clear();
        var ops = new OpsBuilder(stats, _opsBuffer);
        foreach (var unit in group.Units)
        {
            cancellationToken.ThrowIfCancellationRequested();
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
                    var bytes = Scratch(ref _literal, checked((int)literal.Length)).AsSpan(0, (int)literal.Length);
                    _new.ReadAt(literal.Offset, bytes);
                    ops.Literal(bytes);
                    break;
                case BlockUnit block:
                    var stored = _stored.AsSpan(0, (int)block.Block.StoredSize);
                    _new.ReadAt(block.Block.Offset, stored);
                    if (frameOf.TryGetValue(unit, out var frame))
                    {
                        var flags = (block.Block.IsCompressed && !block.Raw ? BlockFlags.None : BlockFlags.Uncompressed)
                            | (block.Block.Kind == StoredBlockKind.Fragment ? BlockFlags.Fragment : BlockFlags.None)
                            | (BlockFlags)(frame << 4);
                        ops.Block(flags, contentLengths[unit], stored);
                    }
                    else
                    {
                        ops.Literal(stored);
                    }

                    break;
                case ChunkUnit chunk:
                    var chunkBytes = Scratch(ref _literal, checked((int)chunk.Length)).AsSpan(0, (int)chunk.Length);
                    _new.ReadAt(chunk.Offset, chunkBytes);
                    if (frameOf.TryGetValue(unit, out var chunkFrame))
                    {
                        ops.Block(BlockFlags.Uncompressed | (BlockFlags)(chunkFrame << 4), chunkBytes.Length, chunkBytes);
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

        var payload = ops.Finish();
        if (payload.Length > 0)
        {
            result.Add((SectionKind.Ops, _sections.Encode(SectionKind.Ops, payload, _settings.OpsLevel)));
        }

        return result;
    }

    /// <summary>
    /// Encodes a drafted frame; empty when it does not pay (<paramref name="encode"/> says so by returning an empty
    /// frame for the content, its slices' stored cost and count). When it pays, keeps only the blocks the
    /// device's codec reproduces and encodes again without the others.
    /// </summary>
    private ReadOnlyMemory<byte> Finish(FrameDraft draft, DeltaStatistics stats, string coder, FrameEncoder encode, CancellationToken cancellationToken)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var frame = encode(draft.Content.AsSpan(0, draft.Length), draft.Slices.Sum(s => s.Cost), draft.Slices.Count);
        AddPhase(stats, coder, watch);
        if (frame.IsEmpty)
        {
            draft.Clear();
            return frame;
        }

        var reproduced = Verify(draft, stats, cancellationToken);
        var kept = new List<FrameDraft.Slice>();
        var length = 0;
        for (var i = 0; i < draft.Slices.Count; i++)
        {
            var slice = draft.Slices[i];
            var content = draft.Content.AsSpan(slice.Start, slice.Length);
            if (reproduced[i])
            {
                content.CopyTo(draft.Content.AsSpan(length));
                kept.Add(slice with { Start = length });
                length += slice.Length;
            }
            else
            {
                stats.IrreproducibleBlocks++;
            }
        }

        AddPhase(stats, "verify", watch);
        if (kept.Count != draft.Slices.Count)
        {
            draft.Replace(kept, length);
            frame = length > 0 ? encode(draft.Content.AsSpan(0, length), kept.Sum(s => s.Cost), kept.Count) : default;
            AddPhase(stats, coder, watch);
            if (frame.IsEmpty)
            {
                draft.Clear();
            }
        }

        return frame;
    }

    /// <summary>Adds the time since the last call to a per-worker phase (thread time summed over workers, not wall-clock).</summary>
    private static void AddPhase(DeltaStatistics stats, string phase, System.Diagnostics.Stopwatch watch)
    {
        stats.PhaseMilliseconds[phase] = stats.PhaseMilliseconds.GetValueOrDefault(phase) + watch.Elapsed.TotalMilliseconds;
        watch.Restart();
    }

    /// <summary>The BCJ filter for new content: the machine of at least half of its bytes, when liblzma has a filter for it.</summary>
    private byte ChooseFilter(FrameDraft draft)
    {
        foreach (var group in draft.Slices.Where(s => s.Machine != 0).GroupBy(s => s.Machine))
        {
            if (group.Sum(s => (long)s.Length) * 2 < draft.Length)
            {
                continue;
            }

            byte filter = group.Key switch
            {
                3 or 62 => LzmaCoder.X86,
                183 => LzmaCoder.Arm64,
                _ => 0,
            };
            return _settings.Filters.Contains(filter) ? filter : (byte)0;
        }

        return 0;
    }

    /// <summary>The content of a changed block: decompressed, or its stored bytes for raw units and uncompressed blocks.</summary>
    private int DecodeNewBlock(BlockUnit unit, Span<byte> destination)
    {
        var block = unit.Block;
        var stored = _stored.AsSpan(0, (int)block.StoredSize);
        _new.ReadAt(block.Offset, stored);
        if (!block.IsCompressed || unit.Raw)
        {
            stored.CopyTo(destination);
            return stored.Length;
        }

        return _newImage!.ReadBlockData(block.Offset, block.StoredSize, true, destination[..Math.Min(destination.Length, _newImage.BlockSize)], "new block");
    }

    /// <summary>
    /// Which of a drafted frame's slices the device can rebuild: each block's content recompressed with B's
    /// codec must give its stored bytes. The slowest step of a group, so it runs on up to
    /// <see cref="FrameSettings.Parallelism"/> threads, each with its own codec. Outcomes already in
    /// <see cref="FrameSettings.Reproduction"/> are taken from it; the others are added to it.
    /// </summary>
    private bool[] Verify(FrameDraft draft, DeltaStatistics stats, CancellationToken cancellationToken)
    {
        var reproduced = new bool[draft.Slices.Count];
        if (!draft.Slices.Any(s => s.Unit is BlockUnit { Raw: false, Block.IsCompressed: true }))
        {
            // Stored bytes patched as they are (fast, generic): nothing to recompress.
            Array.Fill(reproduced, true);
            return reproduced;
        }

        var record = _settings.Reproduction;
        var unknown = new List<int>(draft.Slices.Count);
        for (var i = 0; i < draft.Slices.Count; i++)
        {
            if (record is not null && draft.Slices[i].Unit is BlockUnit { Raw: false, Block.IsCompressed: true } block && record.TryGet(block.Block.Offset, out var known))
            {
                reproduced[i] = known;
                stats.ProofsRecalled++;
            }
            else
            {
                unknown.Add(i);
            }
        }

        ParallelWork.Run(() =>
            Parallel.For(
                0,
                unknown.Count,
                new ParallelOptions { CancellationToken = cancellationToken, MaxDegreeOfParallelism = _settings.Parallelism },
                () => new RecompressionCheck(_new, _recompress ? _newImage : null),
                (u, _, check) =>
                {
                    var i = unknown[u];
                    var slice = draft.Slices[i];
                    reproduced[i] = slice.Unit is ChunkUnit || check.Reproduces((BlockUnit)slice.Unit, draft.Content.AsSpan(slice.Start, slice.Length));
                    if (record is not null && slice.Unit is BlockUnit { Raw: false, Block.IsCompressed: true } block)
                    {
                        record.Set(block.Block.Offset, reproduced[i]);
                    }

                    return check;
                },
                check => check.Dispose()));

        return reproduced;
    }

    /// <summary>Reads a group's reference into <see cref="_reference"/>; returns its length.</summary>
    private int BuildReference(IReadOnlyList<ReferenceItem> items)
    {
        var reference = Scratch(ref _reference, checked((int)items.Sum(i => (long)i.Length)));
        var position = 0;
        foreach (var item in items)
        {
            ReadReferenceItem(item, reference.AsSpan(position, item.Length));
            position += item.Length;
        }

        return position;
    }

    /// <summary><paramref name="buffer"/>, replaced by a larger one when it holds fewer than <paramref name="length"/> bytes.</summary>
    private static byte[] Scratch(ref byte[] buffer, int length)
    {
        if (buffer.Length < length)
        {
            buffer = new byte[length];
        }

        return buffer;
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

    /// <summary>
    /// Encodes a frame's content (its blocks' stored bytes cost <c>cost</c>); empty when it does not pay (a frame
    /// never is). The frame may be in the coder's own buffer, valid until the group's next frame is encoded.
    /// </summary>
    private delegate ReadOnlyMemory<byte> FrameEncoder(ReadOnlySpan<byte> content, long cost, int count);

    public void Dispose()
    {
        _zstd.Dispose();
        _sections.Dispose();
    }

    /// <summary>The content of one frame being drafted: blocks decoded in order, each with its stored cost.</summary>
    private sealed class FrameDraft
    {
        /// <param name="buffer">At least the frame's upper bound of content; the draft owns it until the group is encoded.</param>
        public FrameDraft(byte[] buffer)
        {
            Content = buffer;
        }

        public readonly record struct Slice(Unit Unit, int Start, int Length, long Cost, ushort Machine);

        public byte[] Content { get; }

        public int Length { get; private set; }

        public List<Slice> Slices { get; private set; } = [];

        public Span<byte> Free => Content.AsSpan(Length);

        public void Add(Unit unit, int length, long cost, ushort machine)
        {
            Slices.Add(new Slice(unit, Length, length, cost, machine));
            Length += length;
        }

        public void Replace(List<Slice> slices, int length)
        {
            Slices = slices;
            Length = length;
        }

        public void Clear() => Replace([], 0);

        /// <summary>Records that the kept blocks take their content from frame <paramref name="index"/>.</summary>
        public void Assign(int index, Dictionary<Unit, int> frameOf, Dictionary<Unit, int> contentLengths)
        {
            foreach (var slice in Slices)
            {
                frameOf[slice.Unit] = index;
                contentLengths[slice.Unit] = slice.Length;
            }
        }
    }
}

/// <summary>How a group's frames are coded.</summary>
/// <param name="ZstdLevel">zstd level of patch frames.</param>
/// <param name="OpsLevel">zstd level of ops sections.</param>
/// <param name="Filters">BCJ filters LZMA2 frames may use (both sides' liblzma have them).</param>
/// <param name="Parallelism">Threads a group may use to verify recompression (the generator's own limit).</param>
/// <param name="Reproduction">Known outcomes of recompressing the new image's blocks (taken, and extended), or null.</param>
/// <param name="OptimalPack">Pack frames with zstd's optimal parser (see <see cref="Patching.ZstdPatcher.Pack"/>).</param>
internal sealed record FrameSettings(int ZstdLevel, int OpsLevel, IReadOnlySet<byte> Filters, int Parallelism, ReproductionRecord? Reproduction, bool OptimalPack);
