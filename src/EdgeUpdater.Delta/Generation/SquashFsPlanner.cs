using System.IO.Hashing;
using System.Text.RegularExpressions;
using EdgeUpdater.Delta.Format;
using EdgeUpdater.Delta.Metadata;
using EdgeUpdater.Delta.Patching;
using EdgeUpdater.SquashFs;
using EdgeUpdater.SquashFs.Compression;
using EdgeUpdater.SquashFs.Format;
using EdgeUpdater.SquashFs.Reader;

namespace EdgeUpdater.Delta.Generation;

/// <summary>
/// Plans a SquashFS-aware delta: indexes the old image's stored blocks by content, walks the new image's
/// bytes in order (superblock, data and fragment blocks, metadata region, padding) and says for each
/// piece whether it is copied, rebuilt from patched content, or sent literally; builds the metadata section.
/// </summary>
internal sealed partial class SquashFsPlanner
{
    // Old blocks around the same position a changed block is patched against: content moves within a
    // file (best); stored bytes only share prefixes with the block at the same index (fast).
    private const int ReferenceWindowBefore = 4;
    private const int ReferenceWindowAfter = 12;
    private const int RawReferenceWindow = 1;
    private const int MaxFragmentReferences = 8;

    /// <summary>
    /// At most this many changed blocks with an old version make a small update (a config file edited, a
    /// package or two), whose blocks both levels rebuild exactly when their stored bytes patch badly against
    /// the old version's (see <see cref="SettleSmallUpdate"/>). Bounds what the generator proves and the device
    /// recompresses: 512 KiB at the usual block size.
    /// </summary>
    private const int SmallUpdateBlocks = 4;

    /// <summary>
    /// Size of a small update block's patch of stored bytes from which the block is rebuilt instead (or a
    /// quarter of the block size, when that is less): below it, the patch costs about as little as the
    /// rebuilt block, without the proof here and the recompression on the device.
    /// </summary>
    private const int SmallUpdatePatch = 4096;

    private readonly SquashFsImage _old;
    private readonly SquashFsImage _new;
    private readonly DeltaLevel _level;
    private readonly int _formatVersion;
    private readonly bool _recompress;
    private readonly ReproductionRecord? _reproduction;
    private readonly bool _freshFrames;
    private readonly bool _packStoredBytes;
    private readonly DeltaStatistics _stats;
    private readonly long _metadataTableBudget;

    // freshFrames: blocks of new files (nothing to patch against) may go into LZMA2 content frames.
    public SquashFsPlanner(SquashFsImage oldImage, SquashFsImage newImage, DeltaLevel level, int formatVersion, bool recompress, bool freshFrames, ReproductionRecord? reproduction, long metadataTableBudget, DeltaStatistics stats)
    {
        _metadataTableBudget = metadataTableBudget;
        // LZMA's output (xz, lzma) has nothing left for zstd to find; deflate's, LZO's, LZ4's and zstd's have.
        _packStoredBytes = newImage.Superblock.Compressor is not (CompressorId.Xz or CompressorId.Lzma);
        _reproduction = reproduction;
        _old = oldImage;
        _new = newImage;
        _level = level;
        _formatVersion = formatVersion;
        _recompress = recompress;
        _freshFrames = freshFrames;
        _stats = stats;
    }

    /// <summary>
    /// When the update changes at most <see cref="SmallUpdateBlocks"/> blocks that have an old version, each of
    /// them is rebuilt (content patched against the old version's content, proved here, recompressed on the
    /// device) exactly when its stored bytes patch against the old version's to <see cref="SmallUpdatePatch"/>
    /// or more, and sent as that patch otherwise, at both levels. A one-line edit changes a few bytes of content,
    /// but with deflate or zstd the compressed stream from the start of the edit's Huffman or entropy block:
    /// B to C took 37,636 bytes on the test pairs' xz and 17,635 on the Debian pair's gzip, against about 500
    /// rebuilt. Where the stored bytes patch small (the Debian pair's xz: under 1 KB), rebuilding would save
    /// little and cost the device a recompression of the whole block (a 128 KiB xz block: about 20 ms of CPU).
    /// </summary>
    private void SettleSmallUpdate(List<Unit> units, Ownership owners)
    {
        var changed = new List<int>();
        for (var i = 0; i < units.Count; i++)
        {
            if (units[i] is BlockUnit { Reference.Count: > 0, Block.IsCompressed: true })
            {
                changed.Add(i);
                if (changed.Count > SmallUpdateBlocks)
                {
                    return;
                }
            }
        }

        using var zstd = new ZstdPatcher();
        var stored = new byte[_new.BlockSize];
        var threshold = Math.Min(SmallUpdatePatch, _new.BlockSize / 4);
        foreach (var i in changed)
        {
            var unit = (BlockUnit)units[i];
            var block = unit.Block;
            var raw = unit.Raw ? unit.Reference : owners.ReferenceFor(block, raw: true);
            if (raw.Count == 0)
            {
                continue;
            }

            var reference = new byte[raw.Sum(r => r.Length)];
            var filled = 0;
            foreach (var item in raw)
            {
                _old.ReadStoredBytes(item.Offset, reference.AsSpan(filled, item.Length));
                filled += item.Length;
            }

            var patch = zstd.Compress(reference, _new.GetStoredBytes(block.Offset, (int)block.StoredSize, stored), DeltaGenerator.FastContentLevel, longDistance: false).Span;
            if (patch.Length >= threshold && unit.Raw && owners.ReferenceFor(block, raw: false) is { Count: > 0 } content)
            {
                units[i] = new BlockUnit(block, content);
            }
            else if (patch.Length < threshold && !unit.Raw)
            {
                units[i] = new BlockUnit(block, raw, Raw: true);
            }
        }
    }

    /// <summary>
    /// True for a data block its compressor shrank to at most 35 % of its content: what is left in such
    /// stored bytes are short repeats that a zstd frame of their own finds (<see cref="Patching.ZstdPatcher.Pack"/>).
    /// On the Debian pair's fast delta: gzip 37 KB smaller (optimal parser), zstd 8 KB (lazy parser). Blocks compressed
    /// less well give little (gzip blocks over a half: nothing), and beyond 0.35 the zstd pair's delta grew,
    /// since the ops sections' own compression already finds part of it.
    /// </summary>
    private static bool PacksFurther(StoredBlock block) =>
        block.Kind == StoredBlockKind.Data && block.IsCompressed && block.StoredSize * 20L <= block.UncompressedSize * 7L;

    /// <summary>
    /// The plan in new-image order. Returns or throws only when the planner's own worker tasks have ended,
    /// except the returned metadata unit's encoding, which the caller awaits. The check that B's metadata
    /// blocks recompress or replay uses up to <paramref name="parallelism"/> threads.
    /// </summary>
    public List<Unit> Plan(MetadataPatchLevels metadataPatchLevels, int parallelism, CancellationToken cancellationToken = default)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        void Phase(string name)
        {
            _stats.PhaseMilliseconds[name] = watch.Elapsed.TotalMilliseconds;
            watch.Restart();
        }

        // The two images are independent: index and walk them on two threads; verify how the device can
        // rebuild the new image's metadata blocks (recompress, replay) on a third.
        var replaysDecisions = MetadataSection.ReplaysDecisions(_new, _formatVersion);
        var metadataProof = _recompress || replaysDecisions
            ? Task.Run(() => MetadataProof.Run(_new, parallelism, _reproduction, _recompress, replaysDecisions, cancellationToken), cancellationToken)
            : Task.FromResult(MetadataProof.None(_new));
        var oldSide = Task.Run(() =>
        {
            var catalog = ImageCatalog.Build(_old);
            var blocks = catalog.StoredBlocks;
            var index = new Dictionary<(UInt128, uint), long>(blocks.Count);
            var scratch = new byte[_old.BlockSize];
            foreach (var block in blocks)
            {
                cancellationToken.ThrowIfCancellationRequested();
                index.TryAdd((XxHash128.HashToUInt128(_old.GetStoredBytes(block.Offset, (int)block.StoredSize, scratch)), block.StoredSize), block.Offset);
            }

            return (index, Ownership.OldSide(catalog));
        }, cancellationToken);
        var newSide = Task.Run(() =>
        {
            var catalog = ImageCatalog.Build(_new);
            return (catalog.StoredBlocks, Ownership.NewSide(catalog));
        }, cancellationToken);
        var handedOver = false;
        try
        {
            var units = Plan(metadataPatchLevels, parallelism, metadataProof, oldSide, newSide, Phase, cancellationToken);
            handedOver = true;
            return units;
        }
        finally
        {
            // Never leave a worker reading the images after returning: the caller disposes them. A returned
            // plan's metadata unit owns the recompression check; the caller awaits that unit's encoding.
            try
            {
                Task.WaitAll(handedOver ? [oldSide, newSide] : [metadataProof, oldSide, newSide], CancellationToken.None);
            }
            catch (AggregateException)
            {
                // Observed: the first failure (or the cancellation) is what propagates.
            }
        }
    }

    private List<Unit> Plan(
        MetadataPatchLevels metadataPatchLevels,
        int parallelism,
        Task<MetadataProof> metadataProof,
        Task<(Dictionary<(UInt128, uint), long> Index, Ownership.OldFileSet Files)> oldSide,
        Task<(List<StoredBlock> Blocks, Ownership.NewFileSet Files)> newSide,
        Action<string> phase,
        CancellationToken cancellationToken)
    {
        var units = new List<Unit>();
        var sb = _new.Superblock;
        var dataEnd = (long)sb.InodeTableStart;
        var (index, oldFiles) = oldSide.GetAwaiter().GetResult();
        var (newBlocks, newFiles) = newSide.GetAwaiter().GetResult();
        var buffer = new byte[Math.Max(_old.BlockSize, _new.BlockSize)];
        var owners = new Ownership(oldFiles, newFiles);
        phase("index");
        var rebuildContent = _level == DeltaLevel.Best && _recompress;
        var pairs = new List<(ulong From, ulong To)>();
        var machines = new Dictionary<string, ushort>(StringComparer.Ordinal);

        // Superblock: XOR against the old one (most fields are equal or close).
        var oldSuper = new byte[Superblock.Size];
        var newSuper = new byte[Superblock.Size];
        _old.ReadStoredBytes(0, oldSuper);
        _new.ReadStoredBytes(0, newSuper);
        for (var i = 0; i < newSuper.Length; i++)
        {
            newSuper[i] ^= oldSuper[i];
        }

        units.Add(new XorUnit(0, newSuper));
        long position = Superblock.Size;
        foreach (var block in newBlocks)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (block.Offset < position || block.Offset + block.StoredSize > dataEnd)
            {
                throw new InvalidOperationException("unsupported layout");
            }

            if (block.Offset > position)
            {
                AddGap(units, position, block.Offset);
            }

            var span = _new.GetStoredBytes(block.Offset, (int)block.StoredSize, buffer);
            // A 128-bit content hash and the same size: the blocks are taken as equal without a second
            // read (a collision would only make the device refuse the result by its SHA-256).
            if (index.TryGetValue((XxHash128.HashToUInt128(span), block.StoredSize), out var oldOffset))
            {
                units.Add(new CopyUnit(oldOffset, block.StoredSize));
                pairs.Add(((ulong)oldOffset, (ulong)block.Offset));
                position = block.Offset + block.StoredSize;
                continue;
            }

            if (!rebuildContent)
            {
                var reference = owners.ReferenceFor(block, raw: true);
                units.Add(new BlockUnit(block, reference, Raw: true, Fresh: reference.Count == 0 && _packStoredBytes && PacksFurther(block)));
            }
            else if (owners.ReferenceFor(block, raw: false) is { Count: > 0 } reference)
            {
                units.Add(new BlockUnit(block, reference));
            }
            else
            {
                var fresh = _freshFrames && block.IsCompressed;
                units.Add(new BlockUnit(block, [], Fresh: fresh, Machine: fresh ? MachineOf(block, owners, machines) : (ushort)0));
            }

            position = block.Offset + block.StoredSize;
        }

        if (position < dataEnd)
        {
            AddGap(units, position, dataEnd);
        }

        if (_recompress)
        {
            SettleSmallUpdate(units, owners);
        }

        phase("blocks");

        // Metadata region, then the padding up to the image end. The metadata section is encoded in the
        // background (started last, once nothing here can fail), while the caller encodes the data area.
        var maps = BuildMaps(pairs, owners);
        phase("maps");
        var metaLength = (long)sb.BytesUsed - dataEnd;
        var metadataIndex = units.Count;
        var end = _new.Source.Length;
        if ((long)sb.BytesUsed < end)
        {
            AddTail(units, (long)sb.BytesUsed, end);
        }

        // Not given the token: a task cancelled before it starts would never run EncodeMetadata, whose end is
        // what tells the caller that the proof, still reading B, has ended too. Cancelled, it returns at once.
        var encoding = Task.Run(() => EncodeMetadata(maps.Data, maps.Fragments, metadataPatchLevels, parallelism, metadataProof, cancellationToken), CancellationToken.None);
        units.Insert(metadataIndex, new MetadataUnit(encoding, dataEnd, metaLength));
        return units;
    }

    private MetadataEncoding EncodeMetadata(RelocationMap dataMap, RelocationMap fragmentMap, MetadataPatchLevels patchLevels, int parallelism, Task<MetadataProof> proof, CancellationToken cancellationToken)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            var payload = MetadataSection.Encode(_old, _new, dataMap, fragmentMap, () => proof.GetAwaiter().GetResult(), patchLevels, _metadataTableBudget, _formatVersion, parallelism, out var stats);
            var recalled = proof.GetAwaiter().GetResult().Recalled;
            cancellationToken.ThrowIfCancellationRequested();
            return new MetadataEncoding(payload, stats.BlocksRecompressed, stats.BlocksLiteral, stats.TablesDerived, recalled, watch.Elapsed.TotalMilliseconds, stats.BlocksReplayed);
        }
        catch (Exception e) when (e is SquashFsException or InvalidOperationException)
        {
            // B's tables do not read, or lie in a way the format cannot describe: the region goes literally.
            // (Damaged tables of the base only cost their prediction: MetadataPredictor.)
            return new MetadataEncoding(null, 0, 0, 0, 0, watch.Elapsed.TotalMilliseconds);
        }
        finally
        {
            // The proof reads B: it ends before this encoding does, however the encoding ended, so that the
            // generator, which awaits the encoding before it closes the images, leaves no reader behind.
            try
            {
                proof.Wait(CancellationToken.None);
            }
            catch (AggregateException)
            {
                // Its failure, if any, was observed above or is irrelevant after the encoding's own.
            }
        }
    }

    /// <summary>The ELF machine of the file that owns a data block (0 when not ELF): read from the file's first block, once per file.</summary>
    private ushort MachineOf(StoredBlock block, Ownership owners, Dictionary<string, ushort> cache)
    {
        if (block.Kind != StoredBlockKind.Data || owners.NewMapOf(block.Offset) is not (var path, var map))
        {
            return 0;
        }

        if (!cache.TryGetValue(path, out var machine))
        {
            var first = map.Blocks.Count > 0 ? map.Blocks[0] : default;
            machine = 0;
            if (first.StoredSize > 0 && !first.IsSparse)
            {
                var content = new byte[_new.BlockSize];
                var length = _new.ReadBlockData(first.Offset, first.StoredSize, first.IsCompressed, content, "new block");
                machine = ElfMachine(content.AsSpan(0, length));
            }

            cache[path] = machine;
        }

        return machine;
    }

    /// <summary>e_machine of an ELF header (3 i386, 62 x86-64, 183 AArch64, ...), 0 when the bytes are not ELF.</summary>
    internal static ushort ElfMachine(ReadOnlySpan<byte> header)
    {
        if (header.Length < 20 || !header.StartsWith("\u007FELF"u8))
        {
            return 0;
        }

        return header[5] == 2 ? System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(header[18..]) : System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(header[18..]);
    }

    private void AddGap(List<Unit> units, long start, long end)
    {
        var length = end - start;
        if (end <= _old.Source.Length && length <= 1 << 20)
        {
            var a = new byte[length];
            var b = new byte[length];
            _old.Source.ReadAt(start, a);
            _new.Source.ReadAt(start, b);
            if (a.AsSpan().SequenceEqual(b))
            {
                units.Add(new CopyUnit(start, length));
                return;
            }
        }

        units.Add(new LiteralUnit(start, length));
    }

    private void AddTail(List<Unit> units, long start, long end)
    {
        var buffer = new byte[1 << 16];
        for (var p = start; p < end; p += buffer.Length)
        {
            var n = (int)Math.Min(buffer.Length, end - p);
            _new.Source.ReadAt(p, buffer.AsSpan(0, n));
            if (buffer.AsSpan(0, n).ContainsAnyExcept((byte)0))
            {
                units.Add(new LiteralUnit(start, end - start));
                return;
            }
        }

        units.Add(new ZerosUnit(end - start));
    }

    private static (RelocationMap Data, RelocationMap Fragments) BuildMaps(List<(ulong From, ulong To)> copyPairs, Ownership owners)
    {
        var dataPairs = new List<(ulong, ulong)>(copyPairs);
        var fragmentPairs = new List<(ulong, ulong)>();
        foreach (var (path, newInode) in owners.NewFiles)
        {
            if (!owners.OldFiles.TryGetValue(path, out var oldInode))
            {
                continue;
            }

            dataPairs.Add((oldInode.BlocksStart, newInode.BlocksStart));
            if (oldInode.FragmentIndex != Inode.NoFragment && newInode.FragmentIndex != Inode.NoFragment)
            {
                fragmentPairs.Add((MetadataPredictor.FragmentKey(oldInode.FragmentIndex, oldInode.FragmentOffset), MetadataPredictor.FragmentKey(newInode.FragmentIndex, newInode.FragmentOffset)));
            }
        }

        return (RelocationMap.FromPairs(dataPairs), RelocationMap.FromPairs(fragmentPairs));
    }

    /// <summary>Which files own which blocks, in both images, and what in the old image each changed block should be patched against.</summary>
    private sealed partial class Ownership
    {
        private readonly Dictionary<long, (string Path, int Index)> _dataOwners;
        private readonly Dictionary<string, FileBlockMap> _newMaps;
        private readonly Dictionary<long, List<string>> _fragmentOwners;
        private readonly Dictionary<string, FileBlockMap> _oldMaps;
        private readonly Dictionary<string, string?> _similar;
        private readonly Dictionary<long, int> _oldFragmentUse;

        public Ownership(OldFileSet oldFiles, NewFileSet newFiles)
        {
            OldFiles = oldFiles.Files;
            _oldMaps = oldFiles.Maps;
            _oldFragmentUse = oldFiles.FragmentUse;
            _similar = oldFiles.Similar;
            NewFiles = newFiles.Files;
            _dataOwners = newFiles.DataOwners;
            _newMaps = newFiles.Maps;
            _fragmentOwners = newFiles.FragmentOwners;
        }

        public sealed record OldFileSet(Dictionary<string, Inode> Files, Dictionary<string, FileBlockMap> Maps, Dictionary<long, int> FragmentUse, Dictionary<string, string?> Similar);

        public sealed record NewFileSet(List<(string Path, Inode Inode)> Files, Dictionary<long, (string Path, int Index)> DataOwners, Dictionary<long, List<string>> FragmentOwners, Dictionary<string, FileBlockMap> Maps);

        public static OldFileSet OldSide(ImageCatalog catalog)
        {
            var files = new Dictionary<string, Inode>(StringComparer.Ordinal);
            var maps = new Dictionary<string, FileBlockMap>(StringComparer.Ordinal);
            foreach (var (path, inode, map) in catalog.Files)
            {
                files[path] = inode;
                maps[path] = map;
            }

            var fragmentUse = new Dictionary<long, int>();
            foreach (var block in catalog.StoredBlocks)
            {
                if (block.Kind == StoredBlockKind.Fragment)
                {
                    fragmentUse[block.Offset] = block.UncompressedSize;
                }
            }

            var similar = new Dictionary<string, string?>(StringComparer.Ordinal);
            foreach (var path in files.Keys)
            {
                var key = Normalize(path);
                similar[key] = similar.ContainsKey(key) ? null : path;
            }

            return new OldFileSet(files, maps, fragmentUse, similar);
        }

        public static NewFileSet NewSide(ImageCatalog catalog)
        {
            var files = new List<(string, Inode)>();
            var dataOwners = new Dictionary<long, (string, int)>();
            var fragmentOwners = new Dictionary<long, List<string>>();
            var maps = new Dictionary<string, FileBlockMap>(StringComparer.Ordinal);
            foreach (var (path, inode, map) in catalog.Files)
            {
                files.Add((path, inode));
                maps[path] = map;
                for (var i = 0; i < map.Blocks.Count; i++)
                {
                    if (!map.Blocks[i].IsSparse)
                    {
                        dataOwners.TryAdd(map.Blocks[i].Offset, (path, i));
                    }
                }

                if (map.Fragment is { } fragment)
                {
                    if (!fragmentOwners.TryGetValue(fragment.BlockOffset, out var list))
                    {
                        fragmentOwners[fragment.BlockOffset] = list = [];
                    }

                    list.Add(path);
                }
            }

            return new NewFileSet(files, dataOwners, fragmentOwners, maps);
        }

        public Dictionary<string, Inode> OldFiles { get; }

        /// <summary>The new file (path and block map) that owns the data block at <paramref name="offset"/>.</summary>
        public (string Path, FileBlockMap Map)? NewMapOf(long offset) =>
            _dataOwners.TryGetValue(offset, out var owner) && _newMaps.TryGetValue(owner.Path, out var map) ? (owner.Path, map) : null;

        public List<(string Path, Inode Inode)> NewFiles { get; }

        /// <summary>What to patch a changed block against: old decompressed content, or with <paramref name="raw"/> old stored bytes.</summary>
        public List<ReferenceItem> ReferenceFor(StoredBlock block, bool raw)
        {
            var items = new List<ReferenceItem>();
            if (block.Kind == StoredBlockKind.Data)
            {
                if (_dataOwners.TryGetValue(block.Offset, out var owner) && OldMap(owner.Path) is { } map)
                {
                    var first = Math.Max(0, owner.Index - (raw ? RawReferenceWindow : ReferenceWindowBefore));
                    var last = Math.Min(map.Blocks.Count, owner.Index + (raw ? RawReferenceWindow + 1 : ReferenceWindowAfter));
                    for (var i = first; i < last; i++)
                    {
                        var b = map.Blocks[i];
                        if (!b.IsSparse)
                        {
                            items.Add(raw ? RawItem(b.Offset, b.StoredSize) : new ReferenceItem(b.Offset, b.StoredSize, b.IsCompressed, 0, b.UncompressedSize));
                        }
                    }

                    if (last == map.Blocks.Count && map.Fragment is { } tail && !raw)
                    {
                        items.Add(new ReferenceItem(tail.BlockOffset, tail.StoredSize, tail.IsCompressed, (int)tail.OffsetInFragment, tail.Length));
                    }
                }
            }
            else if (_fragmentOwners.TryGetValue(block.Offset, out var paths))
            {
                var seen = new HashSet<long>();
                foreach (var path in paths)
                {
                    if (OldMap(path)?.Fragment is { } tail && seen.Count < MaxFragmentReferences && seen.Add(tail.BlockOffset))
                    {
                        var used = _oldFragmentUse.GetValueOrDefault(tail.BlockOffset);
                        if (used > 0)
                        {
                            items.Add(raw ? RawItem(tail.BlockOffset, tail.StoredSize) : new ReferenceItem(tail.BlockOffset, tail.StoredSize, tail.IsCompressed, 0, used));
                        }
                    }
                }
            }

            return items;
        }

        private static ReferenceItem RawItem(long offset, uint storedSize) => new(offset, 0, false, 0, (int)storedSize);

        private FileBlockMap? OldMap(string path)
        {
            if (_oldMaps.TryGetValue(path, out var map))
            {
                return map;
            }

            var similar = _similar.GetValueOrDefault(Normalize(path));
            return similar is null ? null : _oldMaps.GetValueOrDefault(similar);
        }

        /// <summary>The path with digit runs folded, so that versioned names of one file meet.</summary>
        private static string Normalize(string path) => Digits().Replace(path, "#");

        [GeneratedRegex("[0-9]+")]
        private static partial Regex Digits();
    }
}
