namespace EdgeUpdater.SquashFs.IO;

/// <summary>
/// An image in a seekable <see cref="Stream"/>. Reads are serialized with a lock because a stream has
/// one position.
/// </summary>
public sealed class StreamImageSource : IImageSource
{
    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly Lock _lock = new();

    /// <summary>Wraps <paramref name="stream"/>, which must be readable and seekable.</summary>
    public StreamImageSource(Stream stream, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanRead || !stream.CanSeek)
        {
            throw new ArgumentException("The image stream must be readable and seekable.", nameof(stream));
        }

        _stream = stream;
        _leaveOpen = leaveOpen;
    }

    /// <inheritdoc />
    public long Length => _stream.Length;

    /// <inheritdoc />
    public void ReadAt(long offset, Span<byte> destination)
    {
        lock (_lock)
        {
            ImageBounds.Check(offset, destination.Length, _stream.Length);
            _stream.Position = offset;
            try
            {
                _stream.ReadExactly(destination);
            }
            catch (EndOfStreamException e)
            {
                throw new SquashFsException(SquashFsErrorCategory.OutOfBounds, $"The image stream ended early reading {destination.Length} bytes at offset {offset}.", e);
            }
        }
    }

    /// <inheritdoc />
    public ValueTask ReadAtAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ReadAt(offset, destination.Span);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (!_leaveOpen)
        {
            _stream.Dispose();
        }
    }
}

/// <summary>An image being written to a seekable <see cref="Stream"/>.</summary>
public sealed class StreamImageSink : IImageSink
{
    private readonly Stream _stream;
    private readonly bool _leaveOpen;

    /// <summary>Wraps <paramref name="stream"/>, which must be writable and seekable.</summary>
    public StreamImageSink(Stream stream, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanWrite || !stream.CanSeek)
        {
            throw new ArgumentException("The image stream must be writable and seekable.", nameof(stream));
        }

        _stream = stream;
        _leaveOpen = leaveOpen;
    }

    /// <inheritdoc />
    public long Length => _stream.Length;

    /// <inheritdoc />
    public void WriteAt(long offset, ReadOnlySpan<byte> source)
    {
        _stream.Position = offset;
        _stream.Write(source);
    }

    /// <inheritdoc />
    public async ValueTask WriteAtAsync(long offset, ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
    {
        _stream.Position = offset;
        await _stream.WriteAsync(source, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public void SetLength(long length) => _stream.SetLength(length);

    /// <inheritdoc />
    public void Flush() => _stream.Flush();

    /// <inheritdoc />
    public void Dispose()
    {
        if (!_leaveOpen)
        {
            _stream.Dispose();
        }
    }
}
