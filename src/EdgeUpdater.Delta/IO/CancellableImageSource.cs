using EdgeUpdater.SquashFs.IO;

namespace EdgeUpdater.Delta.IO;

/// <summary>
/// An image whose reads stop once a generation is cancelled: a worker between its own token checks (a
/// metadata table read block by block inside the SquashFS reader) ends at its next read, so an aborted
/// generation returns within one read of its slowest worker. Does not own the image.
/// </summary>
internal sealed class CancellableImageSource(IImageSource inner, CancellationToken generation) : IImageSource
{
    public long Length => inner.Length;

    public void ReadAt(long offset, Span<byte> destination)
    {
        generation.ThrowIfCancellationRequested();
        inner.ReadAt(offset, destination);
    }

    public ValueTask ReadAtAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        generation.ThrowIfCancellationRequested();
        return inner.ReadAtAsync(offset, destination, cancellationToken);
    }

    public bool TryGetSpan(long offset, int length, out ReadOnlySpan<byte> span)
    {
        generation.ThrowIfCancellationRequested();
        return inner.TryGetSpan(offset, length, out span);
    }

    public void Dispose()
    {
        // The caller's image: it stays open.
    }
}
