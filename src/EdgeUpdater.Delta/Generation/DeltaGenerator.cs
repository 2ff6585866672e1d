using System.Security.Cryptography;
using EdgeUpdater.Delta.Format;
using EdgeUpdater.Delta.Generation;
using EdgeUpdater.Delta.IO;
using EdgeUpdater.Delta.Metadata;
using EdgeUpdater.SquashFs;
using EdgeUpdater.SquashFs.Compression;
using EdgeUpdater.SquashFs.Format;
using EdgeUpdater.SquashFs.IO;
using EdgeUpdater.SquashFs.Metadata;
using EdgeUpdater.SquashFs.Reader;

namespace EdgeUpdater.Delta;

/// <summary>
/// Generates a delta that rebuilds <c>new</c> from <c>old</c> byte for byte. SquashFS-aware when both
/// images are SquashFS, generic otherwise. Output is written incrementally, section by section, so a
/// server can stream it to a client while it is produced.
/// </summary>
public static class DeltaGenerator
{
    /// <summary>zstd level of fast's patch frames (content sections).</summary>
    internal const int FastContentLevel = 3;

    private const int MaxLiteralPerSection = 2 << 20;

    /// <summary>
    /// zstd level of a metadata region patched as stored bytes, at both levels. On a pair of 400,000 files (regions
    /// of 6 MB), 3 gives 5.24 MB, 9 4.85 MB, 12 4.63 MB in 0.7 s of one core, 19 4.52 MB in 4.7 s.
    /// </summary>
    private const int MetadataRegionLevel = 12;

    /// <summary>
    /// Groups taken ahead of the output per worker: sections are written in order, so with one group per
    /// worker a slow group at the head (an LZMA2 frame of new files) left the other workers idle.
    /// </summary>
    private const int GroupsInFlightPerWorker = 4;

    /// <summary>
    /// Content of one group's frames together. Half the format's limit: the device's content buffer stays as in
    /// format 1; on new-file content, 8 MiB LZMA2 frames would save only about 0.3 % more.
    /// </summary>
    private const int MaxGroupContent = 4 << 20;

    /// <summary>Writes the delta from <paramref name="oldImage"/> to <paramref name="newImage"/> into <paramref name="output"/>.</summary>
    public static async Task<DeltaGenerationResult> GenerateAsync(IImageSource oldImage, IImageSource newImage, Stream output, DeltaGeneratorOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(oldImage);
        ArgumentNullException.ThrowIfNull(newImage);
        ArgumentNullException.ThrowIfNull(output);
        options ??= new DeltaGeneratorOptions();
        var stats = new DeltaStatistics();
        if (options.OldImageSha256 is { Count: not 32 } || options.NewImageSha256 is { Count: not 32 })
        {
            throw new ArgumentException("A SHA-256 has 32 bytes.", nameof(options));
        }

        if (options.FormatVersion is < DeltaFormat.OldestWrittenVersion or > DeltaFormat.Version)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.FormatVersion, $"Format version {options.FormatVersion} is not written; versions {DeltaFormat.OldestWrittenVersion} to {DeltaFormat.Version} are.");
        }

        if (options.MaxMetadataTableBytes < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxMetadataTableBytes, "The metadata table budget is a number of bytes, 0 or more.");
        }

        // Every worker observes this token; an aborted generation cancels it and waits for them all before it
        // returns, so nothing reads the images or uses an encoder after the caller regains control.
        using var work = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var token = work.Token;

        // Reads stop once the token is cancelled, wherever a worker is between its own checks.
        using var oldSource = new CancellableImageSource(oldImage, token);
        using var newSource = new CancellableImageSource(newImage, token);

        // At most this many groups are encoded at once (a server gives `best` part of its cores); more
        // may wait, finished, for their turn in the output.
        var parallelism = Math.Max(1, options.MaxParallelism);
        using var encodingSlots = new SemaphoreSlim(parallelism, parallelism);
        var hashOld = options.OldImageSha256 is { } knownOld ? Task.FromResult(knownOld.ToArray()) : Task.Run(() => Sha256Of(oldSource, token), token);
        var hashNew = options.NewImageSha256 is { } knownNew ? Task.FromResult(knownNew.ToArray()) : Task.Run(() => Sha256Of(newSource, token), token);
        var encoders = new System.Collections.Concurrent.ConcurrentBag<GroupEncoder>();
        var pending = new Queue<Task<(List<(SectionKind Kind, byte[] Bytes)> Sections, DeltaStatistics Stats)>>();

        // LZMA2 frames for new content (best level): only with a liblzma on both sides; the set holds the
        // BCJ filters both have, "no filter" (0) included.
        var filters = options.Level == DeltaLevel.Best ? LzmaFilters(options.DeviceCodecs) : new HashSet<byte>();
        SquashFsImage? oldSquash = null;
        SquashFsImage? newSquash = null;
        List<Unit>? units = null;
        var recompress = false;
        ReproductionRecord? reproduction = null;
        var header = new DeltaHeader { Version = (ushort)options.FormatVersion, Mode = DeltaMode.Generic, Level = options.Level };
        try
        {
            if (!options.ForceGeneric)
            {
                try
                {
                    oldSquash = SquashFsImage.Open(oldSource, leaveOpen: true);
                    newSquash = SquashFsImage.Open(newSource, leaveOpen: true);
                    var identity = RecompressionIdentity(newSquash);
                    recompress = identity is not null && (options.DeviceCodecs is null || options.DeviceCodecs.Contains(identity));
                    // zstd levels of the metadata patches. Fast's tables: on the Debian pair's A to B, 12 saves 2.9 KB
                    // over 6 for 2 to 7 ms more of 175 to 200 (the patches are made beside the content's groups). Fast's
                    // decision records: 9 costs 1.7 KB more than 12 there and saves 15 to 20 ms of about 200.
                    var metadataLevels = options.Level == DeltaLevel.Best ? new MetadataPatchLevels(19, 19) : new MetadataPatchLevels(12, 9);
                    var freshFrames = recompress && filters.Count > 0;
                    if (recompress && options.Reproduction is { } given)
                    {
                        // Bound to B's content: a record of another image is emptied, never trusted.
                        given.Bind(identity!, await hashNew.ConfigureAwait(false));
                        reproduction = given;
                    }

                    var record = reproduction;
                    units = await Task.Run(() => new SquashFsPlanner(oldSquash, newSquash, options.Level, options.FormatVersion, recompress, freshFrames, record, options.MaxMetadataTableBytes, stats).Plan(metadataLevels, parallelism, token), token).ConfigureAwait(false);
                    header = header with
                    {
                        Mode = DeltaMode.SquashFs,
                        UsesRecompression = recompress,
                        Compressor = (ushort)newSquash.Superblock.Compressor,
                        BlockSize = newSquash.Superblock.BlockSize,
                        CompressorOptions = newSquash.ReadMetadataTable(MetadataTableKind.CompressorOptions).Data,
                        CodecIdentity = recompress ? identity! : "",
                    };
                }
                catch (Exception e) when (e is SquashFsException or InvalidOperationException)
                {
                    // Not two SquashFS images this format can describe: fall back to the generic mode.
                    oldSquash?.Dispose();
                    newSquash?.Dispose();
                    oldSquash = newSquash = null;
                    units = null;
                    recompress = false;
                    reproduction = null;
                    stats = new DeltaStatistics();
                }
            }

            var total = System.Diagnostics.Stopwatch.StartNew();
            units ??= await Task.Run(() => GenericPlanner.Plan(oldSource, newSource, token), token).ConfigureAwait(false);
            header = header with
            {
                BaseSize = oldSource.Length,
                BaseSha256 = await hashOld.ConfigureAwait(false),
                TargetSize = newSource.Length,
                TargetSha256 = await hashNew.ConfigureAwait(false),
            };

            stats.PhaseMilliseconds["hash-wait"] = total.Elapsed.TotalMilliseconds;
            total.Restart();
            using var writer = new SectionWriter(output);
            var headerBytes = header.Encode();
            await writer.WriteRawAsync(headerBytes, cancellationToken).ConfigureAwait(false);
            stats.HeaderBytes = headerBytes.Length;
            var blockSize = Math.Max(oldSquash?.BlockSize ?? 0, newSquash?.BlockSize ?? 0);
            var groups = Group(units, blockSize);
            var settings = new FrameSettings(
                options.ContentCompressionLevel != 0 ? options.ContentCompressionLevel : options.Level == DeltaLevel.Best ? 9 : FastContentLevel,
                OpsLevel(options.Level, newSquash?.Superblock.Compressor),
                filters,
                parallelism,
                reproduction,
                OptimalPack: newSquash?.Superblock.Compressor == CompressorId.Gzip);
            foreach (var group in groups)
            {
                token.ThrowIfCancellationRequested();
                var g = group;
                pending.Enqueue(Task.Run(
                    async () =>
                    {
                        var local = new DeltaStatistics();
                        if (g.Units is [MetadataUnit metadata])
                        {
                            var encoding = await metadata.Encoding.ConfigureAwait(false);
                            local.PhaseMilliseconds["metadata"] = encoding.Milliseconds;
                            if (encoding.Payload is { } payload)
                            {
                                local.MetadataBytes += metadata.Length;
                                local.MetadataBlocksRecompressed += encoding.BlocksRecompressed;
                                local.MetadataBlocksReplayed += encoding.BlocksReplayed;
                                local.MetadataBlocksLiteral += encoding.BlocksLiteral;
                                local.MetadataTablesDerived += encoding.TablesDerived;
                                local.ProofsRecalled += encoding.ProofsRecalled;
                                using var sectionWriter = new SectionWriter(Stream.Null);
                                // Its patches are zstd frames already, its maps and piece headers are not. For fast,
                                // 16 keeps all of 19's gain on the Debian pair (12 and 14 lose 0.9 KB) for 1 to 6 ms less.
                                var section = sectionWriter.Encode(SectionKind.Metadata, payload, options.Level == DeltaLevel.Best ? 19 : 16);
                                return (new List<(SectionKind, byte[])> { (SectionKind.Metadata, section) }, local);
                            }

                            // A layout the metadata section cannot describe (a table over 16 MiB: 400,000 files):
                            // the region's stored bytes are patched against A's, which finds the blocks that did not
                            // change. Sent literally, such a pair's fast delta was 2 % larger than xdelta3's.
                            var patched = new List<(SectionKind, byte[])>();
                            foreach (var part in Group(MetadataRegionChunks(oldSquash!, metadata), blockSize))
                            {
                                part.ZstdLevel = MetadataRegionLevel;
                                patched.AddRange(await EncodeAsync(part, local).ConfigureAwait(false));
                            }

                            return (patched, local);
                        }

                        return (await EncodeAsync(g, local).ConfigureAwait(false), local);
                    },
                    token));
                while (pending.Count >= (parallelism * GroupsInFlightPerWorker) + 1)
                {
                    await WriteAsync(await pending.Dequeue().ConfigureAwait(false)).ConfigureAwait(false);
                }
            }

            while (pending.Count > 0)
            {
                await WriteAsync(await pending.Dequeue().ConfigureAwait(false)).ConfigureAwait(false);
            }

            var end = new ByteWriter();
            end.U64((ulong)newSource.Length);
            var endSection = writer.Encode(SectionKind.End, end.WrittenSpan, 0);
            await writer.WriteRawAsync(endSection, cancellationToken).ConfigureAwait(false);
            stats.EndSectionBytes = endSection.Length;
            await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            stats.PhaseMilliseconds["encode"] = total.Elapsed.TotalMilliseconds;
            return new DeltaGenerationResult(header, stats);

            async Task<List<(SectionKind Kind, byte[] Bytes)>> EncodeAsync(UnitGroup group, DeltaStatistics local)
            {
                await encodingSlots.WaitAsync(token).ConfigureAwait(false);
                if (!encoders.TryTake(out var encoder))
                {
                    encoder = new GroupEncoder(oldSource, newSource, oldSquash, newSquash, recompress, settings);
                }

                try
                {
                    return encoder.Encode(group, local, token);
                }
                finally
                {
                    encoders.Add(encoder);
                    encodingSlots.Release();
                }
            }

            async Task WriteAsync((List<(SectionKind Kind, byte[] Bytes)> Sections, DeltaStatistics Stats) done)
            {
                stats.Add(done.Stats);
                foreach (var (kind, bytes) in done.Sections)
                {
                    switch (kind)
                    {
                        case SectionKind.Ops:
                            stats.OpsSectionBytes += bytes.Length;
                            break;
                        case SectionKind.Content:
                            stats.ContentSectionBytes += bytes.Length;
                            break;
                        default:
                            stats.MetadataSectionBytes += bytes.Length;
                            break;
                    }

                    await writer.WriteRawAsync(bytes, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            await work.CancelAsync().ConfigureAwait(false);
            Task[] workers = [hashOld, hashNew, .. pending, .. units?.OfType<MetadataUnit>().Select(m => m.Encoding) ?? []];
            await Task.WhenAll(workers).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            foreach (var worker in workers)
            {
                // Observed: the failure that aborted the generation is what propagates.
                _ = worker.Exception;
            }

            foreach (var encoder in encoders)
            {
                encoder.Dispose();
            }

            oldSquash?.Dispose();
            newSquash?.Dispose();
        }
    }

    /// <summary>Generates between two files.</summary>
    public static async Task<DeltaGenerationResult> GenerateAsync(string oldPath, string newPath, Stream output, DeltaGeneratorOptions? options = null, CancellationToken cancellationToken = default)
    {
        // Mapped when possible: hashing and indexing the images then read the page cache in place.
        using IImageSource oldSource = (IImageSource?)MappedImageSource.TryOpen(oldPath) ?? new FileImageSource(oldPath);
        using IImageSource newSource = (IImageSource?)MappedImageSource.TryOpen(newPath) ?? new FileImageSource(newPath);
        return await GenerateAsync(oldSource, newSource, output, options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// zstd level of ops sections, whose literals are stored bytes of B. Entropy-coded blocks (gzip, xz,
    /// zstd) give zstd nothing at any level (levels 1 to 4 within 6 bytes on the Debian pair), so fast
    /// takes level 1. LZ4 and LZO keep their literals as plain bytes: level 5 takes 2.9 % off the Debian
    /// pair's fast delta on lz4 (11.63 to 11.30 MB, 31 ms) and 1 % on lzo.
    /// </summary>
    private static int OpsLevel(DeltaLevel level, CompressorId? compressor) =>
        compressor is CompressorId.Lz4 or CompressorId.Lzo ? 5 : level == DeltaLevel.Best ? 3 : 1;

    /// <summary>
    /// BCJ filters (and 0, none) LZMA2 frames may use: both this machine's liblzma and the device's must have
    /// them. The device's is known from its codecs (<c>xz/5.4.1</c>; no xz entry: no LZMA2 frames at all);
    /// without a list it is taken to be this machine's. ARM64 needs liblzma 5.4.
    /// </summary>
    internal static HashSet<byte> LzmaFilters(IReadOnlyCollection<string>? deviceCodecs)
    {
        var local = Patching.LzmaCoder.LocalVersion;
        var device = local;
        if (deviceCodecs is not null)
        {
            device = deviceCodecs.Where(c => c.StartsWith("xz/", StringComparison.Ordinal))
                .Select(c => Version.TryParse(c[3..], out var v) ? v : null)
                .Where(v => v is not null)
                .Max();
        }

        var filters = new HashSet<byte>();
        if (local is null || device is null || !Patching.LzmaCoder.CanEncode(0))
        {
            return filters;
        }

        filters.Add(0);
        filters.Add(Patching.LzmaCoder.X86);
        if (device >= new Version(5, 4) && Patching.LzmaCoder.CanEncode(Patching.LzmaCoder.Arm64))
        {
            filters.Add(Patching.LzmaCoder.Arm64);
        }

        return filters;
    }

    /// <summary>
    /// The identity (<c>xz/5.4.1</c>) of <paramref name="image"/>'s data codec when this machine can compress
    /// with it, or null (a compressor without an encoder here, e.g. lzo): then nothing is recompressed.
    /// </summary>
    internal static string? RecompressionIdentity(SquashFsImage image)
    {
        try
        {
            using var codec = image.CreateCodec(CodecRole.Data);
            codec.TryCompress(new byte[64], new byte[128], out _);
            return codec.Identity;
        }
        catch (SquashFsException)
        {
            return null;
        }
    }

    internal static byte[] Sha256Of(IImageSource source, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        for (long p = 0; p < source.Length; p += buffer.Length)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var n = (int)Math.Min(buffer.Length, source.Length - p);
            if (source.TryGetSpan(p, n, out var mapped))
            {
                hash.AppendData(mapped);
                continue;
            }

            source.ReadAt(p, buffer.AsSpan(0, n));
            hash.AppendData(buffer, 0, n);
        }

        return hash.GetHashAndReset();
    }

    /// <summary>
    /// The new image's metadata region as raw chunks patched against the old image's region, each against the
    /// window at the same relative position (tables grow or shrink along the region; a region of up to 8 MiB
    /// is one window, shared).
    /// </summary>
    private static List<Unit> MetadataRegionChunks(SquashFsImage oldImage, MetadataUnit region)
    {
        var length = oldImage.Source.Length;
        var baseStart = (long)Math.Min(oldImage.Superblock.InodeTableStart, (ulong)length);
        var baseEnd = (long)Math.Clamp(oldImage.Superblock.BytesUsed, (ulong)baseStart, (ulong)length);
        var units = new List<Unit>();
        GenericPlanner.AddPatchedRun(units, region.Offset, region.Offset + region.Length, baseStart, baseEnd, s => baseStart + (long)((s - region.Offset) * ((double)(baseEnd - baseStart) / Math.Max(1, region.Length))));
        return units;
    }

    private static List<UnitGroup> Group(List<Unit> units, int blockSize)
    {
        var groups = new List<UnitGroup>();
        var current = new UnitGroup();
        void Close()
        {
            if (current.Units.Count > 0)
            {
                groups.Add(current);
                current = new UnitGroup();
            }
        }

        foreach (var unit in Split(units))
        {
            if (unit is MetadataUnit)
            {
                Close();
                current.Units.Add(unit);
                Close();
                continue;
            }

            IReadOnlyList<ReferenceItem>? reference = unit switch
            {
                BlockUnit { Reference.Count: > 0 } b => b.Reference,
                ChunkUnit c => [new ReferenceItem(c.ReferenceOffset, 0, false, 0, c.ReferenceLength)],
                _ => null,
            };
            var freshContent = unit is BlockUnit { Fresh: true };
            if (reference is not null || freshContent)
            {
                var estimate = unit is BlockUnit b2
                    ? (b2.Raw ? (int)b2.Block.StoredSize : b2.Block.Kind == SquashFs.Reader.StoredBlockKind.Fragment ? blockSize : Math.Max(b2.Block.UncompressedSize, 1))
                    : (int)unit.Length;
                reference ??= [];
                var added = reference.Where(r => !current.ReferenceSet.Contains(r)).ToList();
                var addedLength = added.Sum(r => (long)r.Length);
                if (current.Units.Count > 0 && (!current.Framed || current.ContentLength + estimate > MaxGroupContent || current.ReferenceLength + addedLength > DeltaFormat.MaxReferenceLength))
                {
                    Close();
                    added = [.. reference];
                }

                current.Framed = true;
                foreach (var item in added)
                {
                    if (current.ReferenceLength + item.Length > DeltaFormat.MaxReferenceLength)
                    {
                        break;
                    }

                    current.Reference.Add(item);
                    current.ReferenceSet.Add(item);
                    current.ReferenceLength += item.Length;
                }

                if (freshContent)
                {
                    current.FreshContentLength += estimate;
                }
                else
                {
                    current.PatchContentLength += estimate;
                }
            }
            else
            {
                var literal = unit is LiteralUnit or BlockUnit ? unit.Length : 0;
                if (current.Units.Count > 0 && current.LiteralLength + literal > MaxLiteralPerSection)
                {
                    Close();
                }

                current.LiteralLength += literal;
            }

            current.Units.Add(unit);
        }

        Close();
        return groups;
    }

    private static IEnumerable<Unit> Split(List<Unit> units)
    {
        foreach (var unit in units)
        {
            if (unit is LiteralUnit literal && literal.Length > 1 << 20)
            {
                for (var s = literal.Offset; s < literal.Offset + literal.Length; s += 1 << 20)
                {
                    yield return new LiteralUnit(s, Math.Min(1 << 20, literal.Offset + literal.Length - s));
                }
            }
            else
            {
                yield return unit;
            }
        }
    }
}
