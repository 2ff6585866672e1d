using System.Buffers;
using System.Buffers.Binary;
using EdgeUpdater.SquashFs.Compression;

namespace EdgeUpdater.SquashFs.Metadata;

/// <summary>
/// Builds a metadata table in memory: bytes are cut into 8 KiB blocks, each compressed (or stored when
/// compression does not shrink it) behind a 2-byte header. Positions are (block start relative to the
/// table, offset in the uncompressed block), as inode and directory references need.
/// </summary>
public sealed class MetadataWriter
{
    private readonly SquashFsCodec? _codec;
    private readonly System.Buffers.ArrayBufferWriter<byte> _output = new();
    private readonly byte[] _block = new byte[SquashFsCodec.MetadataBlockSize];
    private readonly byte[] _compressed = new byte[SquashFsCodec.MetadataBlockSize];
    private readonly List<MetadataBlockInfo> _blocks = [];
    private int _used;
    private long _totalUncompressed;

    /// <summary>Creates a writer; <paramref name="codec"/> null stores every block uncompressed.</summary>
    public MetadataWriter(SquashFsCodec? codec)
    {
        _codec = codec;
    }

    /// <summary>Start of the block the next byte goes into, relative to the table start.</summary>
    public long BlockStart => _output.WrittenCount;

    /// <summary>Offset in that block of the next byte.</summary>
    public int Offset => _used;

    /// <summary>Uncompressed bytes written so far.</summary>
    public long UncompressedLength => _totalUncompressed;

    /// <summary>The blocks written so far (offsets relative to the table start).</summary>
    public IReadOnlyList<MetadataBlockInfo> Blocks => _blocks;

    /// <summary>Appends bytes.</summary>
    public void Write(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            var n = Math.Min(data.Length, _block.Length - _used);
            data[..n].CopyTo(_block.AsSpan(_used));
            _used += n;
            _totalUncompressed += n;
            data = data[n..];
            if (_used == _block.Length)
            {
                FlushBlock();
            }
        }
    }

    /// <summary>Appends a little-endian 16-bit value.</summary>
    public void WriteUInt16(ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, value);
        Write(b);
    }

    /// <summary>Appends a little-endian 32-bit value.</summary>
    public void WriteUInt32(uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        Write(b);
    }

    /// <summary>Appends a little-endian 64-bit value.</summary>
    public void WriteUInt64(ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        Write(b);
    }

    /// <summary>Flushes the last partial block and returns the table bytes.</summary>
    public byte[] Finish()
    {
        if (_used > 0)
        {
            FlushBlock();
        }

        return _output.WrittenSpan.ToArray();
    }

    private void FlushBlock()
    {
        var offset = _output.WrittenCount;
        Span<byte> header = stackalloc byte[2];
        if (_codec is not null && _codec.TryCompress(_block.AsSpan(0, _used), _compressed, out var written))
        {
            BinaryPrimitives.WriteUInt16LittleEndian(header, (ushort)written);
            _output.Write((ReadOnlySpan<byte>)header);
            _output.Write(_compressed.AsSpan(0, written));
            _blocks.Add(new MetadataBlockInfo(offset, written, true, _used));
        }
        else
        {
            BinaryPrimitives.WriteUInt16LittleEndian(header, (ushort)(_used | 0x8000));
            _output.Write((ReadOnlySpan<byte>)header);
            _output.Write(_block.AsSpan(0, _used));
            _blocks.Add(new MetadataBlockInfo(offset, _used, false, _used));
        }

        _used = 0;
    }
}
