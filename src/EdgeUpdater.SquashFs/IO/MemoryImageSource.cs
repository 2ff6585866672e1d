namespace EdgeUpdater.SquashFs.IO;

/// <summary>An image held in memory (tests, small images, fuzzing).</summary>
public sealed class MemoryImageSource : IImageSource
{
    private readonly ReadOnlyMemory<byte> _image;

    /// <summary>Wraps <paramref name="image"/> without copying it.</summary>
    public MemoryImageSource(ReadOnlyMemory<byte> image)
    {
        _image = image;
    }

    /// <inheritdoc />
    public long Length => _image.Length;

    /// <inheritdoc />
    public void ReadAt(long offset, Span<byte> destination)
    {
        ImageBounds.Check(offset, destination.Length, _image.Length);
        _image.Span.Slice((int)offset, destination.Length).CopyTo(destination);
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
        ImageBounds.Check(offset, length, _image.Length);
        span = _image.Span.Slice((int)offset, length);
        return true;
    }

    /// <inheritdoc />
    public void Dispose()
    {
    }
}
