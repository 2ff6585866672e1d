using System.Buffers.Binary;

namespace EdgeUpdater.Delta.Metadata;

/// <summary>
/// Holds a decoded metadata region before the applier knows where it starts in the new image: positions
/// count from the region's start, and the absolute pointers (table indexes, xattr header) are moved by
/// the real start when the region is written out. Lets the device decode the metadata section while it
/// is still applying the data sections before it.
/// </summary>
internal sealed class MetadataRegionBuffer : IImageWriter
{
    private readonly int _limit;
    private readonly List<int> _pointers = [];
    private byte[] _bytes = new byte[64 << 10];
    private int _length;

    /// <param name="limit">Most bytes held; a larger region throws <see cref="RegionTooLargeException"/>.</param>
    public MetadataRegionBuffer(int limit)
    {
        _limit = limit;
    }

    public long Position => _length;

    public void Write(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > _limit - _length)
        {
            throw new RegionTooLargeException();
        }

        if (_length + bytes.Length > _bytes.Length)
        {
            Array.Resize(ref _bytes, (int)Math.Min(_limit, Math.Max(_length + (long)bytes.Length, _bytes.Length * 2L)));
        }

        bytes.CopyTo(_bytes.AsSpan(_length));
        _length += bytes.Length;
    }

    public void WritePosition(long position)
    {
        _pointers.Add(_length);
        Span<byte> value = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(value, (ulong)position);
        Write(value);
    }

    /// <summary>Writes the region to <paramref name="output"/> at its current position, pointers moved there (once).</summary>
    public void WriteTo(IImageWriter output)
    {
        var start = (ulong)output.Position;
        foreach (var at in _pointers)
        {
            var slot = _bytes.AsSpan(at, 8);
            BinaryPrimitives.WriteUInt64LittleEndian(slot, BinaryPrimitives.ReadUInt64LittleEndian(slot) + start);
        }

        _pointers.Clear();
        output.Write(_bytes.AsSpan(0, _length));
    }

    /// <summary>The region outgrew the buffer: decode it again where it belongs instead.</summary>
    public sealed class RegionTooLargeException : Exception
    {
        public RegionTooLargeException()
            : base("The metadata region is larger than the read-ahead buffer.")
        {
        }

        public RegionTooLargeException(string message)
            : base(message)
        {
        }

        public RegionTooLargeException(string message, Exception innerException)
            : base(message, innerException)
        {
        }
    }
}
