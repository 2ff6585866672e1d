using EdgeUpdater.SquashFs.Format;

namespace EdgeUpdater.SquashFs.Reader;

/// <summary>A regular file of an image as a read-only seekable stream; one block is decoded at a time.</summary>
internal sealed class SquashFsFileStream : Stream
{
    private readonly SquashFsImage _image;
    private readonly Inode _inode;
    private readonly string _path;
    private readonly FileBlockMap _map;
    private byte[] _buffer;
    private readonly long _length;
    private long _bufferedBlock = -1;
    private int _bufferedLength;
    private long _position;

    public SquashFsFileStream(SquashFsImage image, Inode inode, string path)
    {
        _image = image;
        _inode = inode;
        _path = path;
        _map = image.GetFileBlocks(inode);
        _length = inode.FileSize <= long.MaxValue
            ? (long)inode.FileSize
            : throw SquashFsException.Overflow($"'{path}': file size {inode.FileSize} does not fit a stream.");
        _buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(image.BlockSize);
    }

    public override bool CanRead => true;

    public override bool CanSeek => true;

    public override bool CanWrite => false;

    public override long Length => _length;

    public override long Position
    {
        get => _position;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _position = value;
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_buffer.Length == 0, this);
        var total = 0;
        while (!buffer.IsEmpty && _position < _length)
        {
            var blockIndex = _position / _image.BlockSize;
            var inBlock = (int)(_position % _image.BlockSize);
            if (inBlock == 0 && blockIndex != _bufferedBlock && blockIndex < _map.Blocks.Count && TryReadBlockDirect(blockIndex, buffer, out var direct))
            {
                buffer = buffer[direct..];
                _position += direct;
                total += direct;
                continue;
            }

            LoadBlock(blockIndex);
            var n = Math.Min(buffer.Length, _bufferedLength - inBlock);
            if (n <= 0)
            {
                throw SquashFsException.Corrupted($"'{_path}': block {blockIndex} holds {_bufferedLength} bytes; data at offset {_position} expected.");
            }

            _buffer.AsSpan(inBlock, n).CopyTo(buffer);
            buffer = buffer[n..];
            _position += n;
            total += n;
        }

        return total;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(Read(buffer.Span));
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override long Seek(long offset, SeekOrigin origin)
    {
        var target = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => _length + offset,
        };
        Position = target;
        return target;
    }

    public override void Flush()
    {
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && _buffer.Length > 0)
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
            _bufferedBlock = -1;
        }

        base.Dispose(disposing);
    }

    public override void SetLength(long value) => throw new NotSupportedException("SquashFS files are read-only.");

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("SquashFS files are read-only.");

    /// <summary>Decompresses a whole block straight into the caller's buffer when it has room (no copy).</summary>
    private bool TryReadBlockDirect(long blockIndex, Span<byte> destination, out int read)
    {
        read = 0;
        var expected = (int)Math.Min(_image.BlockSize, _length - (blockIndex * _image.BlockSize));
        var block = _map.Blocks[(int)blockIndex];
        if (destination.Length < expected || block.IsSparse)
        {
            return false;
        }

        read = _image.ReadBlockData(block.Offset, block.StoredSize, block.IsCompressed, destination[..expected], $"'{_path}' block {blockIndex}");
        if (read != expected)
        {
            throw SquashFsException.Corrupted($"'{_path}': block {blockIndex} at offset {block.Offset} decompressed to {read} bytes; {expected} expected.");
        }

        return true;
    }

    private void LoadBlock(long blockIndex)
    {
        if (blockIndex == _bufferedBlock)
        {
            return;
        }

        var expected = (int)Math.Min(_image.BlockSize, _length - (blockIndex * _image.BlockSize));
        if (blockIndex < _map.Blocks.Count)
        {
            var block = _map.Blocks[(int)blockIndex];
            if (block.IsSparse)
            {
                Array.Clear(_buffer, 0, expected);
                _bufferedLength = expected;
            }
            else
            {
                _bufferedLength = _image.ReadBlockData(block.Offset, block.StoredSize, block.IsCompressed, _buffer, $"'{_path}' block {blockIndex}");
            }

            if (_bufferedLength < expected)
            {
                throw SquashFsException.Corrupted($"'{_path}': block {blockIndex} at offset {block.Offset} decompressed to {_bufferedLength} bytes; {expected} expected.");
            }
        }
        else if (_map.Fragment is { } fragment)
        {
            var data = _image.ReadFragmentBlock(fragment.Index, out var fragmentLength);
            if (fragment.OffsetInFragment + (long)fragment.Length > fragmentLength)
            {
                throw SquashFsException.OutOfBounds($"'{_path}': tail of {fragment.Length} bytes at offset {fragment.OffsetInFragment} runs past fragment block {fragment.Index} ({fragmentLength} bytes).");
            }

            data.AsSpan((int)fragment.OffsetInFragment, fragment.Length).CopyTo(_buffer);
            _bufferedLength = fragment.Length;
        }
        else
        {
            throw SquashFsException.Corrupted($"'{_path}': no block or fragment holds offset {blockIndex * _image.BlockSize}.");
        }

        _bufferedBlock = blockIndex;
    }
}
