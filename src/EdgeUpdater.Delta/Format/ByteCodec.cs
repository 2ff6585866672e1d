using System.Buffers;
using System.Buffers.Binary;

namespace EdgeUpdater.Delta.Format;

/// <summary>Appends little-endian integers, LEB128 varints and bytes to a growing buffer.</summary>
internal sealed class ByteWriter
{
    private readonly ArrayBufferWriter<byte> _buffer;

    public ByteWriter(int initialCapacity = 256)
    {
        _buffer = new ArrayBufferWriter<byte>(Math.Max(16, initialCapacity));
    }

    public int Length => _buffer.WrittenCount;

    public ReadOnlySpan<byte> WrittenSpan => _buffer.WrittenSpan;

    public ReadOnlyMemory<byte> WrittenMemory => _buffer.WrittenMemory;

    /// <summary>Empties the writer and keeps its buffer (not zeroed: everything is written before it is read).</summary>
    public void Clear() => _buffer.ResetWrittenCount();

    public void U8(byte value)
    {
        _buffer.GetSpan(1)[0] = value;
        _buffer.Advance(1);
    }

    public void U16(ushort value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer.GetSpan(2), value);
        _buffer.Advance(2);
    }

    public void U32(uint value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer.GetSpan(4), value);
        _buffer.Advance(4);
    }

    public void U64(ulong value)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(_buffer.GetSpan(8), value);
        _buffer.Advance(8);
    }

    /// <summary>Unsigned LEB128.</summary>
    public void VarU(ulong value)
    {
        var span = _buffer.GetSpan(10);
        var i = 0;
        while (value >= 0x80)
        {
            span[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        span[i++] = (byte)value;
        _buffer.Advance(i);
    }

    /// <summary>Signed value, zigzag-encoded then LEB128.</summary>
    public void VarS(long value) => VarU((ulong)((value << 1) ^ (value >> 63)));

    public void Bytes(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(_buffer.GetSpan(bytes.Length));
        _buffer.Advance(bytes.Length);
    }

    /// <summary>A length-prefixed byte string.</summary>
    public void Blob(ReadOnlySpan<byte> bytes)
    {
        VarU((ulong)bytes.Length);
        Bytes(bytes);
    }

    public byte[] ToArray() => _buffer.WrittenSpan.ToArray();
}

/// <summary>
/// Reads what <see cref="ByteWriter"/> wrote, bounds-checked before every read; errors name the
/// structure (<c>where</c>) and the offset inside it.
/// </summary>
internal ref struct ByteReader
{
    private readonly ReadOnlySpan<byte> _data;
    private readonly string _where;
    private int _position;

    public ByteReader(ReadOnlySpan<byte> data, string where)
    {
        _data = data;
        _where = where;
        _position = 0;
    }

    public readonly int Position => _position;

    public readonly int Remaining => _data.Length - _position;

    /// <summary>What is being read, for messages.</summary>
    public readonly string Where => _where;

    public readonly bool AtEnd => _position == _data.Length;

    public byte U8()
    {
        Need(1);
        return _data[_position++];
    }

    public ushort U16()
    {
        Need(2);
        var v = BinaryPrimitives.ReadUInt16LittleEndian(_data[_position..]);
        _position += 2;
        return v;
    }

    public uint U32()
    {
        Need(4);
        var v = BinaryPrimitives.ReadUInt32LittleEndian(_data[_position..]);
        _position += 4;
        return v;
    }

    public ulong U64()
    {
        Need(8);
        var v = BinaryPrimitives.ReadUInt64LittleEndian(_data[_position..]);
        _position += 8;
        return v;
    }

    public ulong VarU()
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            var b = U8();
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                if (shift == 63 && b > 1)
                {
                    break;
                }

                return value;
            }
        }

        throw DeltaException.Overflow($"{_where}: varint at offset {_position} does not fit 64 bits.");
    }

    public long VarS()
    {
        var raw = VarU();
        return (long)(raw >> 1) ^ -(long)(raw & 1);
    }

    /// <summary>A varint that must be at most <paramref name="max"/> (itself at most <see cref="int.MaxValue"/>); returned as int.</summary>
    public int VarInt(long max, string field)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(max, int.MaxValue);
        var value = VarU();
        if (value > (ulong)max)
        {
            throw DeltaException.Overflow($"{_where}: {field} is {value} at offset {_position}; at most {max} is allowed.");
        }

        return (int)value;
    }

    /// <summary>A varint that must be at most <paramref name="max"/>.</summary>
    public long VarLong(long max, string field)
    {
        var value = VarU();
        if (value > (ulong)max)
        {
            throw DeltaException.Overflow($"{_where}: {field} is {value} at offset {_position}; at most {max} is allowed.");
        }

        return (long)value;
    }

    public ReadOnlySpan<byte> Bytes(int count)
    {
        Need(count);
        var span = _data.Slice(_position, count);
        _position += count;
        return span;
    }

    public ReadOnlySpan<byte> Blob(int max, string field) => Bytes(VarInt(max, field + " length"));

    /// <summary>Skips a <see cref="Blob"/> and gives where it lies: for a parse that keeps positions, not copies.</summary>
    public Range BlobRange(int max, string field)
    {
        var length = VarInt(max, field + " length");
        var start = _position;
        Need(length);
        _position += length;
        return start..(start + length);
    }

    private readonly void Need(int count)
    {
        if (count < 0 || _data.Length - _position < count)
        {
            throw DeltaException.Corrupted($"{_where}: {count} bytes needed at offset {_position}, only {_data.Length - _position} left.");
        }
    }
}
