using System.Buffers;
using System.Security.Cryptography;
using EdgeUpdater.Delta.Apply;
using EdgeUpdater.Delta.Format;
using EdgeUpdater.Delta.Generation;
using EdgeUpdater.Delta.Metadata;
using EdgeUpdater.Delta.Patching;
using EdgeUpdater.SquashFs;
using EdgeUpdater.SquashFs.Compression;
using EdgeUpdater.SquashFs.Format;
using EdgeUpdater.SquashFs.IO;
using EdgeUpdater.SquashFs.Reader;

namespace EdgeUpdater.Delta;

/// <summary>
/// Applies a delta: reads the delta sequentially (file, pipe, HTTP response), the base image by random
/// access, writes the new image sequentially, and verifies its SHA-256 at the end. Memory is bounded by
/// the format's limits (sections, content, reference, metadata tables), not by the image size.
/// </summary>
public static class DeltaApplier
{
    /// <summary>Section headers walked to find the metadata section ahead (a generator writes a few per 4 MiB of content).</summary>
    private const int MaxSectionsBeforeMetadata = 1 << 16;

    /// <summary>
    /// Rebuilds the new image from <paramref name="baseImage"/> and <paramref name="delta"/> into
    /// <paramref name="output"/>. Throws <see cref="DeltaException"/> on any problem; the output is then
    /// not the new image (its checkpoint, if any, stays for a resume).
    /// </summary>
    public static async Task<DeltaApplyResult> ApplyAsync(IImageSource baseImage, Stream delta, IImageSink output, DeltaApplyOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(baseImage);
        ArgumentNullException.ThrowIfNull(delta);
        ArgumentNullException.ThrowIfNull(output);
        options ??= new DeltaApplyOptions();
        var (header, headerLength) = await DeltaHeader.ReadAsync(delta, cancellationToken).ConfigureAwait(false);
        if (options.ExpectedTarget is { } expected && (expected.Size != header.TargetSize || !expected.Sha256.AsSpan().SequenceEqual(header.TargetSha256)))
        {
            throw new DeltaException(DeltaErrorCategory.WrongTarget, $"The delta rebuilds image {Convert.ToHexStringLower(header.TargetSha256)} ({header.TargetSize} bytes); the image expected is {Convert.ToHexStringLower(expected.Sha256)} ({expected.Size} bytes).");
        }

        if (baseImage.Length < header.BaseSize)
        {
            throw new DeltaException(DeltaErrorCategory.WrongBase, $"The base image has {baseImage.Length} bytes; the delta was made from an image of {header.BaseSize} bytes.");
        }

        var source = new BoundedImageSource(baseImage, header.BaseSize);
        using var verifyCancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var baseCheck = options.VerifyBase is BaseVerification.Beside or BaseVerification.BeforeWriting
            ? Task.Run(() => CheckBase(source, header, verifyCancel.Token), verifyCancel.Token)
            : Task.CompletedTask;
        if (options.VerifyBase == BaseVerification.BeforeWriting)
        {
            await baseCheck.ConfigureAwait(false);
        }

        using var state = new ApplyState(header, source, output, options, baseCheck);
        try
        {
            state.Prepare();
            var resumedFrom = 0L;
            var deltaOffset = headerLength;
            (IImageSource Output, long TargetOffset)? resume = null;
            if (options.Resume && options.CheckpointPath is not null && Checkpoint.Load(options.CheckpointPath) is { } checkpoint)
            {
                if (!checkpoint.BaseSha256.AsSpan().SequenceEqual(header.BaseSha256) || !checkpoint.TargetSha256.AsSpan().SequenceEqual(header.TargetSha256)
                    || checkpoint.HeaderHash != Checkpoint.HashOf(header) || checkpoint.DeltaOffset < headerLength || checkpoint.TargetOffset > header.TargetSize)
                {
                    throw new DeltaException(DeltaErrorCategory.CheckpointMismatch, $"The checkpoint {options.CheckpointPath} belongs to another delta; delete it to start over.");
                }

                if (output is not IImageSource readable)
                {
                    throw new DeltaException(DeltaErrorCategory.Unsupported, "Resuming needs an output that can be read back (FileDeltaTarget).");
                }

                await StreamUtil.SkipAsync(delta, checkpoint.DeltaOffset - headerLength, cancellationToken).ConfigureAwait(false);
                deltaOffset = checkpoint.DeltaOffset;
                resume = (readable, checkpoint.TargetOffset);
            }

            // The metadata section comes last but needs only A: decode it on another core meanwhile, from before
            // a resume hashes what it had written and before the reservation.
            if (header.Mode == DeltaMode.SquashFs && options.ReadMetadataAhead && delta.CanSeek
                && await SectionLocator.FindAsync(delta, deltaOffset, SectionKind.Metadata, MaxSectionsBeforeMetadata, cancellationToken).ConfigureAwait(false) is { } metadata)
            {
                state.DecodeMetadataAhead(metadata);
            }

            // A fresh apply overwrites the output in place and cuts it to size at the end. Truncating a slot that
            // holds an image first only frees its blocks for the writes to allocate again (a 47 MB image here:
            // 10 to 12 ms, before the first write).
            if (resume is { } at)
            {
                state.ResumeFrom(at.Output, at.TargetOffset, cancellationToken);
                resumedFrom = at.TargetOffset;
            }

            // After the resume's truncation, which would give a reservation back.
            output.Reserve(header.TargetSize);

            using var sections = new SectionReader(delta, deltaOffset);
            while (true)
            {
                var section = await sections.ReadAsync(cancellationToken).ConfigureAwait(false);
                var payload = section.Payload.AsMemory(0, section.Length);
                switch (section.Kind)
                {
                    case SectionKind.Content:
                        state.LoadContent(payload.Span, section.DeltaOffset);
                        break;
                    case SectionKind.Ops:
                        state.RunOps(payload, section.DeltaOffset, cancellationToken);
                        break;
                    case SectionKind.Metadata:
                        state.RunMetadata(payload.Span, section.DeltaOffset);
                        break;
                    case SectionKind.End:
                        state.Finish(payload.Span, section.DeltaOffset);
                        var trailing = new byte[1];
                        if (await delta.ReadAsync(trailing, cancellationToken).ConfigureAwait(false) != 0)
                        {
                            throw DeltaException.Corrupted($"Bytes follow the end section at delta offset {sections.Offset}.");
                        }

                        if (options.CheckpointPath is not null)
                        {
                            Checkpoint.Delete(options.CheckpointPath);
                        }

                        return new DeltaApplyResult(header, resumedFrom, state.MetadataDecodedAhead);
                }

                state.MaybeCheckpoint(sections.Offset);
                cancellationToken.ThrowIfCancellationRequested();
            }
        }
        catch (Exception e) when (IsRefusal(e))
        {
            // Whatever went wrong, a wrong base explains it best: let the base check finish (or run it now) and say so.
            if (e is not DeltaException { Category: DeltaErrorCategory.WrongBase })
            {
                if (options.VerifyBase == BaseVerification.WhenFailed)
                {
                    CheckBase(source, header, cancellationToken);
                }
                else
                {
                    await baseCheck.ConfigureAwait(false);
                }
            }

            if (e is DeltaException)
            {
                throw;
            }

            // A delta crafted with valid checksums can still carry values no generator writes.
            throw new DeltaException(DeltaErrorCategory.Corrupted, $"Rebuilding the new image failed: {e.Message}", e);
        }
        finally
        {
            await verifyCancel.CancelAsync().ConfigureAwait(false);
            try
            {
                await baseCheck.ConfigureAwait(false);
            }
            catch (Exception) when (!baseCheck.IsCompletedSuccessfully)
            {
                // Observed: either reported above or irrelevant after another failure.
            }
        }
    }

    /// <summary>What a delta that breaks the format can make the decoders throw (anything else is a fault of the machine).</summary>
    private static bool IsRefusal(Exception e) =>
        e is DeltaException or SquashFsException or ArgumentException or OverflowException or IndexOutOfRangeException or InvalidOperationException;

    private static void CheckBase(IImageSource source, DeltaHeader header, CancellationToken cancellationToken)
    {
        var actual = DeltaGenerator.Sha256Of(source, cancellationToken);
        if (!actual.AsSpan().SequenceEqual(header.BaseSha256))
        {
            throw new DeltaException(DeltaErrorCategory.WrongBase, $"The base image's SHA-256 is {Convert.ToHexStringLower(actual)}; the delta was made from {Convert.ToHexStringLower(header.BaseSha256)}.");
        }
    }

    /// <summary>Applies between files: the base image (file or block device), the delta file and the output (file or block device).</summary>
    public static async Task<DeltaApplyResult> ApplyAsync(string basePath, string deltaPath, string outputPath, DeltaApplyOptions? options = null, CancellationToken cancellationToken = default)
    {
        using var baseSource = new FileImageSource(basePath);
        await using var delta = new FileStream(deltaPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous);
        using var output = new FileDeltaTarget(outputPath, basePath);
        return await ApplyAsync(baseSource, delta, output, options, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Everything one apply holds: the writer, the content buffer, codecs, the base image.</summary>
    private sealed class ApplyState : IImageWriter, IDisposable
    {
        private const int WriteBuffer = 1 << 20;

        private readonly DeltaHeader _header;
        private readonly ulong _headerHash;
        private readonly IImageSource _base;
        private readonly IImageSink _output;
        private readonly DeltaApplyOptions _options;
        private readonly Task _baseCheck;
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private readonly ZstdPatcher _zstd = new();
        private readonly byte[] _buffer = new byte[WriteBuffer];
        private readonly System.Collections.Concurrent.ConcurrentBag<(SquashFsCodec Codec, byte[] Scratch)> _workers = [];
        private readonly List<PendingFrame> _frames = [];
        private CompressorOptions? _compressorOptions;
        private SquashFsImage? _oldImage;
        private CodecRenter? _metadataCodecs;
        private byte[] _content = [];
        private byte[] _reference = [];
        private int _contentEnd;
        private int _buffered;
        private long _position;
        private long _lastCheckpoint;
        private Task<MetadataRegionBuffer?>? _metadataAhead;
        private Section? _metadataAheadSection;

        public ApplyState(DeltaHeader header, IImageSource baseSource, IImageSink output, DeltaApplyOptions options, Task baseCheck)
        {
            _baseCheck = baseCheck;
            _header = header;
            _headerHash = Checkpoint.HashOf(header);
            _base = baseSource;
            _output = output;
            _options = options;
        }

        public long Position => _position + _buffered;

        public bool MetadataDecodedAhead { get; private set; }

        /// <summary>Opens the base image and the codecs; refuses a codec that differs from the generator's before anything is written.</summary>
        public void Prepare()
        {
            if (_header.Mode != DeltaMode.SquashFs)
            {
                return;
            }

            try
            {
                _oldImage = SquashFsImage.Open(_base, leaveOpen: true);
            }
            catch (SquashFsException e)
            {
                throw new DeltaException(DeltaErrorCategory.WrongBase, $"The base image is not the SquashFS image the delta was made from: {e.Message}", e);
            }

            if (!_header.UsesRecompression)
            {
                return;
            }

            var compressor = (CompressorId)_header.Compressor;
            try
            {
                if (_header.BlockSize is < 4096 or > 1 << 20 || !System.Numerics.BitOperations.IsPow2(_header.BlockSize))
                {
                    throw DeltaException.Corrupted($"The delta header's block size {_header.BlockSize} is not a power of two between 4 KiB and 1 MiB.");
                }

                _compressorOptions = CompressorOptions.Parse(compressor, _header.CompressorOptions, _header.BlockSize);
                var codec = SquashFsCodec.Create(_compressorOptions, _header.BlockSize, CodecRole.Data);
                _workers.Add((codec, new byte[_header.BlockSize]));
                var options = _compressorOptions;
                _metadataCodecs = new CodecRenter(() => SquashFsCodec.Create(options, _header.BlockSize, CodecRole.Metadata));
                if (codec.Identity != _header.CodecIdentity)
                {
                    throw new DeltaException(DeltaErrorCategory.CodecMismatch, $"The delta needs recompression with {_header.CodecIdentity}; this device has {codec.Identity}. Ask the server for a delta with codecs={DeltaCodecs.LocalIdentitiesQuery()}.");
                }
            }
            catch (SquashFsException e)
            {
                throw new DeltaException(DeltaErrorCategory.CodecMismatch, $"The delta needs recompression with {_header.CodecIdentity} ({compressor}); this device cannot: {e.Message}", e);
            }
        }

        public void ResumeFrom(IImageSource written, long offset, CancellationToken cancellationToken)
        {
            var buffer = new byte[WriteBuffer];
            for (long p = 0; p < offset; p += buffer.Length)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var n = (int)Math.Min(buffer.Length, offset - p);
                written.ReadAt(p, buffer.AsSpan(0, n));
                _hash.AppendData(buffer, 0, n);
            }

            _output.SetLength(offset);
            _position = offset;
            _lastCheckpoint = offset;
        }

        public void Write(ReadOnlySpan<byte> bytes)
        {
            CheckFits(bytes.Length);

            while (!bytes.IsEmpty)
            {
                var n = Math.Min(bytes.Length, _buffer.Length - _buffered);
                bytes[..n].CopyTo(_buffer.AsSpan(_buffered));
                _buffered += n;
                bytes = bytes[n..];
                if (_buffered == _buffer.Length)
                {
                    FlushBuffer();
                }
            }
        }

        /// <summary>
        /// Appends <paramref name="length"/> bytes made in place in the write buffer: base bytes from
        /// <paramref name="baseOffset"/> (a copy is most of the new image), XORed with <paramref name="xorMask"/>
        /// when one is given (of <paramref name="length"/> bytes), or zeros when <paramref name="baseOffset"/> is null.
        /// </summary>
        private void AppendInPlace(long length, long? baseOffset, ReadOnlySpan<byte> xorMask = default)
        {
            CheckFits(length);
            while (length > 0)
            {
                var n = (int)Math.Min(length, _buffer.Length - _buffered);
                var target = _buffer.AsSpan(_buffered, n);
                if (baseOffset is { } offset)
                {
                    _base.ReadAt(offset, target);
                    baseOffset = offset + n;
                    if (!xorMask.IsEmpty)
                    {
                        for (var i = 0; i < n; i++)
                        {
                            target[i] ^= xorMask[i];
                        }

                        xorMask = xorMask[n..];
                    }
                }
                else
                {
                    target.Clear();
                }

                _buffered += n;
                length -= n;
                if (_buffered == _buffer.Length)
                {
                    FlushBuffer();
                }
            }
        }

        private void CheckFits(long length)
        {
            if (length > _header.TargetSize - Position)
            {
                throw DeltaException.OutOfBounds($"An operation writes {length} bytes at new-image offset {Position}, past the new image's size {_header.TargetSize}.");
            }
        }

        private void FlushBuffer()
        {
            if (_buffered == 0)
            {
                return;
            }

            _output.WriteAt(_position, _buffer.AsSpan(0, _buffered));
            _hash.AppendData(_buffer, 0, _buffered);
            _position += _buffered;
            _buffered = 0;
        }

        /// <summary>
        /// Decodes a content section into the content buffer after the frames still pending. Format 1 allows
        /// one frame per ops section; format 2 up to <see cref="DeltaFormat.MaxFrames"/>, together at most
        /// <see cref="DeltaFormat.MaxContentLength"/> bytes.
        /// </summary>
        public void LoadContent(ReadOnlySpan<byte> payload, long sectionOffset)
        {
            var where = $"content section at delta offset {sectionOffset}";
            var version = _header.Version;
            if (_frames.Count > 0 && (version == 1 || _frames.Count == DeltaFormat.MaxFrames))
            {
                throw DeltaException.Corrupted($"{where}: {_frames.Count} content frame(s) are already waiting for an ops section (at most {(version == 1 ? 1 : DeltaFormat.MaxFrames)}).");
            }

            var reader = new ByteReader(payload, where);
            var maxBlock = _oldImage is null ? 0u : (uint)_oldImage.BlockSize;
            var head = ContentFrame.ReadHead(ref reader, version, _header.BaseSize, maxBlock);
            var frame = reader.Blob(DeltaFormat.MaxSectionLength, "content frame");
            if (!reader.AtEnd)
            {
                throw DeltaException.Corrupted($"{where}: {reader.Remaining} bytes follow the frame.");
            }

            var limit = version == 1 ? DeltaFormat.MaxContentLengthVersion1 : DeltaFormat.MaxContentLength;
            if (head.ContentLength > limit - _contentEnd)
            {
                throw DeltaException.Overflow($"{where}: {head.ContentLength} more content bytes after {_contentEnd} pending; at most {limit} before one ops section.");
            }

            if (_content.Length < _contentEnd + head.ContentLength)
            {
                Array.Resize(ref _content, Math.Max(_contentEnd + head.ContentLength, Math.Min(limit, _content.Length * 2)));
            }

            var destination = _content.AsSpan(_contentEnd, head.ContentLength);
            if (head.Coder == FrameCoder.Lzma2)
            {
                LzmaCoder.Decode(frame, head.Filter, head.Dictionary, destination, where);
            }
            else
            {
                var reference = BuildReference(head.Items, where);
                _zstd.Decode(reference, frame, destination, where);
            }

            _frames.Add(new PendingFrame(_contentEnd, head.ContentLength));
            _contentEnd += head.ContentLength;
        }

        /// <summary>
        /// A zstd frame's reference: A's blocks decompressed and sliced, or raw A bytes. Blocks decompress on
        /// every core (on xz images this is a tenth of a best apply); consecutive slices of one block share
        /// its decompression.
        /// </summary>
        private ReadOnlySpan<byte> BuildReference(List<ReferenceItem> items, string where)
        {
            var referenceLength = items.Sum(i => i.Length);
            ScratchBuffer.Ensure(ref _reference, referenceLength, DeltaFormat.MaxReferenceLength);
            var runs = new List<(int First, int Count, int Position)>();
            var position = 0;
            for (var i = 0; i < items.Count; i++)
            {
                if (!items[i].IsRaw && _oldImage is null)
                {
                    throw DeltaException.Corrupted($"{where} refers to base blocks, but the delta is generic.");
                }

                if (i > 0 && !items[i].IsRaw && !items[i - 1].IsRaw && items[i].Offset == items[i - 1].Offset)
                {
                    runs[^1] = (runs[^1].First, runs[^1].Count + 1, runs[^1].Position);
                }
                else
                {
                    runs.Add((i, 1, position));
                }

                position += items[i].Length;
            }

            var reference = _reference;
            var blockSize = _oldImage?.BlockSize ?? 0;
            ParallelWork.Run(() => Parallel.For(
                0,
                runs.Count,
                new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, _options.MaxParallelism) },
                () => blockSize == 0 ? [] : ArrayPool<byte>.Shared.Rent(blockSize),
                (r, _, decoded) =>
                {
                    var (first, count, at) = runs[r];
                    var item = items[first];
                    if (item.IsRaw)
                    {
                        _base.ReadAt(item.Offset, reference.AsSpan(at, item.Length));
                        return decoded;
                    }

                    var decodedLength = _oldImage!.ReadBlockData(item.Offset, item.StoredSize, item.Compressed, decoded.AsSpan(0, blockSize), "base block");
                    for (var i = first; i < first + count; i++)
                    {
                        var slice = items[i];
                        var destination = reference.AsSpan(at, slice.Length);
                        var available = Math.Min(slice.Length, Math.Max(0, decodedLength - slice.Start));
                        decoded.AsSpan(slice.Start, available).CopyTo(destination);
                        destination[available..].Clear();
                        at += slice.Length;
                    }

                    return decoded;
                },
                decoded => ArrayPool<byte>.Shared.Return(decoded)));
            return _reference.AsSpan(0, referenceLength);
        }

        private readonly record struct Op(OpCode Code, long A, long Length, int PayloadStart, BlockFlags Flags, uint Check, int ContentStart);

        /// <summary>A decoded content frame waiting for the ops section that uses it: where it lies in the content buffer.</summary>
        private readonly record struct PendingFrame(int Start, int Length);

        /// <summary>
        /// Ops held before they run: a section of 8 MiB can say millions of tiny ops, and holding them all would
        /// take hundreds of MiB. Every op is still checked before any of its batch runs.
        /// </summary>
        private const int OpsPerBatch = 1 << 14;

        public void RunOps(ReadOnlyMemory<byte> payload, long sectionOffset, CancellationToken cancellationToken)
        {
            var where = $"ops section at delta offset {sectionOffset}";
            var ops = new List<Op>(Math.Min(OpsPerBatch, 1 << 10));
            var reader = new ByteReader(payload.Span, where);
            long lastCopyEnd = 0;
            Span<int> used = stackalloc int[DeltaFormat.MaxFrames];
            var allowedFlags = BlockFlags.Uncompressed | BlockFlags.Fragment | (_header.Version == 1 ? BlockFlags.None : BlockFlags.FrameMask);
            long produced = 0;
            var blockJobs = new List<int>();
            while (!reader.AtEnd)
            {
                var code = (OpCode)reader.U8();
                switch (code)
                {
                    case OpCode.Copy:
                        var a = lastCopyEnd + reader.VarS();
                        var length = reader.VarLong(_header.TargetSize, "copy length");
                        if (a < 0 || a > _header.BaseSize - length)
                        {
                            throw DeltaException.OutOfBounds($"{where}: copy of {length} bytes from base offset {a} lies outside the base image ({_header.BaseSize} bytes).");
                        }

                        lastCopyEnd = a + length;
                        ops.Add(new Op(code, a, length, 0, 0, 0, 0));
                        produced += length;
                        break;
                    case OpCode.Literal:
                        var literalLength = reader.VarInt(DeltaFormat.MaxSectionLength, "literal length");
                        ops.Add(new Op(code, 0, literalLength, reader.Position, 0, 0, 0));
                        reader.Bytes(literalLength);
                        produced += literalLength;
                        break;
                    case OpCode.Zeros:
                        var zeros = reader.VarLong(_header.TargetSize, "zero run length");
                        ops.Add(new Op(code, 0, zeros, 0, 0, 0, 0));
                        produced += zeros;
                        break;
                    case OpCode.XorBase:
                        var xorBase = reader.VarLong(_header.BaseSize, "xor base offset");
                        var xorLength = reader.VarInt(DeltaFormat.MaxSectionLength, "xor length");
                        if (xorBase > _header.BaseSize - xorLength)
                        {
                            throw DeltaException.OutOfBounds($"{where}: xor of {xorLength} bytes at base offset {xorBase} lies outside the base image ({_header.BaseSize} bytes).");
                        }

                        ops.Add(new Op(code, xorBase, xorLength, reader.Position, 0, 0, 0));
                        reader.Bytes(xorLength);
                        produced += xorLength;
                        break;
                    case OpCode.Block:
                        var flags = (BlockFlags)reader.U8();
                        var contentLength = reader.VarInt(DeltaFormat.MaxContentLength, "block content length");
                        var storedLength = reader.VarInt(DeltaFormat.MaxContentLength, "block stored length");
                        var check = reader.U32();
                        if ((flags & ~allowedFlags) != 0)
                        {
                            throw DeltaException.Corrupted($"{where}: block flags 0x{(byte)flags:x} are unknown.");
                        }

                        var frameIndex = (int)(flags & BlockFlags.FrameMask) >> 4;
                        if (frameIndex >= _frames.Count)
                        {
                            throw DeltaException.OutOfBounds($"{where}: a block takes content from frame {frameIndex}; {_frames.Count} content frame(s) are pending.");
                        }

                        var pending = _frames[frameIndex];
                        if (contentLength > pending.Length - used[frameIndex])
                        {
                            throw DeltaException.OutOfBounds($"{where}: a block takes {contentLength} content bytes at offset {used[frameIndex]} of frame {frameIndex}; the frame has {pending.Length}.");
                        }

                        var contentStart = pending.Start + used[frameIndex];

                        var uncompressed = (flags & BlockFlags.Uncompressed) != 0;
                        if (uncompressed ? storedLength != contentLength : (storedLength >= contentLength || contentLength > _header.BlockSize))
                        {
                            throw DeltaException.Corrupted($"{where}: block of {contentLength} content bytes claims {storedLength} stored bytes ({(uncompressed ? "uncompressed" : "compressed")}, block size {_header.BlockSize}).");
                        }

                        if (!uncompressed)
                        {
                            blockJobs.Add(ops.Count);
                        }

                        ops.Add(new Op(code, contentLength, storedLength, 0, flags, check, contentStart));
                        used[frameIndex] += contentLength;
                        produced += storedLength;
                        break;
                    default:
                        throw DeltaException.Corrupted($"{where}: op code {(byte)code} at offset {reader.Position - 1} is unknown (1-5).");
                }

                if (produced > _header.TargetSize - Position)
                {
                    throw DeltaException.OutOfBounds($"{where}: the operations write past the new image's size {_header.TargetSize}.");
                }

                if (ops.Count == OpsPerBatch)
                {
                    RunBatch(ops, blockJobs, payload.Span, where, cancellationToken);
                    produced = 0;
                }
            }

            for (var f = 0; f < _frames.Count; f++)
            {
                if (used[f] != _frames[f].Length)
                {
                    throw DeltaException.Corrupted($"{where}: {_frames[f].Length - used[f]} bytes of content frame {f} are left unused at the end of the section.");
                }
            }

            RunBatch(ops, blockJobs, payload.Span, where, cancellationToken);
            _frames.Clear();
            _contentEnd = 0;
        }

        /// <summary>Runs checked ops in order, their compressed blocks first on every core; empties both lists.</summary>
        private void RunBatch(List<Op> ops, List<int> blockJobs, ReadOnlySpan<byte> span, string where, CancellationToken cancellationToken)
        {
            CompressBlocks(ops, blockJobs, where, cancellationToken);
            foreach (var op in ops)
            {
                switch (op.Code)
                {
                    case OpCode.Copy:
                        AppendInPlace(op.Length, op.A);
                        break;
                    case OpCode.Literal:
                        Write(span.Slice(op.PayloadStart, (int)op.Length));
                        break;
                    case OpCode.Zeros:
                        AppendInPlace(op.Length, null);
                        break;
                    case OpCode.XorBase:
                        AppendInPlace(op.Length, op.A, span.Slice(op.PayloadStart, (int)op.Length));
                        break;
                    case OpCode.Block:
                        // Compressed blocks were compressed in place: their stored bytes start where their content did.
                        var stored = _content.AsSpan(op.ContentStart, (int)op.Length);

                        if (OpsBuilder.BlockCheck(stored) != op.Check)
                        {
                            throw new DeltaException(DeltaErrorCategory.CodecMismatch, $"{where}: the block rebuilt at new-image offset {Position} ({stored.Length} bytes) does not match the generator's (check {OpsBuilder.BlockCheck(stored):x8}, expected {op.Check:x8}); the codec {_header.CodecIdentity} does not reproduce it here.");
                        }

                        Write(stored);
                        break;
                }
            }

            ops.Clear();
            blockJobs.Clear();
        }

        /// <summary>
        /// Compresses the blocks of one ops section on every core. Each result replaces the block's content
        /// in place (a compressed block is shorter than its content, and no other block reads that slot).
        /// </summary>
        private void CompressBlocks(List<Op> ops, List<int> jobs, string where, CancellationToken cancellationToken)
        {
            if (jobs.Count == 0)
            {
                return;
            }

            if (_compressorOptions is null)
            {
                throw new DeltaException(DeltaErrorCategory.CodecMismatch, $"{where}: a block needs recompression but the delta's header names no codec.");
            }

            ParallelWork.Run(() => Parallel.For(0, jobs.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, _options.MaxParallelism), CancellationToken = cancellationToken }, i =>
            {
                var op = ops[jobs[i]];
                var contentLength = (int)op.A;
                if (!_workers.TryTake(out var worker))
                {
                    worker = (SquashFsCodec.Create(_compressorOptions, _header.BlockSize, CodecRole.Data), new byte[_header.BlockSize]);
                }

                try
                {
                    if (!worker.Codec.TryCompress(_content.AsSpan(op.ContentStart, contentLength), worker.Scratch, out var written) || written != op.Length)
                    {
                        throw new DeltaException(DeltaErrorCategory.CodecMismatch, $"{where}: a block of {contentLength} bytes compresses to {written} bytes with {worker.Codec.Identity}; the generator's gave {op.Length}.");
                    }

                    worker.Scratch.AsSpan(0, written).CopyTo(_content.AsSpan(op.ContentStart));
                }
                finally
                {
                    _workers.Add(worker);
                }
            }));
        }

        public void RunMetadata(ReadOnlySpan<byte> payload, long sectionOffset)
        {
            if (_oldImage is null)
            {
                throw DeltaException.Corrupted($"Metadata section at delta offset {sectionOffset} in a generic delta.");
            }

            if (_frames.Count > 0)
            {
                throw DeltaException.Corrupted($"Metadata section at delta offset {sectionOffset}: content is left unused before it.");
            }

            // A region that would not fit is decoded in turn, which says where it overflows.
            if (TakeMetadataAhead(payload, sectionOffset) is { } region && region.Position <= _header.TargetSize - Position)
            {
                region.WriteTo(this);
                MetadataDecodedAhead = true;
                return;
            }

            MetadataSection.Decode(payload, sectionOffset, _header.Version, _oldImage, _metadataCodecs, Math.Max(1, _options.MaxParallelism), this);
        }

        /// <summary>Starts decoding the metadata section, found ahead in the delta, into a buffer on the thread pool.</summary>
        public void DecodeMetadataAhead(Section section)
        {
            if (_oldImage is not { } oldImage || _metadataAhead is not null)
            {
                return;
            }

            var codecs = _metadataCodecs;
            var version = _header.Version;
            var parallelism = Math.Max(1, _options.MaxParallelism);
            var limit = _options.MetadataAheadLimit;
            _metadataAheadSection = section;
            // On the pool, after the base hash when one runs beside the writes: on two cores the writes keep one
            // core to themselves and the other hashes A, then recompresses (started at once beside the hash it
            // slowed the writes: B to C took 9 to 32 % longer; on a thread of its own, 10 to 20 % longer on gzip
            // and zstd). A base that failed its check gets no early decode: the section is decoded in its turn,
            // and the apply fails on the base.
            _metadataAhead = _baseCheck.ContinueWith(
                check =>
                {
                    if (!check.IsCompletedSuccessfully)
                    {
                        return null;
                    }

                    var region = new MetadataRegionBuffer(limit);
                    MetadataSection.Decode(section.Payload.AsSpan(0, section.Length), section.DeltaOffset, version, oldImage, codecs, parallelism, region);
                    return region;
                },
                CancellationToken.None,
                TaskContinuationOptions.None,
                TaskScheduler.Default);
        }

        /// <summary>
        /// The region decoded ahead, when it was decoded from this very section and succeeded; otherwise null,
        /// and the section is decoded in place, which reports any error where it belongs.
        /// </summary>
        private MetadataRegionBuffer? TakeMetadataAhead(ReadOnlySpan<byte> payload, long sectionOffset)
        {
            if (_metadataAhead is not { } task || _metadataAheadSection is not { } section
                || section.DeltaOffset != sectionOffset || !payload.SequenceEqual(section.Payload.AsSpan(0, section.Length)))
            {
                return null;
            }

            try
            {
                return task.GetAwaiter().GetResult();
            }
            catch (Exception e) when (IsRefusal(e) || e is MetadataRegionBuffer.RegionTooLargeException)
            {
                return null;
            }
        }

        public void Finish(ReadOnlySpan<byte> payload, long sectionOffset)
        {
            var reader = new ByteReader(payload, $"end section at delta offset {sectionOffset}");
            var size = reader.U64();
            if (!reader.AtEnd || size != (ulong)_header.TargetSize)
            {
                throw DeltaException.Corrupted($"End section at delta offset {sectionOffset}: size {size}, the header says {_header.TargetSize}.");
            }

            if (_frames.Count > 0)
            {
                throw DeltaException.Corrupted($"End section at delta offset {sectionOffset}: {_contentEnd} content bytes were never used.");
            }

            FlushBuffer();

            // With the base hashed beside the writes, never success on a wrong base: the hash must be done and right.
            _baseCheck.GetAwaiter().GetResult();
            if (_position != _header.TargetSize)
            {
                throw DeltaException.Truncated($"The delta ends after {_position} bytes of the new image; it has {_header.TargetSize}.");
            }

            var actual = _hash.GetHashAndReset();
            if (!actual.AsSpan().SequenceEqual(_header.TargetSha256))
            {
                throw new DeltaException(DeltaErrorCategory.VerificationFailed, $"The rebuilt image's SHA-256 is {Convert.ToHexStringLower(actual)}; the delta promises {Convert.ToHexStringLower(_header.TargetSha256)}.");
            }

            _output.SetLength(_header.TargetSize);
            _output.Flush();
            _options.Progress?.Report(new DeltaApplyProgress(_position, _header.TargetSize));
        }

        public void MaybeCheckpoint(long deltaOffset)
        {
            _options.Progress?.Report(new DeltaApplyProgress(Position, _header.TargetSize));
            if (_options.CheckpointPath is null || _frames.Count > 0 || Position - _lastCheckpoint < _options.CheckpointInterval)
            {
                return;
            }

            FlushBuffer();
            _output.Flush();
            new Checkpoint(_header.BaseSha256, _header.TargetSha256, _headerHash, deltaOffset, _position).Save(_options.CheckpointPath);
            _lastCheckpoint = _position;
        }

        public void WritePosition(long position)
        {
            Span<byte> value = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(value, (ulong)position);
            Write(value);
        }

        public void Dispose()
        {
            // The decode ahead uses the codecs and the base image disposed below.
            if (_metadataAhead is { IsCompleted: false } ahead)
            {
                ((IAsyncResult)ahead).AsyncWaitHandle.WaitOne();
            }

            _hash.Dispose();
            _zstd.Dispose();
            _metadataCodecs?.Dispose();
            while (_workers.TryTake(out var worker))
            {
                worker.Codec.Dispose();
            }

            _oldImage?.Dispose();
        }
    }
}
