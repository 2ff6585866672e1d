using EdgeUpdater.SquashFs.Compression;
using EdgeUpdater.SquashFs.IO;
using EdgeUpdater.SquashFs.Reader;

namespace EdgeUpdater.Delta.Generation;

/// <summary>
/// Recompresses B's blocks' content with B's data codec and compares with their stored bytes: what the
/// device will do, tried first. One per thread (it owns a codec and buffers).
/// </summary>
internal sealed class RecompressionCheck : IDisposable
{
    private readonly IImageSource _new;
    private readonly SquashFsCodec? _codec;
    private readonly byte[] _compressed;
    private readonly byte[] _stored;

    /// <param name="newSource">B's bytes.</param>
    /// <param name="newImage">B, or null when blocks may not be recompressed (only raw and uncompressed blocks pass).</param>
    public RecompressionCheck(IImageSource newSource, SquashFsImage? newImage)
    {
        _new = newSource;
        _codec = newImage?.CreateCodec(CodecRole.Data);
        var block = Math.Max(newImage?.BlockSize ?? 0, 4096);
        _compressed = new byte[block];
        _stored = new byte[block];
    }

    /// <summary>True when the device can rebuild the unit's stored bytes from <paramref name="content"/>.</summary>
    public bool Reproduces(BlockUnit unit, ReadOnlySpan<byte> content) => unit.Raw || Reproduces(unit.Block, content);

    /// <summary>True when compressing <paramref name="content"/> gives the block's stored bytes (always for an uncompressed block).</summary>
    public bool Reproduces(StoredBlock block, ReadOnlySpan<byte> content)
    {
        if (!block.IsCompressed)
        {
            return true;
        }

        var stored = _stored.AsSpan(0, (int)block.StoredSize);
        _new.ReadAt(block.Offset, stored);
        return _codec is not null
            && _codec.TryCompress(content, _compressed, out var written)
            && written == stored.Length
            && _compressed.AsSpan(0, written).SequenceEqual(stored);
    }

    public void Dispose() => _codec?.Dispose();
}
