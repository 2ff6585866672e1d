using System.IO.Hashing;
using EdgeUpdater.Delta.Format;

namespace EdgeUpdater.Delta.Generation;

/// <summary>
/// Accumulates operations for one ops section, merging adjacent copies; keeps the running statistics.
/// </summary>
internal sealed class OpsBuilder
{
    private readonly ByteWriter _ops = new(1 << 16);
    private readonly DeltaStatistics _stats;
    private long _pendingCopyBase = -1;
    private long _pendingCopyLength;
    private long _lastCopyEnd;

    public OpsBuilder(DeltaStatistics stats, long lastCopyEnd)
    {
        _stats = stats;
        _lastCopyEnd = lastCopyEnd;
    }

    /// <summary>End of the last copy written, the base of the next copy's relative offset.</summary>
    public long LastCopyEnd => _lastCopyEnd;

    public int Length => _ops.Length + (_pendingCopyBase >= 0 ? 20 : 0);

    public bool IsEmpty => _ops.Length == 0 && _pendingCopyBase < 0;

    public void Copy(long baseOffset, long length)
    {
        if (length == 0)
        {
            return;
        }

        _stats.CopiedBytes += length;
        if (_pendingCopyBase >= 0 && _pendingCopyBase + _pendingCopyLength == baseOffset)
        {
            _pendingCopyLength += length;
            return;
        }

        FlushCopy();
        _pendingCopyBase = baseOffset;
        _pendingCopyLength = length;
    }

    public void Literal(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty)
        {
            return;
        }

        FlushCopy();
        _stats.LiteralBytes += bytes.Length;
        _ops.U8((byte)OpCode.Literal);
        _ops.Blob(bytes);
    }

    public void Zeros(long length)
    {
        if (length == 0)
        {
            return;
        }

        FlushCopy();
        _stats.ZeroBytes += length;
        _ops.U8((byte)OpCode.Zeros);
        _ops.VarU((ulong)length);
    }

    public void XorBase(long baseOffset, ReadOnlySpan<byte> xor)
    {
        FlushCopy();
        _stats.LiteralBytes += xor.Length;
        _ops.U8((byte)OpCode.XorBase);
        _ops.VarU((ulong)baseOffset);
        _ops.Blob(xor);
    }

    /// <summary>A block rebuilt from <paramref name="contentLength"/> content bytes; <paramref name="stored"/> is what it must become.</summary>
    public void Block(BlockFlags flags, int contentLength, ReadOnlySpan<byte> stored)
    {
        FlushCopy();
        _stats.RecompressedBlocks += (flags & BlockFlags.Uncompressed) == 0 ? 1 : 0;
        _stats.RebuiltBytes += stored.Length;
        _ops.U8((byte)OpCode.Block);
        _ops.U8((byte)flags);
        _ops.VarU((ulong)contentLength);
        _ops.VarU((ulong)stored.Length);
        _ops.U32(BlockCheck(stored));
    }

    /// <summary>The ops written so far as a section payload; resets the builder.</summary>
    public byte[] Take()
    {
        FlushCopy();
        var bytes = _ops.ToArray();
        _ops.Clear();
        return bytes;
    }

    public static uint BlockCheck(ReadOnlySpan<byte> stored) => (uint)XxHash3.HashToUInt64(stored);

    private void FlushCopy()
    {
        if (_pendingCopyBase < 0)
        {
            return;
        }

        _ops.U8((byte)OpCode.Copy);
        _ops.VarS(_pendingCopyBase - _lastCopyEnd);
        _ops.VarU((ulong)_pendingCopyLength);
        _lastCopyEnd = _pendingCopyBase + _pendingCopyLength;
        _pendingCopyBase = -1;
        _pendingCopyLength = 0;
    }
}
