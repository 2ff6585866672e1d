using System.IO.Hashing;
using EdgeUpdater.Delta.Format;

namespace EdgeUpdater.Delta.Generation;

/// <summary>
/// Accumulates operations for one ops section, merging adjacent copies; keeps the running statistics.
/// </summary>
internal sealed class OpsBuilder
{
    private readonly ByteWriter _ops;
    private readonly DeltaStatistics _stats;
    private long _pendingCopyBase = -1;
    private long _pendingCopyLength;
    private long _lastCopyEnd;

    /// <param name="stats">Statistics the operations are counted in.</param>
    /// <param name="buffer">Where the operations are written, from its current end (an encoder reuses one).</param>
    public OpsBuilder(DeltaStatistics stats, ByteWriter buffer)
    {
        _stats = stats;
        _ops = buffer;
    }

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

    /// <summary>The ops written so far as a section payload, in the buffer given (valid until it is reused).</summary>
    public ReadOnlySpan<byte> Finish()
    {
        FlushCopy();
        return _ops.WrittenSpan;
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
