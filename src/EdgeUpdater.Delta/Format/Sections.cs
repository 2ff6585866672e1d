using System.Buffers.Binary;
using System.IO.Hashing;
using EdgeUpdater.Delta.Patching;

namespace EdgeUpdater.Delta.Format;

/// <summary>A decoded section.</summary>
internal sealed record Section(SectionKind Kind, byte[] Payload, int Length, long DeltaOffset, long StoredLength);

/// <summary>Writes sections: kind, encoding, lengths, checksum, payload (zstd-compressed when that is smaller).</summary>
internal sealed class SectionWriter : IDisposable
{
    private readonly Stream _output;
    private readonly ZstdPatcher _zstd = new();

    public SectionWriter(Stream output)
    {
        _output = output;
    }

    public long BytesWritten { get; private set; }

    /// <summary>Stored bytes per section kind (for statistics).</summary>
    public Dictionary<SectionKind, long> StoredByKind { get; } = [];

    public async Task WriteRawAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        await _output.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
        BytesWritten += bytes.Length;
    }

    /// <summary>Writes a section; <paramref name="compressionLevel"/> 0 stores it raw.</summary>
    public async Task WriteAsync(SectionKind kind, ReadOnlyMemory<byte> payload, int compressionLevel, CancellationToken cancellationToken)
    {
        var encoded = Encode(kind, payload.Span, compressionLevel);
        StoredByKind[kind] = StoredByKind.GetValueOrDefault(kind) + encoded.Length;
        await WriteRawAsync(encoded, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Encodes a section into one buffer (thread-safe when each thread has its own writer).</summary>
    public byte[] Encode(SectionKind kind, ReadOnlySpan<byte> payload, int compressionLevel)
    {
        if (payload.Length > DeltaFormat.MaxSectionLength)
        {
            throw new InvalidOperationException($"Section of {payload.Length} bytes exceeds {DeltaFormat.MaxSectionLength}.");
        }

        byte encoding = 0;
        ReadOnlySpan<byte> stored = payload;
        if (compressionLevel != 0 && payload.Length > 64)
        {
            var compressed = _zstd.Compress([], payload, compressionLevel, longDistance: false).Span;
            if (compressed.Length < payload.Length)
            {
                stored = compressed;
                encoding = 1;
            }
        }

        // Every byte is written below: skipping the runtime's zeroing saves a pass over MB-sized sections.
        var result = GC.AllocateUninitializedArray<byte>(DeltaFormat.SectionHeaderSize + stored.Length);
        result[0] = (byte)kind;
        result[1] = encoding;
        BinaryPrimitives.WriteUInt32LittleEndian(result.AsSpan(2), (uint)stored.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(result.AsSpan(6), (uint)payload.Length);
        stored.CopyTo(result.AsSpan(DeltaFormat.SectionHeaderSize));
        var hash = new XxHash3();
        hash.Append(result.AsSpan(0, 10));
        hash.Append(stored);
        BinaryPrimitives.WriteUInt64LittleEndian(result.AsSpan(10), hash.GetCurrentHashAsUInt64());
        return result;
    }

    public void Dispose() => _zstd.Dispose();
}

/// <summary>Finds a section further on in a seekable delta without disturbing its sequential reading.</summary>
internal static class SectionLocator
{
    /// <summary>
    /// Walks the section headers from the stream's position (delta offset <paramref name="offset"/>) to the
    /// first section of <paramref name="kind"/> and returns it decoded and checked, or null when an end
    /// section, anything malformed or the end of the stream comes first, or after
    /// <paramref name="maxSections"/> headers: the sequential pass reports what is wrong in its turn.
    /// The stream's position is restored.
    /// </summary>
    public static async Task<Section?> FindAsync(Stream delta, long offset, SectionKind kind, int maxSections, CancellationToken cancellationToken)
    {
        var origin = delta.Position;
        try
        {
            var header = new byte[DeltaFormat.SectionHeaderSize];
            var position = origin;
            for (var i = 0; i < maxSections; i++)
            {
                delta.Position = position;
                if (await delta.ReadAtLeastAsync(header, header.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false) < header.Length)
                {
                    return null;
                }

                var storedLength = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(2));
                if (header[0] == (byte)kind)
                {
                    delta.Position = position;
                    using var reader = new SectionReader(delta, offset + (position - origin));
                    var section = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                    return section with { Payload = section.Payload.AsSpan(0, section.Length).ToArray() };
                }

                if ((SectionKind)header[0] is not (SectionKind.Ops or SectionKind.Content) || storedLength > DeltaFormat.MaxSectionLength + 1024)
                {
                    return null;
                }

                position += DeltaFormat.SectionHeaderSize + storedLength;
            }

            return null;
        }
        catch (DeltaException)
        {
            return null;
        }
        finally
        {
            delta.Position = origin;
        }
    }
}

/// <summary>Reads sections sequentially, checking each before it is used.</summary>
internal sealed class SectionReader : IDisposable
{
    private readonly Stream _input;
    private readonly ZstdPatcher _zstd = new();
    private byte[] _stored = [];
    private byte[] _payload = [];

    public SectionReader(Stream input, long offset)
    {
        _input = input;
        Offset = offset;
    }

    /// <summary>Delta offset of the next section.</summary>
    public long Offset { get; private set; }

    public async Task<Section> ReadAsync(CancellationToken cancellationToken)
    {
        var start = Offset;
        var header = new byte[DeltaFormat.SectionHeaderSize];
        await StreamUtil.ReadExactAsync(_input, header, start, "section header", cancellationToken).ConfigureAwait(false);
        var kind = (SectionKind)header[0];
        var encoding = header[1];
        var storedLength = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(2));
        var rawLength = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(6));
        var checksum = BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(10));
        if (kind is not (SectionKind.Ops or SectionKind.Content or SectionKind.Metadata or SectionKind.End) || encoding > 1)
        {
            throw DeltaException.Corrupted($"Section at delta offset {start}: kind {(byte)kind} encoding {encoding}; expected kind 1, 2, 3 or 127 and encoding 0 or 1.");
        }

        if (rawLength > DeltaFormat.MaxSectionLength || storedLength > DeltaFormat.MaxSectionLength + 1024 || (encoding == 0 && storedLength != rawLength))
        {
            throw DeltaException.Overflow($"Section at delta offset {start}: stored {storedLength} bytes, raw {rawLength}; at most {DeltaFormat.MaxSectionLength} raw bytes are allowed and raw sections store exactly their length.");
        }

        ScratchBuffer.Ensure(ref _stored, storedLength, DeltaFormat.MaxSectionLength + 1024);

        var stored = _stored.AsMemory(0, (int)storedLength);
        await StreamUtil.ReadExactAsync(_input, stored, start + DeltaFormat.SectionHeaderSize, $"section at delta offset {start}", cancellationToken).ConfigureAwait(false);
        var hash = new XxHash3();
        hash.Append(header.AsSpan(0, 10));
        hash.Append(stored.Span);
        var actual = hash.GetCurrentHashAsUInt64();
        if (actual != checksum)
        {
            throw DeltaException.Corrupted($"Section at delta offset {start} ({kind}, {storedLength} bytes): checksum {actual:x16}, the section says {checksum:x16}.");
        }

        Offset = start + DeltaFormat.SectionHeaderSize + storedLength;
        byte[] payload;
        if (encoding == 0)
        {
            payload = _stored;
        }
        else
        {
            ScratchBuffer.Ensure(ref _payload, rawLength, DeltaFormat.MaxSectionLength);
            _zstd.Decode([], stored.Span, _payload.AsSpan(0, (int)rawLength), $"section at delta offset {start}");
            payload = _payload;
        }

        return new Section(kind, payload, (int)rawLength, start, DeltaFormat.SectionHeaderSize + storedLength);
    }

    public void Dispose() => _zstd.Dispose();
}
