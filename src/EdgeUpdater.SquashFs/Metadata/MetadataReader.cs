using System.Buffers.Binary;
using EdgeUpdater.SquashFs.Compression;
using EdgeUpdater.SquashFs.IO;

namespace EdgeUpdater.SquashFs.Metadata;

/// <summary>
/// Reads and decompresses metadata blocks, with a small cache. Thread-safe. Every block is bounds-checked
/// against the image and against the limit of the table it belongs to.
/// </summary>
internal sealed class MetadataReader
{
    private readonly IImageSource _source;
    private readonly CodecPool _codecs;
    private readonly long _imageEnd;
    private readonly ReadBudget _budget;
    private readonly Reader.LruCache<long, DecodedBlock> _cache;

    public MetadataReader(IImageSource source, CodecPool codecs, long imageEnd, ReadBudget budget, int cacheCapacity)
    {
        _source = source;
        _codecs = codecs;
        _imageEnd = imageEnd;
        _budget = budget;
        _cache = new Reader.LruCache<long, DecodedBlock>(Math.Max(4, cacheCapacity));
    }

    /// <summary>Reads the block whose header is at <paramref name="offset"/>; it must end at or before <paramref name="limit"/>.</summary>
    public DecodedBlock ReadBlock(long offset, long limit, string table)
    {
        if (_cache.TryGet(offset, out var cached))
        {
            if (cached.Info.End > limit)
            {
                throw SquashFsException.OutOfBounds($"{table}: metadata block at offset {offset} ends at {cached.Info.End}, past the table end {limit}.");
            }

            return cached;
        }

        var block = Decode(offset, Math.Min(limit, _imageEnd), table);
        _cache.Add(offset, block);
        return block;
    }

    private DecodedBlock Decode(long offset, long limit, string table)
    {
        if (offset < 0 || offset > limit - 2)
        {
            throw SquashFsException.OutOfBounds($"{table}: metadata block header at offset {offset} is outside the table (which ends at {limit}).");
        }

        Span<byte> header = stackalloc byte[2];
        _source.ReadAt(offset, header);
        var word = BinaryPrimitives.ReadUInt16LittleEndian(header);
        var compressed = (word & 0x8000) == 0;
        var size = word & 0x7FFF;
        if (size == 0 || size > SquashFsCodec.MetadataBlockSize)
        {
            throw SquashFsException.Corrupted($"{table}: metadata block at offset {offset} has stored size {size}; expected 1 to {SquashFsCodec.MetadataBlockSize}.");
        }

        if (offset + 2 + size > limit)
        {
            throw SquashFsException.OutOfBounds($"{table}: metadata block at offset {offset} with {size} bytes ends past the table end {limit}.");
        }

        _budget.ChargeMetadata(SquashFsCodec.MetadataBlockSize, offset);
        var payload = new byte[size];
        _source.ReadAt(offset + 2, payload);
        byte[] data;
        int length;
        if (compressed)
        {
            data = new byte[SquashFsCodec.MetadataBlockSize];
            var codec = _codecs.Rent();
            try
            {
                length = codec.Decompress(payload, data);
            }
            catch (SquashFsException e) when (e.Category == SquashFsErrorCategory.Corrupted)
            {
                throw SquashFsException.Corrupted($"{table}: metadata block at offset {offset}: {e.Message}");
            }
            finally
            {
                _codecs.Return(codec);
            }
        }
        else
        {
            data = payload;
            length = size;
        }

        return new DecodedBlock(new MetadataBlockInfo(offset, size, compressed, length), data);
    }
}

/// <summary>A decompressed metadata block.</summary>
internal sealed record DecodedBlock(MetadataBlockInfo Info, byte[] Data)
{
    public int Length => Info.UncompressedSize;

    public long Next => Info.End;
}

/// <summary>
/// Reads a byte stream that runs across consecutive metadata blocks of one table, from a
/// (block, offset) position, never past the table's limit.
/// </summary>
internal sealed class MetadataCursor : IByteCursor
{
    private readonly MetadataReader _reader;
    private readonly long _tableStart;
    private readonly long _limit;
    private readonly string _table;
    private DecodedBlock _block;
    private int _position;

    public MetadataCursor(MetadataReader reader, long tableStart, long limit, long relativeBlock, int offset, string table)
    {
        _reader = reader;
        _tableStart = tableStart;
        _limit = limit;
        _table = table;
        if (relativeBlock < 0 || relativeBlock > limit - tableStart)
        {
            throw SquashFsException.OutOfBounds($"{table}: block start {relativeBlock} is outside the table ({limit - tableStart} bytes).");
        }

        _block = reader.ReadBlock(tableStart + relativeBlock, limit, table);
        if (offset < 0 || offset > _block.Length)
        {
            throw SquashFsException.OutOfBounds($"{table}: offset {offset} is outside the metadata block at {tableStart + relativeBlock} ({_block.Length} bytes).");
        }

        _position = offset;
    }

    /// <summary>Block start of the current position relative to the table start.</summary>
    public long RelativeBlock => _block.Info.Offset - _tableStart;

    /// <summary>Offset in the current block.</summary>
    public int Offset => _position;

    public void Read(Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            if (_position == _block.Length)
            {
                Advance();
            }

            var n = Math.Min(destination.Length, _block.Length - _position);
            _block.Data.AsSpan(_position, n).CopyTo(destination);
            _position += n;
            destination = destination[n..];
        }
    }

    public void Skip(long count)
    {
        while (count > 0)
        {
            if (_position == _block.Length)
            {
                Advance();
            }

            var n = (int)Math.Min(count, _block.Length - _position);
            _position += n;
            count -= n;
        }
    }

    /// <summary>Moves the position to the start of the next block when the current one is used up (so RelativeBlock/Offset name where the next read starts).</summary>
    public void Normalize()
    {
        if (_position == _block.Length && _block.Next < _limit)
        {
            Advance();
        }
    }

    private void Advance()
    {
        var next = _block.Next;
        if (next >= _limit)
        {
            throw SquashFsException.OutOfBounds($"{_table}: data runs past the end of the table at offset {_limit}.");
        }

        _block = _reader.ReadBlock(next, _limit, _table);
        _position = 0;
    }
}

/// <summary>Per-open limits that keep hostile images from hanging or exhausting memory.</summary>
internal sealed class ReadBudget
{
    private readonly long _maxMetadataBytes;
    private long _metadataBytes;

    public ReadBudget(long maxMetadataBytes)
    {
        _maxMetadataBytes = maxMetadataBytes;
    }

    public void ChargeMetadata(long bytes, long offset)
    {
        if (Interlocked.Add(ref _metadataBytes, bytes) > _maxMetadataBytes)
        {
            throw new SquashFsException(SquashFsErrorCategory.BudgetExceeded, $"Decompressed more than {_maxMetadataBytes} bytes of metadata (at block {offset}); raise SquashFsReaderOptions.MaxMetadataBytes if the image is genuine.");
        }
    }
}

/// <summary>A pool of decompression codecs so that concurrent readers do not share native state.</summary>
internal sealed class CodecPool : IDisposable
{
    private readonly Func<SquashFsCodec> _factory;
    private readonly System.Collections.Concurrent.ConcurrentBag<SquashFsCodec> _idle = [];

    public CodecPool(Func<SquashFsCodec> factory)
    {
        _factory = factory;
    }

    public SquashFsCodec Rent() => _idle.TryTake(out var codec) ? codec : _factory();

    public void Return(SquashFsCodec codec)
    {
        if (_idle.Count < 8)
        {
            _idle.Add(codec);
        }
        else
        {
            codec.Dispose();
        }
    }

    public void Dispose()
    {
        while (_idle.TryTake(out var codec))
        {
            codec.Dispose();
        }
    }
}

/// <summary>Sequential little-endian reads, from metadata blocks or from a decompressed table.</summary>
internal interface IByteCursor
{
    void Read(Span<byte> destination);
}

/// <summary>The little-endian integers of the SquashFS tables, read from any <see cref="IByteCursor"/>.</summary>
internal static class ByteCursorReads
{
    public static ushort ReadUInt16(this IByteCursor cursor)
    {
        Span<byte> b = stackalloc byte[2];
        cursor.Read(b);
        return BinaryPrimitives.ReadUInt16LittleEndian(b);
    }

    public static uint ReadUInt32(this IByteCursor cursor)
    {
        Span<byte> b = stackalloc byte[4];
        cursor.Read(b);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    public static ulong ReadUInt64(this IByteCursor cursor)
    {
        Span<byte> b = stackalloc byte[8];
        cursor.Read(b);
        return BinaryPrimitives.ReadUInt64LittleEndian(b);
    }
}

/// <summary>Reads from an in-memory decompressed table.</summary>
internal sealed class ArrayCursorSource : IByteCursor
{
    private readonly byte[] _data;

    public ArrayCursorSource(byte[] data)
    {
        _data = data;
    }

    public long Position { get; set; }

    public void Read(Span<byte> destination)
    {
        if (Position < 0 || Position > _data.Length - destination.Length)
        {
            throw SquashFsException.OutOfBounds($"Reading {destination.Length} bytes at table offset {Position} runs past the table end ({_data.Length} bytes).");
        }

        _data.AsSpan((int)Position, destination.Length).CopyTo(destination);
        Position += destination.Length;
    }
}
