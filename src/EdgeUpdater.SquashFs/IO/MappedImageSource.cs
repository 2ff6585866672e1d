using System.IO.MemoryMappedFiles;

namespace EdgeUpdater.SquashFs.IO;

/// <summary>
/// An image file mapped read-only into memory: reads are copies out of the page cache without a system
/// call, and <see cref="TryGetSpan"/> hands out the mapped bytes themselves (hashing a whole image copies
/// nothing). For files that do not change while mapped (the server's image store, a delta generator's
/// inputs): the kernel signals SIGBUS, not an error, on a read past a file truncated underneath.
/// </summary>
public sealed unsafe class MappedImageSource : IImageSource
{
    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _start;

    private MappedImageSource(MemoryMappedFile file, MemoryMappedViewAccessor view, long length)
    {
        _file = file;
        _view = view;
        Length = length;
        byte* pointer = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        _start = pointer + _view.PointerOffset;
    }

    /// <summary>
    /// Maps the file at <paramref name="path"/>; null when it has no length to map (empty, a block device, a
    /// pipe): read it with <see cref="FileImageSource"/> instead.
    /// </summary>
    public static MappedImageSource? TryOpen(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            return null;
        }

        // The length is taken from the open handle and mapped exactly, so the view and Length agree.
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.RandomAccess);
        MemoryMappedFile? file = null;
        try
        {
            var length = stream.Length;
            if (length == 0)
            {
                // Block devices, pipes and empty files report no length to map.
                stream.Dispose();
                return null;
            }

            file = MemoryMappedFile.CreateFromFile(stream, null, length, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            var view = file.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            return new MappedImageSource(file, view, length);
        }
        catch
        {
            if (file is null)
            {
                stream.Dispose();
            }
            else
            {
                file.Dispose();
            }

            throw;
        }
    }

    /// <inheritdoc />
    public long Length { get; }

    /// <inheritdoc />
    public void ReadAt(long offset, Span<byte> destination)
    {
        ImageBounds.Check(offset, destination.Length, Length);
        new ReadOnlySpan<byte>(_start + offset, destination.Length).CopyTo(destination);
    }

    /// <inheritdoc />
    public ValueTask ReadAtAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ReadAt(offset, destination.Span);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public bool TryGetSpan(long offset, int length, out ReadOnlySpan<byte> span)
    {
        ImageBounds.Check(offset, length, Length);
        span = new ReadOnlySpan<byte>(_start + offset, length);
        return true;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
    }
}
