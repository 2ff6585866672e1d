using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Collections.Concurrent;
using EdgeUpdater.SquashFs.Compression;
using EdgeUpdater.SquashFs.Format;
using EdgeUpdater.SquashFs.IO;
using EdgeUpdater.SquashFs.Metadata;

namespace EdgeUpdater.SquashFs.Writer;

/// <summary>
/// Builds SquashFS 4.0 images. Deterministic: entries are sorted by their name bytes, inode numbers,
/// ids and xattr sets are assigned in traversal order, and blocks are compressed in parallel but
/// written in order, so the same tree and options give the same bytes on any machine. File data is
/// streamed: memory is bounded by a few blocks per compression thread plus the metadata tables.
/// </summary>
public static class SquashFsWriter
{
    /// <summary>Scans <paramref name="sourceDirectory"/> and writes an image file.</summary>
    public static async Task<SquashFsWriteResult> WriteAsync(string sourceDirectory, string imagePath, SquashFsWriterOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new SquashFsWriterOptions();
        var root = SourceNode.FromDirectory(sourceDirectory, new SourceScanOptions { Xattrs = options.Xattrs });
        using var sink = new FileImageSink(imagePath);
        return await WriteAsync(root, sink, options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes the tree under <paramref name="root"/> (a directory node) into <paramref name="sink"/>.</summary>
    public static async Task<SquashFsWriteResult> WriteAsync(SourceNode root, IImageSink sink, SquashFsWriterOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(sink);
        options ??= new SquashFsWriterOptions();
        if (root.Kind != InodeKind.Directory)
        {
            throw new SquashFsException(SquashFsErrorCategory.InvalidInput, "The root of an image must be a directory.");
        }

        var build = new ImageBuild(root, sink, options);
        return await build.RunAsync(cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>The state of one image build.</summary>
internal sealed class ImageBuild
{
    private readonly SourceNode _root;
    private readonly IImageSink _sink;
    private readonly SquashFsWriterOptions _options;
    private readonly int _blockSize;
    private readonly long? _fixedTime;
    private readonly List<NodeInfo> _order = [];
    private readonly Dictionary<SourceNode, NodeInfo> _info = new(ReferenceEqualityComparer.Instance);
    private readonly List<uint> _ids = [];
    private readonly Dictionary<uint, ushort> _idIndex = [];
    private readonly List<IReadOnlyList<SquashFsXattr>> _xattrSets = [];
    private readonly Dictionary<string, uint> _xattrIndex = new(StringComparer.Ordinal);
    private readonly List<FragmentEntry> _fragments = [];
    private long _position;
    private long _dataBlocks;
    private long _duplicates;

    public ImageBuild(SourceNode root, IImageSink sink, SquashFsWriterOptions options)
    {
        _root = root;
        _sink = sink;
        _options = options;
        _blockSize = options.BlockSize;
        if (_blockSize < 4096 || _blockSize > 1 << 20 || (_blockSize & (_blockSize - 1)) != 0)
        {
            throw new SquashFsException(SquashFsErrorCategory.InvalidInput, $"Block size {_blockSize} is not a power of two between 4096 and 1048576.");
        }

        if (options.Compressor.Compressor is not (CompressorId.Gzip or CompressorId.Xz or CompressorId.Lz4 or CompressorId.Zstd))
        {
            throw new SquashFsException(SquashFsErrorCategory.Unsupported, $"Writing {options.Compressor.Compressor} images is not supported; use gzip, xz, lz4 or zstd.");
        }

        _fixedTime = options.FixedTimestamp;
        if (_fixedTime is null && options.HonourSourceDateEpoch)
        {
            var epoch = Environment.GetEnvironmentVariable("SOURCE_DATE_EPOCH");
            if (!string.IsNullOrEmpty(epoch))
            {
                _fixedTime = long.TryParse(epoch, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value <= uint.MaxValue
                    ? value
                    : throw new SquashFsException(SquashFsErrorCategory.InvalidInput, $"SOURCE_DATE_EPOCH '{epoch}' is not a number of seconds between 0 and {uint.MaxValue}.");
            }
        }
    }

    public async Task<SquashFsWriteResult> RunAsync(CancellationToken cancellationToken)
    {
        Prepare();
        var optionsBlock = _options.Compressor.Encode((uint)_blockSize);
        _position = Superblock.Size;
        if (optionsBlock is not null)
        {
            var header = new byte[2 + optionsBlock.Length];
            BinaryPrimitives.WriteUInt16LittleEndian(header, (ushort)(optionsBlock.Length | 0x8000));
            optionsBlock.CopyTo(header.AsSpan(2));
            _sink.WriteAt(_position, header);
            _position += header.Length;
        }

        if (_options.DeduplicateFiles)
        {
            await FindDuplicatesAsync(cancellationToken).ConfigureAwait(false);
        }

        await WriteDataAsync(cancellationToken).ConfigureAwait(false);
        return WriteTables(optionsBlock is not null);
    }

    // ------------------------------------------------------------------ preparation

    /// <summary>Orders the tree, numbers inodes in the order they will be written (post-order), collects ids, xattr sets and hard links.</summary>
    private void Prepare()
    {
        var hardLinks = new Dictionary<object, NodeInfo>(ReferenceEqualityComparer.Instance);
        var rootInfo = new NodeInfo(_root, null);
        _info[_root] = rootInfo;

        // Pre-order for the data area: files in the order a depth-first walk of sorted names meets them.
        var walk = new Stack<NodeInfo>();
        walk.Push(rootInfo);
        while (walk.Count > 0)
        {
            var info = walk.Pop();
            _order.Add(info);
            if (info.Node.Kind != InodeKind.Directory)
            {
                continue;
            }

            var children = info.Node.Children.OrderBy(c => c.RawName, ByteOrder.Instance).ToList();
            for (var i = 1; i < children.Count; i++)
            {
                if (children[i].RawName.AsSpan().SequenceEqual(children[i - 1].RawName))
                {
                    throw new SquashFsException(SquashFsErrorCategory.InvalidInput, $"Directory '{info.PathForMessages}' has two entries named '{children[i].Name}'.");
                }
            }

            info.Children = [];
            foreach (var child in children)
            {
                if (child.Kind == InodeKind.Directory && _info.ContainsKey(child))
                {
                    throw new SquashFsException(SquashFsErrorCategory.InvalidInput, $"Directory node '{child.Name}' appears twice in the tree.");
                }

                var childInfo = new NodeInfo(child, info);
                _info[child] = childInfo;
                info.Children.Add(childInfo);
                if (child.Kind != InodeKind.Directory && child.HardLinkKey is { } key)
                {
                    if (hardLinks.TryGetValue(key, out var primary))
                    {
                        if (primary.Node.Kind != child.Kind)
                        {
                            throw new SquashFsException(SquashFsErrorCategory.InvalidInput, $"Hard link '{childInfo.PathForMessages}' is a {child.Kind} but its first link is a {primary.Node.Kind}.");
                        }

                        childInfo.LinkPrimary = primary;
                        primary.LinkCount++;
                    }
                    else
                    {
                        hardLinks[key] = childInfo;
                    }
                }
            }

            for (var i = info.Children.Count - 1; i >= 0; i--)
            {
                walk.Push(info.Children[i]);
            }
        }

        // Inode numbers in post-order (children before their directory), the order inodes are written.
        uint number = 0;
        void Number(NodeInfo info)
        {
            var pending = new Stack<(NodeInfo Info, bool Expanded)>();
            pending.Push((info, false));
            while (pending.Count > 0)
            {
                var (current, expanded) = pending.Pop();
                if (current.Node.Kind == InodeKind.Directory && !expanded)
                {
                    pending.Push((current, true));
                    for (var i = current.Children!.Count - 1; i >= 0; i--)
                    {
                        pending.Push((current.Children[i], false));
                    }

                    continue;
                }

                if (current.LinkPrimary is null)
                {
                    current.InodeNumber = ++number;
                }
            }
        }

        Number(rootInfo);
        foreach (var info in _order)
        {
            var node = info.Node;
            var (uid, gid) = _options.OwnerOverride ?? (node.Uid, node.Gid);
            info.UidIndex = IdIndex(uid);
            info.GidIndex = IdIndex(gid);
            if (_options.Xattrs && info.LinkPrimary is null && node.Xattrs.Count > 0)
            {
                var set = node.Xattrs.Where(x => SquashFsXattrNames.IsStorable(x.Name)).OrderBy(x => x.Name, StringComparer.Ordinal).ToList();
                if (set.Count > 0)
                {
                    var key = string.Join('\0', set.Select(x => x.Name + "=" + Convert.ToHexString(x.Value)));
                    if (!_xattrIndex.TryGetValue(key, out var index))
                    {
                        index = (uint)_xattrSets.Count;
                        _xattrSets.Add(set);
                        _xattrIndex[key] = index;
                    }

                    info.XattrIndex = index;
                }
            }
        }

        InodeCount = number;
    }

    private uint InodeCount { get; set; }

    private ushort IdIndex(uint id)
    {
        if (!_idIndex.TryGetValue(id, out var index))
        {
            if (_ids.Count >= ushort.MaxValue)
            {
                throw new SquashFsException(SquashFsErrorCategory.InvalidInput, "The tree uses more than 65535 distinct uids and gids.");
            }

            index = (ushort)_ids.Count;
            _ids.Add(id);
            _idIndex[id] = index;
        }

        return index;
    }

    private IEnumerable<NodeInfo> DataFiles() =>
        _order.Where(i => i.Node.Kind == InodeKind.File && i.LinkPrimary is null && i.DuplicateOf is null);

    private async Task FindDuplicatesAsync(CancellationToken cancellationToken)
    {
        var candidates = _order.Where(i => i.Node.Kind == InodeKind.File && i.LinkPrimary is null && i.Node.Length > 0)
            .GroupBy(i => i.Node.Length)
            .Where(g => g.Count() > 1);
        foreach (var group in candidates)
        {
            var seen = new Dictionary<string, NodeInfo>(StringComparer.Ordinal);
            foreach (var info in group)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var stream = OpenContent(info);
                await using (stream.ConfigureAwait(false))
                {
                    var hash = Convert.ToHexString(await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false));
                    if (seen.TryGetValue(hash, out var original))
                    {
                        info.DuplicateOf = original;
                        _duplicates++;
                    }
                    else
                    {
                        seen[hash] = info;
                    }
                }
            }
        }
    }

    private static Stream OpenContent(NodeInfo info)
    {
        try
        {
            return info.Node.OpenContent?.Invoke() ?? throw new SquashFsException(SquashFsErrorCategory.InvalidInput, $"File '{info.PathForMessages}' has no content source.");
        }
        catch (IOException e)
        {
            throw new SquashFsException(SquashFsErrorCategory.InvalidInput, $"Cannot read '{info.PathForMessages}': {e.Message}", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new SquashFsException(SquashFsErrorCategory.InvalidInput, $"Cannot read '{info.PathForMessages}': {e.Message}", e);
        }
    }

    // ------------------------------------------------------------------ data

    private Task WriteDataAsync(CancellationToken cancellationToken) =>
        Task.Factory.StartNew(() => WriteData(cancellationToken), cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    /// <summary>
    /// Reads files on one thread, compresses on <see cref="SquashFsWriterOptions.Parallelism"/> threads and
    /// writes in order on this one. Dedicated threads, not thread-pool tasks: CPU-bound workers would
    /// otherwise starve the reader and writer of pool threads on a two-core machine.
    /// </summary>
    private void WriteData(CancellationToken cancellationToken)
    {
        var workers = Math.Max(1, _options.Parallelism);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var work = new BlockingCollection<BlockJob>(workers * 4);
        using var ordered = new BlockingCollection<BlockJob>((workers * 4) + 4);
        Exception? failure = null;
        void Fail(Exception e)
        {
            Interlocked.CompareExchange(ref failure, e, null);
            cts.Cancel();
        }

        var threads = new List<Thread>
        {
            new(() =>
            {
                try
                {
                    Produce(work, ordered, cts.Token);
                }
                catch (Exception e)
                {
                    Fail(e);
                }
                finally
                {
                    work.CompleteAdding();
                    ordered.CompleteAdding();
                }
            }) { IsBackground = true, Name = "squashfs-reader" },
        };
        for (var i = 0; i < workers; i++)
        {
            threads.Add(new Thread(() =>
            {
                try
                {
                    Compress(work, cts.Token);
                }
                catch (Exception e)
                {
                    Fail(e);
                }
            }) { IsBackground = true, Name = "squashfs-compress" });
        }

        foreach (var thread in threads)
        {
            thread.Start();
        }

        try
        {
            Consume(ordered, cts.Token);
        }
        catch (Exception e)
        {
            Fail(e);
        }

        foreach (var thread in threads)
        {
            thread.Join();
        }

        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }
    }

    private void Produce(BlockingCollection<BlockJob> work, BlockingCollection<BlockJob> ordered, CancellationToken cancellationToken)
    {
        byte[]? fragment = null;
        var fragmentUsed = 0;
        void Emit(BlockJob job)
        {
            ordered.Add(job, cancellationToken);
            if (job.Kind != BlockKind.Sparse)
            {
                work.Add(job, cancellationToken);
            }
            else
            {
                job.Done.TrySetResult();
            }
        }

        foreach (var info in DataFiles())
        {
            var length = info.Node.Length;
            if (length == 0)
            {
                continue;
            }

            var tailInFragment = _options.Fragments && length % _blockSize != 0 && (length < _blockSize || _options.AlwaysFragments);
            var blocks = tailInFragment ? length / _blockSize : (length + _blockSize - 1) / _blockSize;
            using var stream = OpenContent(info);
            for (long b = 0; b < blocks; b++)
            {
                var size = (int)Math.Min(_blockSize, length - (b * _blockSize));
                var buffer = ArrayPool<byte>.Shared.Rent(_blockSize);
                ReadExact(stream, buffer.AsSpan(0, size), info);
                if (!buffer.AsSpan(0, size).ContainsAnyExcept((byte)0))
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    Emit(new BlockJob(BlockKind.Sparse, info, null, size));
                }
                else
                {
                    Emit(new BlockJob(BlockKind.Data, info, buffer, size));
                }
            }

            if (tailInFragment)
            {
                var tail = (int)(length % _blockSize);
                if (fragment is not null && fragmentUsed + tail > _blockSize)
                {
                    Emit(new BlockJob(BlockKind.Fragment, null, fragment, fragmentUsed));
                    fragment = null;
                }

                if (fragment is null)
                {
                    fragment = ArrayPool<byte>.Shared.Rent(_blockSize);
                    fragmentUsed = 0;
                    _fragmentsPlanned++;
                }

                ReadExact(stream, fragment.AsSpan(fragmentUsed, tail), info);
                info.FragmentIndex = (uint)(_fragmentsPlanned - 1);
                info.FragmentOffset = (uint)fragmentUsed;
                fragmentUsed += tail;
            }

            if (stream.ReadByte() >= 0)
            {
                throw new SquashFsException(SquashFsErrorCategory.InvalidInput, $"File '{info.PathForMessages}' grew while it was read (expected {length} bytes).");
            }
        }

        if (fragment is not null)
        {
            Emit(new BlockJob(BlockKind.Fragment, null, fragment, fragmentUsed));
        }
    }

    private long _fragmentsPlanned;

    private static void ReadExact(Stream stream, Span<byte> buffer, NodeInfo info)
    {
        try
        {
            stream.ReadExactly(buffer);
        }
        catch (EndOfStreamException e)
        {
            throw new SquashFsException(SquashFsErrorCategory.InvalidInput, $"File '{info.PathForMessages}' shrank while it was read (expected {info.Node.Length} bytes).", e);
        }
        catch (IOException e)
        {
            throw new SquashFsException(SquashFsErrorCategory.InvalidInput, $"Cannot read '{info.PathForMessages}': {e.Message}", e);
        }
    }

    private void Compress(BlockingCollection<BlockJob> work, CancellationToken cancellationToken)
    {
        using var codec = SquashFsCodec.Create(_options.Compressor, (uint)_blockSize, CodecRole.Data);
        foreach (var job in work.GetConsumingEnumerable(cancellationToken))
        {
            try
            {
                var output = ArrayPool<byte>.Shared.Rent(_blockSize);
                if (codec.TryCompress(job.Input.AsSpan(0, job.Length), output.AsSpan(0, _blockSize), out var written))
                {
                    job.Output = output;
                    job.OutputLength = written;
                    job.Compressed = true;
                }
                else
                {
                    ArrayPool<byte>.Shared.Return(output);
                }

                job.Done.TrySetResult();
            }
            catch (Exception e)
            {
                job.Done.TrySetException(e);
                throw;
            }
        }
    }

    private void Consume(BlockingCollection<BlockJob> ordered, CancellationToken cancellationToken)
    {
        foreach (var job in ordered.GetConsumingEnumerable(cancellationToken))
        {
            job.Done.Task.Wait(cancellationToken);
            if (job.File is { } file && file.BlocksStart < 0)
            {
                file.BlocksStart = _position;
            }

            if (job.Kind == BlockKind.Sparse)
            {
                job.File!.BlockSizes.Add(0);
                job.File.Sparse += (ulong)job.Length;
                continue;
            }

            var data = job.Compressed ? job.Output.AsSpan(0, job.OutputLength) : job.Input.AsSpan(0, job.Length);
            _sink.WriteAt(_position, data);
            var size = (uint)data.Length | (job.Compressed ? 0 : Inode.UncompressedBlockBit);
            if (job.Kind == BlockKind.Fragment)
            {
                _fragments.Add(new FragmentEntry((ulong)_position, size, 0));
            }
            else
            {
                job.File!.BlockSizes.Add(size);
                _dataBlocks++;
            }

            _position += data.Length;
            ArrayPool<byte>.Shared.Return(job.Input!);
            if (job.Output is not null)
            {
                ArrayPool<byte>.Shared.Return(job.Output);
            }
        }
    }

    // ------------------------------------------------------------------ tables

    private SquashFsWriteResult WriteTables(bool hasOptionsBlock)
    {
        using var metadataCodec = SquashFsCodec.Create(_options.Compressor, (uint)_blockSize, CodecRole.Metadata);
        var inodes = new MetadataWriter(metadataCodec);
        var directories = new MetadataWriter(metadataCodec);
        var exportRefs = new InodeReference[InodeCount];
        var rootInfo = _info[_root];
        WriteInodes(rootInfo, inodes, directories, exportRefs);

        var inodeTable = inodes.Finish();
        var directoryTable = directories.Finish();
        var inodeTableStart = _position;
        Append(inodeTable);
        var directoryTableStart = _position;
        Append(directoryTable);

        var fragmentTableStart = WriteIndexedTable(metadataCodec, _fragments.Count, (w, i) =>
        {
            w.WriteUInt64(_fragments[i].Start);
            w.WriteUInt32(_fragments[i].RawSize);
            w.WriteUInt32(_fragments[i].Unused);
        });
        var exportTableStart = _options.Exportable
            ? WriteIndexedTable(metadataCodec, exportRefs.Length, (w, i) => w.WriteUInt64(exportRefs[i].Value))
            : -1;
        var idTableStart = WriteIndexedTable(metadataCodec, _ids.Count, (w, i) => w.WriteUInt32(_ids[i]));
        var xattrTableStart = WriteXattrTables(metadataCodec);

        var flags = SuperblockFlags.None;
        if (!_options.Fragments)
        {
            flags |= SuperblockFlags.NoFragments;
        }

        if (_options.AlwaysFragments)
        {
            flags |= SuperblockFlags.AlwaysFragments;
        }

        if (_options.DeduplicateFiles)
        {
            flags |= SuperblockFlags.Duplicates;
        }

        if (_options.Exportable)
        {
            flags |= SuperblockFlags.Exportable;
        }

        if (!_options.Xattrs)
        {
            flags |= SuperblockFlags.NoXattrs;
        }

        if (hasOptionsBlock)
        {
            flags |= SuperblockFlags.CompressorOptions;
        }

        var bytesUsed = _position;
        var superblock = new Superblock
        {
            InodeCount = InodeCount,
            ModificationTime = (uint)(_fixedTime ?? _order.Select(i => Math.Clamp(i.Node.ModifiedTime, 0, uint.MaxValue)).DefaultIfEmpty(0).Max()),
            BlockSize = (uint)_blockSize,
            FragmentEntryCount = (uint)_fragments.Count,
            Compressor = _options.Compressor.Compressor,
            BlockLog = (ushort)System.Numerics.BitOperations.Log2((uint)_blockSize),
            Flags = flags,
            IdCount = (ushort)_ids.Count,
            RootInode = rootInfo.Reference,
            BytesUsed = (ulong)bytesUsed,
            IdTableStart = (ulong)idTableStart,
            XattrIdTableStart = xattrTableStart < 0 ? Superblock.NoTable : (ulong)xattrTableStart,
            InodeTableStart = (ulong)inodeTableStart,
            DirectoryTableStart = (ulong)directoryTableStart,
            FragmentTableStart = (ulong)fragmentTableStart,
            ExportTableStart = exportTableStart < 0 ? Superblock.NoTable : (ulong)exportTableStart,
        };
        var raw = new byte[Superblock.Size];
        superblock.Write(raw);
        _sink.WriteAt(0, raw);

        // Pad to 4 KiB like mksquashfs, so that the image can back a loop device.
        var padded = (bytesUsed + 4095) / 4096 * 4096;
        if (padded > bytesUsed)
        {
            _sink.WriteAt(bytesUsed, new byte[padded - bytesUsed]);
        }

        _sink.SetLength(padded);
        _sink.Flush();
        return new SquashFsWriteResult(bytesUsed, padded, InodeCount, _dataBlocks, _fragments.Count, _duplicates);
    }

    private void Append(byte[] data)
    {
        _sink.WriteAt(_position, data);
        _position += data.Length;
    }

    /// <summary>Writes an indexed table (blocks, then the index of block offsets); returns the index offset.</summary>
    private long WriteIndexedTable(SquashFsCodec codec, int count, Action<MetadataWriter, int> writeEntry)
    {
        var writer = new MetadataWriter(codec);
        for (var i = 0; i < count; i++)
        {
            writeEntry(writer, i);
        }

        var blocksStart = _position;
        Append(writer.Finish());
        var index = new byte[8 * writer.Blocks.Count];
        for (var i = 0; i < writer.Blocks.Count; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(index.AsSpan(8 * i), (ulong)(blocksStart + writer.Blocks[i].Offset));
        }

        var indexStart = _position;
        Append(index);
        return indexStart;
    }

    private long WriteXattrTables(SquashFsCodec codec)
    {
        if (_xattrSets.Count == 0)
        {
            return -1;
        }

        var kv = new MetadataWriter(codec);
        var ids = new List<(ulong Reference, uint Count, uint Size)>();
        foreach (var set in _xattrSets)
        {
            var reference = ((ulong)kv.BlockStart << 16) | (ushort)kv.Offset;
            uint size = 0;
            foreach (var xattr in set)
            {
                var type = SquashFsXattrNames.PrefixType(xattr.Name);
                var prefixLength = type switch { 0 => 5, 1 => 8, _ => 9 };
                var name = System.Text.Encoding.UTF8.GetBytes(xattr.Name[prefixLength..]);
                if (name.Length > 255 || xattr.Value.Length > 65536)
                {
                    throw new SquashFsException(SquashFsErrorCategory.InvalidInput, $"Xattr '{xattr.Name}' is too large (name max 255 bytes after the prefix, value max 65536).");
                }

                kv.WriteUInt16((ushort)type);
                kv.WriteUInt16((ushort)name.Length);
                kv.Write(name);
                kv.WriteUInt32((uint)xattr.Value.Length);
                kv.Write(xattr.Value);
                size += (uint)(prefixLength + name.Length + 1 + xattr.Value.Length);
            }

            ids.Add((reference, (uint)set.Count, size));
        }

        var kvStart = _position;
        Append(kv.Finish());
        var idWriter = new MetadataWriter(codec);
        foreach (var (reference, count, size) in ids)
        {
            idWriter.WriteUInt64(reference);
            idWriter.WriteUInt32(count);
            idWriter.WriteUInt32(size);
        }

        var idBlocksStart = _position;
        Append(idWriter.Finish());
        var header = new byte[16 + (8 * idWriter.Blocks.Count)];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)kvStart);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), (uint)ids.Count);
        for (var i = 0; i < idWriter.Blocks.Count; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(16 + (8 * i)), (ulong)(idBlocksStart + idWriter.Blocks[i].Offset));
        }

        var headerStart = _position;
        Append(header);
        return headerStart;
    }

    /// <summary>Writes inodes in post-order and directory listings; fills references.</summary>
    private void WriteInodes(NodeInfo root, MetadataWriter inodes, MetadataWriter directories, InodeReference[] exportRefs)
    {
        var pending = new Stack<(NodeInfo Info, bool Expanded)>();
        pending.Push((root, false));
        while (pending.Count > 0)
        {
            var (info, expanded) = pending.Pop();
            if (info.Node.Kind == InodeKind.Directory && !expanded)
            {
                pending.Push((info, true));
                for (var i = info.Children!.Count - 1; i >= 0; i--)
                {
                    pending.Push((info.Children[i], false));
                }

                continue;
            }

            if (info.LinkPrimary is { } primary)
            {
                info.InodeNumber = primary.InodeNumber;
                info.Reference = primary.Reference;
                continue;
            }

            var inode = BuildInode(info, directories);
            info.Reference = new InodeReference(inodes.BlockStart, inodes.Offset);
            exportRefs[info.InodeNumber - 1] = info.Reference;
            var bytes = inode.ToArray();
            inodes.Write(bytes);
        }
    }

    private Inode BuildInode(NodeInfo info, MetadataWriter directories)
    {
        var node = info.Node;
        var inode = new Inode
        {
            Permissions = (ushort)(node.Permissions & 0xFFF),
            UidIndex = info.UidIndex,
            GidIndex = info.GidIndex,
            ModifiedTime = (uint)Math.Clamp(_fixedTime ?? node.ModifiedTime, 0, uint.MaxValue),
            InodeNumber = info.InodeNumber,
            LinkCount = (uint)info.LinkCount,
            XattrIndex = info.XattrIndex,
        };
        var hasXattr = info.XattrIndex != Inode.NoXattr;
        switch (node.Kind)
        {
            case InodeKind.Directory:
                WriteListing(info, inode, directories);
                inode.LinkCount = 2 + (uint)info.Children!.Count(c => c.Node.Kind == InodeKind.Directory);
                inode.ParentInode = info.Parent is null ? InodeCount + 1 : info.Parent.InodeNumber;
                inode.Type = hasXattr || inode.DirectoryIndex.Length > 0 || inode.FileSize > ushort.MaxValue
                    ? InodeType.ExtendedDirectory
                    : InodeType.BasicDirectory;
                break;
            case InodeKind.File:
                var data = info.DuplicateOf ?? info;
                inode.FileSize = (ulong)node.Length;
                inode.BlocksStart = data.BlocksStart < 0 ? 0 : (ulong)data.BlocksStart;
                inode.BlockSizes = [.. data.BlockSizes];
                inode.FragmentIndex = data.FragmentIndex;
                inode.FragmentOffset = data.FragmentOffset;
                inode.Sparse = data.Sparse;
                inode.Type = hasXattr || inode.LinkCount > 1 || inode.Sparse > 0 || inode.BlocksStart > uint.MaxValue || inode.FileSize > uint.MaxValue
                    ? InodeType.ExtendedFile
                    : InodeType.BasicFile;
                break;
            case InodeKind.Symlink:
                inode.SymlinkTarget = node.LinkTarget;
                inode.FileSize = (ulong)node.LinkTarget.Length;
                inode.Type = hasXattr ? InodeType.ExtendedSymlink : InodeType.BasicSymlink;
                break;
            case InodeKind.BlockDevice:
            case InodeKind.CharDevice:
                if (node.DeviceMajor > 0xFFF || node.DeviceMinor > 0xFFFFF)
                {
                    throw new SquashFsException(SquashFsErrorCategory.InvalidInput, $"Device '{info.PathForMessages}' {node.DeviceMajor}:{node.DeviceMinor} does not fit SquashFS's 32-bit device number (major up to 4095, minor up to 1048575).");
                }

                inode.DeviceNumber = Inode.EncodeDevice(node.DeviceMajor, node.DeviceMinor);
                inode.Type = node.Kind == InodeKind.BlockDevice
                    ? hasXattr ? InodeType.ExtendedBlockDevice : InodeType.BasicBlockDevice
                    : hasXattr ? InodeType.ExtendedCharDevice : InodeType.BasicCharDevice;
                break;
            case InodeKind.Fifo:
                inode.Type = hasXattr ? InodeType.ExtendedFifo : InodeType.BasicFifo;
                break;
            default:
                inode.Type = hasXattr ? InodeType.ExtendedSocket : InodeType.BasicSocket;
                break;
        }

        return inode;
    }

    private static void WriteListing(NodeInfo info, Inode inode, MetadataWriter directories)
    {
        inode.DirectoryBlockStart = checked((uint)directories.BlockStart);
        inode.DirectoryBlockOffset = (ushort)directories.Offset;
        var listingStart = directories.UncompressedLength;
        var lastIndexedBlock = directories.BlockStart;
        var index = new List<DirectoryIndexEntry>();
        var children = info.Children!;
        var i = 0;
        while (i < children.Count)
        {
            var first = children[i];
            var count = 1;
            while (i + count < children.Count && count < 256)
            {
                var next = children[i + count];
                if (next.Reference.BlockStart != first.Reference.BlockStart || Math.Abs((long)next.InodeNumber - first.InodeNumber) > short.MaxValue)
                {
                    break;
                }

                count++;
            }

            if (directories.BlockStart != lastIndexedBlock)
            {
                index.Add(new DirectoryIndexEntry((uint)(directories.UncompressedLength - listingStart), (uint)directories.BlockStart, first.Node.RawName));
                lastIndexedBlock = directories.BlockStart;
            }

            directories.WriteUInt32((uint)(count - 1));
            directories.WriteUInt32(checked((uint)first.Reference.BlockStart));
            directories.WriteUInt32(first.InodeNumber);
            for (var j = 0; j < count; j++)
            {
                var entry = children[i + j];
                directories.WriteUInt16((ushort)entry.Reference.Offset);
                directories.WriteUInt16((ushort)(short)((long)entry.InodeNumber - first.InodeNumber));
                directories.WriteUInt16((ushort)Inode.BasicTypeOf(entry.Node.Kind));
                directories.WriteUInt16((ushort)(entry.Node.RawName.Length - 1));
                directories.Write(entry.Node.RawName);
            }

            i += count;
        }

        inode.FileSize = (ulong)(directories.UncompressedLength - listingStart + 3);
        inode.DirectoryIndex = [.. index];
    }

    private enum BlockKind
    {
        Data,
        Sparse,
        Fragment,
    }

    private sealed class BlockJob
    {
        public BlockJob(BlockKind kind, NodeInfo? file, byte[]? input, int length)
        {
            Kind = kind;
            File = file;
            Input = input;
            Length = length;
        }

        public BlockKind Kind { get; }

        public NodeInfo? File { get; }

        public byte[]? Input { get; }

        public int Length { get; }

        public byte[]? Output { get; set; }

        public int OutputLength { get; set; }

        public bool Compressed { get; set; }

        public TaskCompletionSource Done { get; } = new();
    }

    /// <summary>What the build knows about one node.</summary>
    private sealed class NodeInfo
    {
        public NodeInfo(SourceNode node, NodeInfo? parent)
        {
            Node = node;
            Parent = parent;
        }

        public SourceNode Node { get; }

        public NodeInfo? Parent { get; }

        public List<NodeInfo>? Children { get; set; }

        public NodeInfo? LinkPrimary { get; set; }

        public NodeInfo? DuplicateOf { get; set; }

        public int LinkCount { get; set; } = 1;

        public uint InodeNumber { get; set; }

        public InodeReference Reference { get; set; }

        public ushort UidIndex { get; set; }

        public ushort GidIndex { get; set; }

        public uint XattrIndex { get; set; } = Inode.NoXattr;

        public long BlocksStart { get; set; } = -1;

        public List<uint> BlockSizes { get; } = [];

        public uint FragmentIndex { get; set; } = Inode.NoFragment;

        public uint FragmentOffset { get; set; }

        public ulong Sparse { get; set; }

        public string PathForMessages => Parent is null ? "/" : (Parent.Parent is null ? "/" : Parent.PathForMessages + "/") + Node.Name;
    }
}

/// <summary>Orders names by their bytes, as the kernel's directory lookup expects.</summary>
internal sealed class ByteOrder : IComparer<byte[]>
{
    public static readonly ByteOrder Instance = new();

    public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
}
