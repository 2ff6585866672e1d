using Microsoft.Win32.SafeHandles;

namespace EdgeUpdater.SquashFs.IO;

/// <summary>An image in a file or block device, read with positional reads (<see cref="RandomAccess"/>).</summary>
public sealed class FileImageSource : IImageSource
{
    private readonly SafeFileHandle _handle;
    private readonly bool _ownsHandle;

    /// <summary>Opens <paramref name="path"/> read-only.</summary>
    public FileImageSource(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        _handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        _ownsHandle = true;
        Length = ReadLength(path);
    }

    /// <summary>Wraps an open handle; <paramref name="length"/> is the image length.</summary>
    public FileImageSource(SafeFileHandle handle, long length, bool ownsHandle = false)
    {
        ArgumentNullException.ThrowIfNull(handle);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        _handle = handle;
        _ownsHandle = ownsHandle;
        Length = length;
    }

    /// <inheritdoc />
    public long Length { get; }

    /// <inheritdoc />
    public void ReadAt(long offset, Span<byte> destination)
    {
        ImageBounds.Check(offset, destination.Length, Length);
        while (!destination.IsEmpty)
        {
            var read = RandomAccess.Read(_handle, destination, offset);
            if (read <= 0)
            {
                throw SquashFsException.OutOfBounds($"The image file ended early at offset {offset}.");
            }

            destination = destination[read..];
            offset += read;
        }
    }

    /// <inheritdoc />
    public async ValueTask ReadAtAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        ImageBounds.Check(offset, destination.Length, Length);
        while (!destination.IsEmpty)
        {
            var read = await RandomAccess.ReadAsync(_handle, destination, offset, cancellationToken).ConfigureAwait(false);
            if (read <= 0)
            {
                throw SquashFsException.OutOfBounds($"The image file ended early at offset {offset}.");
            }

            destination = destination[read..];
            offset += read;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsHandle)
        {
            _handle.Dispose();
        }
    }

    private long ReadLength(string path)
    {
        var length = RandomAccess.GetLength(_handle);
        if (length == 0 && path.StartsWith("/dev/", StringComparison.Ordinal))
        {
            // Block devices report 0 through fstat; seeking to the end gives their size.
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1);
            length = stream.Seek(0, SeekOrigin.End);
        }

        return length;
    }
}

/// <summary>An image file being written, with positional writes.</summary>
public sealed class FileImageSink : IImageSink
{
    private readonly SafeFileHandle _handle;

    /// <summary>Creates (or truncates) <paramref name="path"/>.</summary>
    public FileImageSink(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        _handle = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite, FileShare.Read);
    }

    /// <inheritdoc />
    public long Length { get; private set; }

    /// <inheritdoc />
    public void WriteAt(long offset, ReadOnlySpan<byte> source)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        RandomAccess.Write(_handle, source, offset);
        Length = Math.Max(Length, offset + source.Length);
    }

    /// <inheritdoc />
    public async ValueTask WriteAtAsync(long offset, ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        await RandomAccess.WriteAsync(_handle, source, offset, cancellationToken).ConfigureAwait(false);
        Length = Math.Max(Length, offset + source.Length);
    }

    /// <inheritdoc />
    public void SetLength(long length)
    {
        RandomAccess.SetLength(_handle, length);
        Length = length;
    }

    /// <inheritdoc />
    public void Flush() => RandomAccess.FlushToDisk(_handle);

    /// <inheritdoc />
    public void Dispose() => _handle.Dispose();
}
