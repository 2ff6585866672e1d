using System.Buffers.Binary;
using EdgeUpdater.Delta.Format;
using EdgeUpdater.Delta.Patching;
using EdgeUpdater.SquashFs;
using EdgeUpdater.SquashFs.Compression;
using EdgeUpdater.SquashFs.Metadata;
using EdgeUpdater.SquashFs.Reader;

namespace EdgeUpdater.Delta.Metadata;

/// <summary>Pieces of the metadata region of the new image, in image order.</summary>
internal enum MetadataPieceKind : byte
{
    /// <summary>The metadata blocks of one table, rebuilt from a patch against the prediction.</summary>
    TableBlocks = 1,

    /// <summary>The index (64-bit block pointers) of an indexed table, computed from where its blocks went.</summary>
    TableIndex = 2,

    /// <summary>The 16-byte xattr id table header, computed.</summary>
    XattrHeader = 3,

    /// <summary>Bytes given literally.</summary>
    Literal = 4,
}

/// <summary>How a table's decompressed bytes are given.</summary>
internal enum TableEncoding : byte
{
    /// <summary>The prediction is exact.</summary>
    Predicted = 0,

    /// <summary>A zstd frame with the prediction as prefix.</summary>
    Patch = 1,

    /// <summary>The bytes themselves.</summary>
    Literal = 2,

    /// <summary>
    /// Format 3, export table only: computed from the new inode table (<see cref="DerivedExportTable"/>);
    /// followed by the new image's block size and fragment count, which parsing the inodes needs.
    /// </summary>
    Derived = 3,
}

/// <summary>How one metadata block is stored.</summary>
internal enum MetadataBlockEncoding : byte
{
    /// <summary>Compress with the metadata codec; header = stored size.</summary>
    Compressed = 0,

    /// <summary>Stored uncompressed; header = size | 0x8000.</summary>
    Uncompressed = 1,

    /// <summary>The stored bytes (header included) follow.</summary>
    Literal = 2,

    /// <summary>
    /// Format 4, xz: the stream replayed from its LZMA decisions (<see cref="LzmaDecisions"/>), which follow the
    /// table's block encodings as a patch against the old table's; no codec needed, no match search.
    /// </summary>
    Replayed = 3,
}

/// <summary>A pool of codecs of one compressor and role, one per worker.</summary>
internal sealed class CodecRenter : IDisposable
{
    private readonly Func<SquashFsCodec> _factory;
    private readonly System.Collections.Concurrent.ConcurrentBag<SquashFsCodec> _idle = [];

    public CodecRenter(Func<SquashFsCodec> factory)
    {
        _factory = factory;
    }

    public SquashFsCodec Rent() => _idle.TryTake(out var codec) ? codec : _factory();

    public void Return(SquashFsCodec codec) => _idle.Add(codec);

    public void Dispose()
    {
        while (_idle.TryTake(out var codec))
        {
            codec.Dispose();
        }
    }
}

/// <summary>zstd levels of the metadata section's patches: of the tables' bytes, and of the LZMA decision records.</summary>
internal readonly record struct MetadataPatchLevels(int Tables, int Decisions);

/// <summary>Sink for the bytes of the new image the metadata section produces, in order.</summary>
internal interface IImageWriter
{
    long Position { get; }

    void Write(ReadOnlySpan<byte> bytes);

    /// <summary>Writes an absolute new-image position (u64): <see cref="MetadataRegionBuffer"/> moves these once it knows where it starts.</summary>
    void WritePosition(long position);
}

/// <summary>
/// The metadata section: relocation maps, the new directory table's block sizes, then every piece of
/// the new image's metadata region. <see cref="Encode"/> (generator) and <see cref="Decode"/> (device)
/// walk the same pieces with the same <see cref="MetadataPredictor"/>.
/// </summary>
internal static class MetadataSection
{
    private const int MaxBlocks = DeltaFormat.MaxTableLength / SquashFsCodec.MetadataBlockSize + 1;

    /// <summary>zstd level of the first, cheap check whether a table's decisions are worth sending (<see cref="PlanReplay"/>).</summary>
    private const int DecisionCheckLevel = 3;

    /// <summary>Statistics of one encoded section.</summary>
    public sealed record Stats(long TableBytes, long PatchBytes, long LiteralBytes, int Blocks, int BlocksRecompressed, int BlocksLiteral, int TablesDerived, int BlocksReplayed = 0);

    /// <summary>Which of a table's blocks the device replays, and their decision records as a patch against the old table's.</summary>
    private sealed record ReplayPlan(bool[] Blocks, int RecordsLength, byte[] Patch);

    /// <summary>
    /// Whether a delta of <paramref name="formatVersion"/> to <paramref name="newImage"/> may replay metadata
    /// blocks from their LZMA decisions: then <see cref="MetadataProof.Run"/> records them.
    /// </summary>
    public static bool ReplaysDecisions(SquashFsImage newImage, int formatVersion) =>
        formatVersion >= DeltaFormat.LzmaDecisionsVersion && newImage.Superblock.Compressor == SquashFs.Format.CompressorId.Xz;

    /// <summary>
    /// Encodes the metadata region [inode table start, bytes used) of <paramref name="newImage"/> in format
    /// <paramref name="formatVersion"/>; null when its layout is not one this format describes (the caller then
    /// patches the region as stored bytes), and when either image's tables hold more than <paramref name="tableBudget"/>
    /// bytes together: the device holds the old tables, their prediction and the new ones while it decodes the
    /// section. <paramref name="proof"/> says which compressed blocks the device's metadata
    /// codec reproduces and which replay (<see cref="MetadataProof"/>). It is asked once, after the tables are
    /// encoded, so that it may still be running until then. Old decisions are recorded on up to
    /// <paramref name="parallelism"/> threads.
    /// </summary>
    public static byte[]? Encode(SquashFsImage oldImage, SquashFsImage newImage, RelocationMap dataMap, RelocationMap fragmentMap, Func<MetadataProof> proof, MetadataPatchLevels levels, long tableBudget, int formatVersion, int parallelism, out Stats stats)
    {
        stats = new Stats(0, 0, 0, 0, 0, 0, 0);
        var sb = newImage.Superblock;
        var replays = ReplaysDecisions(newImage, formatVersion);
        var tables = newImage.ReadAllMetadataTables().Where(t => t.Kind != MetadataTableKind.CompressorOptions).ToDictionary(t => t.Kind);
        var regions = new List<(long Start, long End, MetadataPieceKind Kind, MetadataTableKind Table)>();
        foreach (var table in tables.Values)
        {
            if (table.Blocks.Count > 0)
            {
                for (var i = 1; i < table.Blocks.Count; i++)
                {
                    if (table.Blocks[i].Offset != table.Blocks[i - 1].End)
                    {
                        return null;
                    }
                }

                regions.Add((table.Blocks[0].Offset, table.Blocks[^1].End, MetadataPieceKind.TableBlocks, table.Kind));
            }

            if (table.Index.Count > 0)
            {
                regions.Add((table.IndexOffset, table.IndexOffset + (8L * table.Index.Count), MetadataPieceKind.TableIndex, table.Kind));
            }
        }

        if (sb.HasXattrTable)
        {
            regions.Add(((long)sb.XattrIdTableStart, (long)sb.XattrIdTableStart + 16, MetadataPieceKind.XattrHeader, MetadataTableKind.XattrIds));
        }

        regions.Sort((x, y) => x.Start.CompareTo(y.Start));
        var regionStart = (long)sb.InodeTableStart;
        var regionEnd = (long)sb.BytesUsed;
        var dirTable = tables[MetadataTableKind.Directories];
        var dirLayout = TableLayout.FromBlockSizes([.. dirTable.Blocks.Select(b => b.TotalSize)], dirTable.Start);
        if (tables.Values.Any(t => t.Data.Length > DeltaFormat.MaxTableLength) || tables.Values.Sum(t => (long)t.Data.Length) > tableBudget || dirTable.Blocks.Count > MaxBlocks
            || dataMap.Count + fragmentMap.Count > DeltaFormat.MaxRelocationRuns)
        {
            return null;
        }

        var predictor = new MetadataPredictor(oldImage, dataMap, fragmentMap, dirLayout);
        var writer = new ByteWriter(1 << 16);
        dataMap.Write(writer);
        fragmentMap.Write(writer);
        writer.VarU((ulong)dirTable.Blocks.Count);
        foreach (var block in dirTable.Blocks)
        {
            writer.VarU((ulong)block.TotalSize);
        }

        // Two passes. The first encodes every piece but the tables' block encodings: predictions and patches
        // need only the old image and B's layout. The second decides each block, which needs the proof that the
        // codec reproduces it or that it replays; that proof (liblzma: about 1.3 ms a block; recording and
        // replaying its decisions: about a third of that) runs meanwhile on another thread, so the patches no
        // longer wait for it and then run alone at the end of a fast generation.
        var heads = new ByteWriter(1 << 16);
        var drafts = new List<(int HeadEnd, MetadataTable? Blocks)>();
        var position = regionStart;
        using var zstd = new ZstdPatcher();
        long tableBytes = 0, patchBytes = 0, literalBytes = 0;
        var derivedTables = 0;
        void Literal(long start, long end)
        {
            var bytes = new byte[end - start];
            newImage.ReadStoredBytes(start, bytes);
            heads.U8((byte)MetadataPieceKind.Literal);
            heads.Blob(bytes);
            literalBytes += bytes.Length;
            drafts.Add((heads.Length, null));
        }

        foreach (var region in regions)
        {
            if (region.Start < position || region.End > regionEnd)
            {
                return null;
            }

            if (region.Start > position)
            {
                Literal(position, region.Start);
            }

            var table = tables[region.Table];
            switch (region.Kind)
            {
                case MetadataPieceKind.TableBlocks:
                    if (!HasStandardBlocks(table))
                    {
                        Literal(region.Start, region.End);
                        break;
                    }

                    heads.U8((byte)MetadataPieceKind.TableBlocks);
                    heads.U8((byte)table.Kind);
                    heads.VarU((ulong)table.Data.Length);
                    var predicted = predictor.Predict(table.Kind);
                    tableBytes += table.Data.Length;
                    if (predicted.AsSpan().SequenceEqual(table.Data))
                    {
                        heads.U8((byte)TableEncoding.Predicted);
                    }
                    else if (table.Kind == MetadataTableKind.Export && formatVersion >= DeltaFormat.DerivedTablesVersion
                        && tables[MetadataTableKind.Inodes] is var inodes && HasStandardBlocks(inodes)
                        && DerivedExportTable.TryDerive(inodes.Data, [.. inodes.Blocks.Select(b => b.Offset - inodes.Start)], sb.BlockSize, sb.FragmentEntryCount, table.Data.Length) is { } derived
                        && derived.AsSpan().SequenceEqual(table.Data))
                    {
                        heads.U8((byte)TableEncoding.Derived);
                        heads.VarU(sb.BlockSize);
                        heads.VarU(sb.FragmentEntryCount);
                        derivedTables++;
                    }
                    else
                    {
                        var patch = zstd.Compress(predicted, table.Data, levels.Tables).Span;
                        if (patch.Length < table.Data.Length)
                        {
                            heads.U8((byte)TableEncoding.Patch);
                            heads.Blob(patch);
                            patchBytes += patch.Length;
                        }
                        else
                        {
                            heads.U8((byte)TableEncoding.Literal);
                            heads.Bytes(table.Data);
                            literalBytes += table.Data.Length;
                        }
                    }

                    drafts.Add((heads.Length, table));
                    predictor.RecordNewLayout(table.Kind, new TableLayout([.. table.Blocks.Select(b => b.Offset - region.Start)], region.End - region.Start, region.Start));
                    break;
                case MetadataPieceKind.TableIndex:
                    var expected = new byte[region.End - region.Start];
                    newImage.ReadStoredBytes(region.Start, expected);
                    var computed = new byte[expected.Length];
                    for (var i = 0; i < table.Blocks.Count && (8 * i) + 8 <= computed.Length; i++)
                    {
                        BinaryPrimitives.WriteUInt64LittleEndian(computed.AsSpan(8 * i), (ulong)table.Blocks[i].Offset);
                    }

                    if (table.Blocks.Count * 8 == computed.Length && computed.AsSpan().SequenceEqual(expected))
                    {
                        heads.U8((byte)MetadataPieceKind.TableIndex);
                        heads.U8((byte)table.Kind);
                        drafts.Add((heads.Length, null));
                    }
                    else
                    {
                        Literal(region.Start, region.End);
                    }

                    break;
                case MetadataPieceKind.XattrHeader:
                    var actualHeader = new byte[16];
                    newImage.ReadStoredBytes(region.Start, actualHeader);
                    var kv = tables[MetadataTableKind.XattrKeyValues];
                    var header = new byte[16];
                    BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)(kv.Blocks.Count > 0 ? kv.Blocks[0].Offset : 0));
                    BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), (uint)(table.Data.Length / 16));
                    if (kv.Blocks.Count > 0 && header.AsSpan().SequenceEqual(actualHeader))
                    {
                        heads.U8((byte)MetadataPieceKind.XattrHeader);
                        drafts.Add((heads.Length, null));
                    }
                    else
                    {
                        Literal(region.Start, region.End);
                    }

                    break;
            }

            position = region.End;
        }

        if (position < regionEnd)
        {
            Literal(position, regionEnd);
        }

        // Second pass: the pieces in order, each table's head followed by its blocks' encodings.
        var proven = proof();
        var stored = new byte[SquashFsCodec.MetadataBlockSize + 2];
        int blocks = 0, recompressed = 0, literalBlocks = 0, replayed = 0;
        writer.VarU((ulong)drafts.Count);
        var headStart = 0;
        foreach (var (headEnd, blockTable) in drafts)
        {
            writer.Bytes(heads.WrittenSpan[headStart..headEnd]);
            headStart = headEnd;
            if (blockTable is null)
            {
                continue;
            }

            var replay = replays ? PlanReplay(proven, oldImage, predictor.OldTable(blockTable.Kind), blockTable, zstd, levels.Decisions, parallelism) : null;
            proven.EnsureProven(blockTable.Blocks.Where((block, i) => block.IsCompressed && (replay is null || !replay.Blocks[i])).Select(block => block.Offset));
            long offset = 0;
            for (var i = 0; i < blockTable.Blocks.Count; i++)
            {
                var block = blockTable.Blocks[i];
                blocks++;
                var content = blockTable.Data.AsSpan((int)offset, block.UncompressedSize);
                offset += block.UncompressedSize;
                if (!block.IsCompressed && block.StoredSize == content.Length)
                {
                    writer.U8((byte)MetadataBlockEncoding.Uncompressed);
                    continue;
                }

                if (replay is not null && replay.Blocks[i])
                {
                    writer.U8((byte)MetadataBlockEncoding.Replayed);
                    replayed++;
                    continue;
                }

                if (block.IsCompressed && proven.Reproduces(block.Offset))
                {
                    writer.U8((byte)MetadataBlockEncoding.Compressed);
                    recompressed++;
                    continue;
                }

                var storedSpan = stored.AsSpan(0, block.TotalSize);
                newImage.ReadStoredBytes(block.Offset, storedSpan);
                writer.U8((byte)MetadataBlockEncoding.Literal);
                writer.Blob(storedSpan);
                literalBytes += storedSpan.Length;
                literalBlocks++;
            }

            if (replay is not null)
            {
                writer.VarU((ulong)replay.RecordsLength);
                writer.Blob(replay.Patch);
            }
        }

        stats = new Stats(tableBytes, patchBytes, literalBytes, blocks, recompressed, literalBlocks, derivedTables, replayed);
        return writer.Length > DeltaFormat.MaxSectionLength || predictor.OldTableBytes > tableBudget ? null : writer.ToArray();
    }

    /// <summary>
    /// Which of <paramref name="table"/>'s compressed blocks replay from their LZMA decisions to their stored bytes
    /// (<paramref name="proof"/>), and those decisions as a zstd patch against <paramref name="oldTable"/>'s
    /// (<see cref="DecisionReference"/>); null when no block replays or the patch costs an eighth or more of the
    /// content it rebuilds. Replaying saves the device time, not bytes (liblzma would rebuild the same blocks
    /// from nothing): a replayed block of 8 KiB skips about 1.5 ms of liblzma on the reference machine, several
    /// on a device's ARM core, for at most 1 KiB of download.
    /// </summary>
    private static ReplayPlan? PlanReplay(MetadataProof proof, SquashFsImage oldImage, MetadataTable oldTable, MetadataTable table, ZstdPatcher zstd, int level, int parallelism)
    {
        var replayed = new bool[table.Blocks.Count];
        var records = new ByteWriter(1 << 16);
        long contentBytes = 0;
        for (var i = 0; i < table.Blocks.Count; i++)
        {
            var block = table.Blocks[i];
            if (block.IsCompressed && proof.TryGetRecord(block.Offset, out var record))
            {
                records.VarU((ulong)record.Length);
                records.Bytes(record);
                replayed[i] = true;
                contentBytes += block.UncompressedSize;
            }
        }

        if (contentBytes == 0 || records.Length > DeltaFormat.MaxDecisionRecordsLength)
        {
            return null;
        }

        // A check at a cheap level first: a table whose decisions changed throughout (a large update's directory
        // table) is refused for 2 to 3 ms instead of the 20 ms of level 12 or more.
        var reference = DecisionReference(oldImage, oldTable, parallelism);
        if (level > DecisionCheckLevel && zstd.Compress(reference, records.WrittenSpan, DecisionCheckLevel).Length * 8L >= contentBytes)
        {
            return null;
        }

        var patch = zstd.Compress(reference, records.WrittenSpan, level).ToArray();
        return patch.Length * 8L < contentBytes ? new ReplayPlan(replayed, records.Length, patch) : null;
    }

    /// <summary>
    /// What a table's decision records are patched against: the records of the old table's compressed blocks that
    /// record, each length-prefixed, in order (generator and device compute the same from the same old image).
    /// </summary>
    private static byte[] DecisionReference(SquashFsImage oldImage, MetadataTable oldTable, int parallelism)
    {
        var blocks = oldTable.Blocks.Where(block => block.IsCompressed && block.TotalSize <= SquashFsCodec.MetadataBlockSize + 2).ToArray();
        var records = new byte[]?[blocks.Length];
        ParallelWork.Run(() => Parallel.For(
            0,
            blocks.Length,
            new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallelism) },
            () => (Decisions: new LzmaDecisions(), Stored: new byte[SquashFsCodec.MetadataBlockSize + 2], Decoded: new byte[SquashFsCodec.MetadataBlockSize]),
            (i, _, local) =>
            {
                var stored = local.Stored.AsSpan(0, blocks[i].TotalSize);
                oldImage.ReadStoredBytes(blocks[i].Offset, stored);
                records[i] = local.Decisions.TryRecord(stored[2..], local.Decoded, out int _) ? local.Decisions.LastRecord.ToArray() : null;
                return local;
            },
            _ => { }));
        var reference = new ByteWriter(1 << 16);
        foreach (var record in records)
        {
            if (record is not null)
            {
                reference.VarU((ulong)record.Length);
                reference.Bytes(record);
            }
        }

        return reference.ToArray();
    }

    private static bool HasStandardBlocks(MetadataTable table)
    {
        long total = 0;
        for (var i = 0; i < table.Blocks.Count; i++)
        {
            var size = table.Blocks[i].UncompressedSize;
            var last = i == table.Blocks.Count - 1;
            if (size <= 0 || size > SquashFsCodec.MetadataBlockSize || (!last && size != SquashFsCodec.MetadataBlockSize))
            {
                return false;
            }

            total += size;
        }

        return total == table.Data.Length;
    }

    /// <summary>
    /// Reads a metadata section's structure without the old image: every field bounded, nothing computed.
    /// <paramref name="formatVersion"/> is the delta header's; what it does not know is refused.
    /// </summary>
    public static ParsedMetadataSection Parse(ReadOnlySpan<byte> payload, long sectionOffset, int formatVersion)
    {
        var where = $"metadata section at delta offset {sectionOffset}";
        var reader = new ByteReader(payload, where);
        var dataMap = RelocationMap.Read(ref reader, DeltaFormat.MaxRelocationRuns, where + " data map");
        var fragmentMap = RelocationMap.Read(ref reader, DeltaFormat.MaxRelocationRuns - dataMap.Count, where + " fragment map");
        var dirBlocks = reader.VarInt(MaxBlocks, "directory block count");
        var dirSizes = new int[dirBlocks];
        for (var i = 0; i < dirBlocks; i++)
        {
            dirSizes[i] = reader.VarInt(SquashFsCodec.MetadataBlockSize + 2, "directory block size");
        }

        var pieceCount = reader.VarInt(1 << 16, "piece count");
        var pieces = new List<MetadataPiece>(Math.Min(pieceCount, 64));
        var computed = new HashSet<(MetadataPieceKind, MetadataTableKind)>();
        for (var p = 0; p < pieceCount; p++)
        {
            var kind = (MetadataPieceKind)reader.U8();
            var piece = kind switch
            {
                MetadataPieceKind.Literal => new MetadataPiece(kind, Literal: reader.BlobRange(DeltaFormat.MaxSectionLength, "literal piece")),
                MetadataPieceKind.TableBlocks => new MetadataPiece(kind, Blocks: ParseTable(ref reader, where, formatVersion)),
                MetadataPieceKind.TableIndex => new MetadataPiece(kind, Table: ReadTableKind(ref reader, where)),
                MetadataPieceKind.XattrHeader => new MetadataPiece(kind),
                _ => throw DeltaException.Corrupted($"{where}: piece kind {(byte)kind} is unknown (1-4)."),
            };

            // An image has each table once: a repeated piece would only repeat the device's work and memory.
            var table = piece.Blocks?.Kind ?? piece.Table;
            if (kind != MetadataPieceKind.Literal && !computed.Add((kind, table)))
            {
                throw DeltaException.Corrupted($"{where}: piece {p} repeats the {table} table's {kind}.");
            }

            pieces.Add(piece);
        }

        if (!reader.AtEnd)
        {
            throw DeltaException.Corrupted($"{where}: {reader.Remaining} bytes follow the last piece.");
        }

        return new ParsedMetadataSection(dataMap, fragmentMap, dirSizes, pieces);
    }

    private static EncodedTable ParseTable(ref ByteReader reader, string where, int formatVersion)
    {
        var table = ReadTableKind(ref reader, where);
        var length = reader.VarInt(DeltaFormat.MaxTableLength, "table length");
        var encoding = (TableEncoding)reader.U8();
        Range bytes = default;
        uint blockSize = 0, fragmentCount = 0;
        switch (encoding)
        {
            case TableEncoding.Predicted:
                break;
            case TableEncoding.Patch:
                bytes = reader.BlobRange(DeltaFormat.MaxSectionLength, "table patch");
                break;
            case TableEncoding.Literal:
                var at = reader.Position;
                reader.Bytes(length);
                bytes = at..(at + length);
                break;
            case TableEncoding.Derived when formatVersion >= DeltaFormat.DerivedTablesVersion:
                if (table != MetadataTableKind.Export)
                {
                    throw DeltaException.Corrupted($"{where}: the {table} table is said to derive from the inode table, which only the export table does.");
                }

                blockSize = (uint)reader.VarInt(1 << 20, "block size");
                fragmentCount = (uint)reader.VarInt(int.MaxValue, "fragment count");
                break;
            default:
                throw DeltaException.Corrupted($"{where}: table encoding {(byte)encoding} is unknown in format version {formatVersion} (0-{(formatVersion >= DeltaFormat.DerivedTablesVersion ? 3 : 2)}).");
        }

        var blockCount = (length + SquashFsCodec.MetadataBlockSize - 1) / SquashFsCodec.MetadataBlockSize;
        var encodings = new MetadataBlockEncoding[blockCount];
        var literals = new Range[blockCount];
        var replayCount = 0;
        var maxEncoding = formatVersion >= DeltaFormat.LzmaDecisionsVersion ? MetadataBlockEncoding.Replayed : MetadataBlockEncoding.Literal;
        for (var i = 0; i < blockCount; i++)
        {
            encodings[i] = (MetadataBlockEncoding)reader.U8();
            if (encodings[i] == MetadataBlockEncoding.Literal)
            {
                literals[i] = reader.BlobRange(SquashFsCodec.MetadataBlockSize + 2, "literal metadata block");
            }
            else if (encodings[i] > maxEncoding)
            {
                throw DeltaException.Corrupted($"{where}: metadata block encoding {(byte)encodings[i]} is unknown in format version {formatVersion} (0-{(byte)maxEncoding}).");
            }
            else if (encodings[i] == MetadataBlockEncoding.Replayed)
            {
                replayCount++;
            }
        }

        // The records follow the block encodings: their total length, then their patch against the old table's.
        var recordsLength = 0;
        Range recordsPatch = default;
        if (replayCount > 0)
        {
            recordsLength = reader.VarInt(Math.Min((long)replayCount * (LzmaDecisions.MaxRecordLength(SquashFsCodec.MetadataBlockSize) + 3), DeltaFormat.MaxDecisionRecordsLength), "decision records length");
            recordsPatch = reader.BlobRange(DeltaFormat.MaxSectionLength, "decision records patch");
        }

        return new EncodedTable(table, length, encoding, bytes, blockSize, fragmentCount, encodings, literals, recordsLength, recordsPatch);
    }

    /// <summary>
    /// Rebuilds the metadata region on the device: reads the section (<see cref="Parse"/>), predicts each table
    /// from the old image, applies the patches, compresses or replays the blocks and writes them to
    /// <paramref name="output"/>. <paramref name="formatVersion"/> is the delta header's.
    /// </summary>
    public static void Decode(ReadOnlySpan<byte> payload, long sectionOffset, int formatVersion, SquashFsImage oldImage, CodecRenter? codecs, int parallelism, IImageWriter output)
    {
        var where = $"metadata section at delta offset {sectionOffset}";
        var section = Parse(payload, sectionOffset, formatVersion);
        var predictor = new MetadataPredictor(oldImage, section.DataMap, section.FragmentMap, TableLayout.FromBlockSizes(section.DirectoryBlockSizes, 0));
        var newTables = new Dictionary<MetadataTableKind, (TableLayout Layout, int Length)>();
        byte[]? newInodes = null;
        using var zstd = new ZstdPatcher();
        var header = new byte[2];
        foreach (var piece in section.Pieces)
        {
            switch (piece.Kind)
            {
                case MetadataPieceKind.Literal:
                    output.Write(payload[piece.Literal]);
                    break;
                case MetadataPieceKind.TableBlocks:
                    var encoded = piece.Blocks!;
                    var (table, length) = (encoded.Kind, encoded.Length);
                    byte[] data;
                    switch (encoded.Encoding)
                    {
                        case TableEncoding.Predicted:
                            data = predictor.Predict(table);
                            if (data.Length != length)
                            {
                                throw DeltaException.Corrupted($"{where}: the {table} table is predicted with {data.Length} bytes; the delta says {length}.");
                            }

                            break;
                        case TableEncoding.Patch:
                            data = new byte[length];
                            zstd.Decode(predictor.Predict(table), payload[encoded.Bytes], data, $"{where}, {table} table");
                            break;
                        case TableEncoding.Literal:
                            data = payload[encoded.Bytes].ToArray();
                            break;
                        default:
                            if (newInodes is null || !newTables.TryGetValue(MetadataTableKind.Inodes, out var inodeTable))
                            {
                                throw DeltaException.Corrupted($"{where}: the {table} table is said to derive from the inode table, which does not come before it.");
                            }

                            data = DerivedExportTable.TryDerive(newInodes, inodeTable.Layout.RelativeStarts, encoded.DerivedBlockSize, encoded.DerivedFragmentCount, length)
                                ?? throw DeltaException.Corrupted($"{where}: the export table of {length} bytes does not derive from the new inode table (block size {encoded.DerivedBlockSize}, {encoded.DerivedFragmentCount} fragments).");
                            break;
                    }

                    var encodings = encoded.BlockEncodings;
                    var blockCount = encodings.Length;
                    if (codecs is null && Array.IndexOf(encodings, MetadataBlockEncoding.Compressed) >= 0)
                    {
                        throw new DeltaException(DeltaErrorCategory.CodecMismatch, $"{where}: a metadata block needs recompression but the delta's header names no codec.");
                    }

                    var records = encoded.ReplayCount > 0 ? DecisionRecords(payload, encoded, where, oldImage, predictor.OldTable(table), zstd, parallelism) : [];
                    var compressed = new byte[blockCount][];

                    // Compress or replay on every core, write in order.
                    ParallelWork.For(blockCount, new ParallelOptions { MaxDegreeOfParallelism = parallelism }, () => (LzmaDecisions?)null, (i, decisions) =>
                    {
                        if (encodings[i] is not (MetadataBlockEncoding.Compressed or MetadataBlockEncoding.Replayed))
                        {
                            return decisions;
                        }

                        var content = data.AsSpan(i * SquashFsCodec.MetadataBlockSize, Math.Min(SquashFsCodec.MetadataBlockSize, length - (i * SquashFsCodec.MetadataBlockSize)));
                        if (encodings[i] == MetadataBlockEncoding.Replayed)
                        {
                            decisions ??= new LzmaDecisions();
                            var stream = new byte[SquashFsCodec.MetadataBlockSize * 2];
                            var replayed = decisions.Replay(records[i].Span, content, stream, $"{where}, {table} table, decisions of block {i}");
                            if (replayed > SquashFsCodec.MetadataBlockSize)
                            {
                                throw DeltaException.Corrupted($"{where}: metadata block {i} of the {table} table replays to {replayed} bytes, more than a metadata block holds.");
                            }

                            compressed[i] = stream.AsSpan(0, replayed).ToArray();
                            return decisions;
                        }

                        var codec = codecs!.Rent();
                        try
                        {
                            var buffer = new byte[SquashFsCodec.MetadataBlockSize * 2];
                            if (!codec.TryCompress(content, buffer, out var written) || written > SquashFsCodec.MetadataBlockSize)
                            {
                                throw new DeltaException(DeltaErrorCategory.CodecMismatch, $"{where}: metadata block {i} of the {table} table does not compress with {codec.Identity} as the generator's did.");
                            }

                            compressed[i] = buffer.AsSpan(0, written).ToArray();
                        }
                        finally
                        {
                            codecs.Return(codec);
                        }

                        return decisions;
                    },
                    _ => { });
                    var start = output.Position;
                    var starts = new long[blockCount];
                    for (var i = 0; i < blockCount; i++)
                    {
                        starts[i] = output.Position - start;
                        var content = data.AsSpan(i * SquashFsCodec.MetadataBlockSize, Math.Min(SquashFsCodec.MetadataBlockSize, length - (i * SquashFsCodec.MetadataBlockSize)));
                        switch (encodings[i])
                        {
                            case MetadataBlockEncoding.Uncompressed:
                                BinaryPrimitives.WriteUInt16LittleEndian(header, (ushort)(0x8000 | content.Length));
                                output.Write(header);
                                output.Write(content);
                                break;
                            case MetadataBlockEncoding.Compressed or MetadataBlockEncoding.Replayed:
                                BinaryPrimitives.WriteUInt16LittleEndian(header, (ushort)compressed[i].Length);
                                output.Write(header);
                                output.Write(compressed[i]);
                                break;
                            default:
                                output.Write(payload[encoded.LiteralBlocks[i]]);
                                break;
                        }
                    }

                    var layout = new TableLayout(starts, output.Position - start, start);
                    predictor.RecordNewLayout(table, layout);
                    predictor.Release(table);
                    newTables[table] = (layout, length);
                    if (table == MetadataTableKind.Inodes)
                    {
                        newInodes = data;
                    }

                    break;
                case MetadataPieceKind.TableIndex:
                    if (!newTables.TryGetValue(piece.Table, out var indexed))
                    {
                        throw DeltaException.Corrupted($"{where}: the index of the {piece.Table} table comes before its blocks.");
                    }

                    foreach (var relative in indexed.Layout.RelativeStarts)
                    {
                        output.WritePosition(indexed.Layout.AbsoluteStart + relative);
                    }

                    break;
                default:
                    if (!newTables.TryGetValue(MetadataTableKind.XattrKeyValues, out var kv) || !newTables.TryGetValue(MetadataTableKind.XattrIds, out var ids))
                    {
                        throw DeltaException.Corrupted($"{where}: the xattr header comes before the xattr tables.");
                    }

                    var xattrCount = new byte[8];
                    BinaryPrimitives.WriteUInt32LittleEndian(xattrCount, (uint)(ids.Length / 16));
                    output.WritePosition(kv.Layout.AbsoluteStart);
                    output.Write(xattrCount);
                    break;
            }
        }
    }

    /// <summary>
    /// A table's decision records, patched against the old table's: indexed by block, empty for blocks not
    /// replayed.
    /// </summary>
    private static ReadOnlyMemory<byte>[] DecisionRecords(ReadOnlySpan<byte> payload, EncodedTable encoded, string where, SquashFsImage oldImage, MetadataTable oldTable, ZstdPatcher zstd, int parallelism)
    {
        var table = encoded.Kind;
        var all = new byte[encoded.RecordsLength];
        zstd.Decode(DecisionReference(oldImage, oldTable, parallelism), payload[encoded.RecordsPatch], all, $"{where}, {table} table decision records");
        var records = new ReadOnlyMemory<byte>[encoded.BlockEncodings.Length];
        var split = new ByteReader(all, $"{where}, {table} table decision records");
        var maxRecord = LzmaDecisions.MaxRecordLength(SquashFsCodec.MetadataBlockSize);
        for (var i = 0; i < records.Length; i++)
        {
            if (encoded.BlockEncodings[i] == MetadataBlockEncoding.Replayed)
            {
                var recordLength = split.VarInt(maxRecord, "decision record length");
                var at = split.Position;
                split.Bytes(recordLength);
                records[i] = all.AsMemory(at, recordLength);
            }
        }

        if (!split.AtEnd)
        {
            throw DeltaException.Corrupted($"{where}: {split.Remaining} bytes follow the {table} table's last decision record.");
        }

        return records;
    }

    private static MetadataTableKind ReadTableKind(ref ByteReader reader, string where)
    {
        var kind = (MetadataTableKind)reader.U8();
        if (kind is < MetadataTableKind.Inodes or > MetadataTableKind.XattrIds)
        {
            throw DeltaException.Corrupted($"{where}: table kind {(byte)kind} is unknown.");
        }

        return kind;
    }
}
