namespace EdgeUpdater.SquashFs.IO;

/// <summary>
/// Random read access to an image: a file, a block device, a stream or a memory buffer. All reads of the
/// library go through this, so a caller can serve an image from anywhere (libsquashfs's <c>sqfs_file_t</c>).
/// Implementations must allow concurrent <see cref="ReadAt"/> calls.
/// </summary>
public interface IImageSource : IDisposable
{
    /// <summary>Length of the image in bytes.</summary>
    long Length { get; }

    /// <summary>
    /// Reads exactly <c>destination.Length</c> bytes at <paramref name="offset"/>. Throws a
    /// <see cref="SquashFsException"/> (<see cref="SquashFsErrorCategory.OutOfBounds"/>) when the range
    /// is not inside the image.
    /// </summary>
    void ReadAt(long offset, Span<byte> destination);

    /// <summary>Asynchronous <see cref="ReadAt"/>.</summary>
    ValueTask ReadAtAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default);

    /// <summary>
    /// The image's bytes at <paramref name="offset"/> without a copy, when the source holds them in memory
    /// (a mapped file, a buffer); false when they can only be read with <see cref="ReadAt"/>. The span is
    /// valid until the source is disposed. Throws like <see cref="ReadAt"/> for a range outside the image.
    /// </summary>
    bool TryGetSpan(long offset, int length, out ReadOnlySpan<byte> span)
    {
        ImageBounds.Check(offset, length, Length);
        span = default;
        return false;
    }
}

/// <summary>Random write access to an image being built (a file, a stream, memory).</summary>
public interface IImageSink : IDisposable
{
    /// <summary>Current length of the written image.</summary>
    long Length { get; }

    /// <summary>Writes <paramref name="source"/> at <paramref name="offset"/>, growing the image when needed.</summary>
    void WriteAt(long offset, ReadOnlySpan<byte> source);

    /// <summary>Asynchronous <see cref="WriteAt"/>.</summary>
    ValueTask WriteAtAsync(long offset, ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default);

    /// <summary>Cuts or extends the image to <paramref name="length"/> bytes.</summary>
    void SetLength(long length);

    /// <summary>Flushes written data to the underlying storage.</summary>
    void Flush();

    /// <summary>
    /// Makes room for an image of <paramref name="length"/> bytes before it is written, so that storage too
    /// small for it is found before the first write rather than in the middle. By default nothing is reserved.
    /// </summary>
    void Reserve(long length)
    {
    }
}

/// <summary>Bounds checks shared by the image sources.</summary>
internal static class ImageBounds
{
    public static void Check(long offset, int count, long length)
    {
        if (offset < 0 || count < 0 || offset > length || length - offset < count)
        {
            throw SquashFsException.OutOfBounds(
                $"Read of {count} bytes at offset {offset} is outside the image ({length} bytes).");
        }
    }
}
