using EdgeUpdater.SquashFs.IO;

namespace EdgeUpdater.Delta.Tests.Apply;

/// <summary>A file target that fails like a power cut once <c>limit</c> bytes were written.</summary>
internal sealed class PowerCutTarget : IImageSink
{
    private readonly FileDeltaTarget _inner;
    private readonly long _limit;
    private long _written;

    public PowerCutTarget(string path, long limit)
    {
        _inner = new FileDeltaTarget(path);
        _limit = limit;
    }

    public long Length => _inner.Length;

    public void WriteAt(long offset, ReadOnlySpan<byte> source)
    {
        if (_written + source.Length > _limit)
        {
            throw new IOException("simulated power cut");
        }

        _inner.WriteAt(offset, source);
        _written += source.Length;
    }

    public ValueTask WriteAtAsync(long offset, ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
    {
        WriteAt(offset, source.Span);
        return ValueTask.CompletedTask;
    }

    public void SetLength(long length) => _inner.SetLength(length);

    public void Flush() => _inner.Flush();

    public void Dispose() => _inner.Dispose();
}
