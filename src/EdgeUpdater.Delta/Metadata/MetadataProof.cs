using System.Collections.Concurrent;
using EdgeUpdater.Delta.Patching;
using EdgeUpdater.SquashFs;
using EdgeUpdater.SquashFs.Compression;
using EdgeUpdater.SquashFs.Metadata;
using EdgeUpdater.SquashFs.Reader;

namespace EdgeUpdater.Delta.Metadata;

/// <summary>
/// What the generator knows of how the device can rebuild the new image's compressed metadata blocks: which
/// ones its metadata codec reproduces, and (xz, format 4) which ones replay from their LZMA decisions, with
/// those decisions. Replaying costs a block about a third of what liblzma's compression costs, and a block
/// that replays is most often replayed on the device, so the codec's proof of such a block is put off until
/// <see cref="EnsureProven"/> says its table will be recompressed after all.
/// </summary>
internal sealed class MetadataProof
{
    private readonly SquashFsImage _image;
    private readonly ReproductionRecord? _record;
    private readonly int _parallelism;
    private readonly CancellationToken _cancellationToken;
    private readonly HashSet<long> _reproducible;
    private readonly Dictionary<long, byte[]> _records;
    private readonly Dictionary<long, Block> _deferred;

    private MetadataProof(SquashFsImage image, ReproductionRecord? record, int parallelism, HashSet<long> reproducible, Dictionary<long, byte[]> records, Dictionary<long, Block> deferred, int recalled, CancellationToken cancellationToken)
    {
        _image = image;
        _record = record;
        _parallelism = parallelism;
        _cancellationToken = cancellationToken;
        _reproducible = reproducible;
        _records = records;
        _deferred = deferred;
        Recalled = recalled;
    }

    /// <summary>The proof when nothing is recompressed or replayed.</summary>
    public static MetadataProof None(SquashFsImage image) => new(image, null, 1, [], [], [], 0, CancellationToken.None);

    /// <summary>How many outcomes came from the <see cref="ReproductionRecord"/> instead of a compression.</summary>
    public int Recalled { get; }

    /// <summary>
    /// Proves the compressed metadata blocks of <paramref name="image"/> on up to <paramref name="parallelism"/>
    /// threads. <paramref name="withCodec"/>: try the image's metadata codec on them (outcomes in
    /// <paramref name="record"/> are taken from it, the others added to it). <paramref name="recordDecisions"/>
    /// (xz only): record each block's LZMA decisions and keep those that replay to its stored bytes; the codec's
    /// proof of those blocks is put off.
    /// </summary>
    public static MetadataProof Run(SquashFsImage image, int parallelism, ReproductionRecord? record, bool withCodec, bool recordDecisions, CancellationToken cancellationToken = default)
    {
        parallelism = Math.Max(1, parallelism);
        var work = new List<Block>();
        foreach (var table in image.ReadAllMetadataTables())
        {
            if (table.Kind == MetadataTableKind.CompressorOptions)
            {
                continue;
            }

            var position = 0;
            foreach (var block in table.Blocks)
            {
                if (block.IsCompressed && position + block.UncompressedSize <= table.Data.Length)
                {
                    work.Add(new Block(block, table.Data, position));
                }

                position += block.UncompressedSize;
            }
        }

        var reproducible = new ConcurrentBag<long>();
        var records = new ConcurrentDictionary<long, byte[]>();
        var deferred = new ConcurrentBag<Block>();
        var recalled = 0;
        ParallelWork.Run(() => Parallel.ForEach(
            work,
            new ParallelOptions { CancellationToken = cancellationToken, MaxDegreeOfParallelism = parallelism },
            () => new Worker(image, withCodec, recordDecisions),
            (item, _, worker) =>
            {
                bool? known = withCodec && record is not null && record.TryGet(item.Info.Offset, out var outcome) ? outcome : null;
                if (known is { } recalledOutcome)
                {
                    Interlocked.Increment(ref recalled);
                    if (recalledOutcome)
                    {
                        reproducible.Add(item.Info.Offset);
                    }

                    if (!recordDecisions)
                    {
                        return worker;
                    }
                }

                var stored = worker.Read(item);
                var replays = recordDecisions && worker.Replays(item, stored, out var decisions) && records.TryAdd(item.Info.Offset, decisions);
                if (!withCodec || known is not null)
                {
                    return worker;
                }

                if (replays)
                {
                    deferred.Add(item);
                }
                else
                {
                    var reproduces = worker.Reproduces(item, stored);
                    if (reproduces)
                    {
                        reproducible.Add(item.Info.Offset);
                    }

                    record?.Set(item.Info.Offset, reproduces);
                }

                return worker;
            },
            worker => worker.Dispose()));
        return new MetadataProof(image, record, parallelism, [.. reproducible], new Dictionary<long, byte[]>(records), deferred.ToDictionary(b => b.Info.Offset), recalled, cancellationToken);
    }

    /// <summary>
    /// The LZMA decision record of the block at <paramref name="offset"/> when replaying it gives the block's
    /// stored bytes (decided by <see cref="Run"/>).
    /// </summary>
    public bool TryGetRecord(long offset, out byte[] record) => _records.TryGetValue(offset, out record!);

    /// <summary>
    /// Runs the codec's proof, put off by <see cref="Run"/>, of those of <paramref name="offsets"/> that replay:
    /// the caller will recompress them rather than replay them.
    /// </summary>
    public void EnsureProven(IEnumerable<long> offsets)
    {
        var work = new List<Block>();
        foreach (var offset in offsets)
        {
            if (_deferred.Remove(offset, out var block))
            {
                work.Add(block);
            }
        }

        if (work.Count == 0)
        {
            return;
        }

        var reproducible = new ConcurrentBag<long>();
        ParallelWork.Run(() => Parallel.ForEach(
            work,
            new ParallelOptions { CancellationToken = _cancellationToken, MaxDegreeOfParallelism = _parallelism },
            () => new Worker(_image, withCodec: true, recordDecisions: false),
            (item, _, worker) =>
            {
                var reproduces = worker.Reproduces(item, worker.Read(item));
                if (reproduces)
                {
                    reproducible.Add(item.Info.Offset);
                }

                _record?.Set(item.Info.Offset, reproduces);
                return worker;
            },
            worker => worker.Dispose()));
        _reproducible.UnionWith(reproducible);
    }

    /// <summary>
    /// True when the metadata codec was proved to give the stored bytes of the block at
    /// <paramref name="offset"/>. A block whose proof was put off must go through <see cref="EnsureProven"/> first.
    /// </summary>
    public bool Reproduces(long offset)
    {
        if (_deferred.ContainsKey(offset))
        {
            throw new System.Diagnostics.UnreachableException($"The metadata block at {offset} is asked about before its proof, put off because it replays, was run.");
        }

        return _reproducible.Contains(offset);
    }

    /// <summary>A compressed block of a table, with the table's decompressed bytes and where the block's start.</summary>
    private sealed record Block(MetadataBlockInfo Info, byte[] Data, int Start)
    {
        public ReadOnlySpan<byte> Content => Data.AsSpan(Start, Info.UncompressedSize);
    }

    /// <summary>One thread's codec, decision recorder and buffers.</summary>
    private sealed class Worker(SquashFsImage image, bool withCodec, bool recordDecisions) : IDisposable
    {
        private readonly SquashFsCodec? _codec = withCodec ? image.CreateCodec(CodecRole.Metadata) : null;
        private readonly LzmaDecisions? _decisions = recordDecisions ? new LzmaDecisions() : null;
        private readonly byte[] _stored = new byte[SquashFsCodec.MetadataBlockSize + 2];
        private readonly byte[] _scratch = new byte[SquashFsCodec.MetadataBlockSize * 2];

        /// <summary>The block's stored bytes, 2-byte header included.</summary>
        public ReadOnlySpan<byte> Read(Block block)
        {
            var stored = _stored.AsSpan(0, block.Info.TotalSize);
            image.ReadStoredBytes(block.Info.Offset, stored);
            return stored;
        }

        public bool Reproduces(Block block, ReadOnlySpan<byte> stored) =>
            _codec!.TryCompress(block.Content, _scratch, out var written) && stored[2..].SequenceEqual(_scratch.AsSpan(0, written));

        /// <summary>
        /// Records the block's decisions from its stored stream and replays them over its content. A record the
        /// replay refuses (its matches do not hold in the content liblzma decoded, which only a fault in the
        /// recording decoder could cause) costs the block its replay, not the delta.
        /// </summary>
        public bool Replays(Block block, ReadOnlySpan<byte> stored, out byte[] record)
        {
            record = [];
            if (!_decisions!.TryRecord(stored[2..], _scratch, out var length) || length != block.Info.UncompressedSize)
            {
                return false;
            }

            record = _decisions.LastRecord.ToArray();
            try
            {
                return stored[2..].SequenceEqual(_scratch.AsSpan(0, _decisions.Replay(record, block.Content, _scratch, "new metadata block")));
            }
            catch (DeltaException)
            {
                return false;
            }
        }

        public void Dispose() => _codec?.Dispose();
    }
}
