using System.Runtime.InteropServices;
using EdgeUpdater.SquashFs.Format;

namespace EdgeUpdater.SquashFs.Compression;

/// <summary>What a codec compresses: mksquashfs uses different settings for metadata (xz dictionary 8 KiB, no BCJ; gzip default strategy only).</summary>
public enum CodecRole
{
    /// <summary>Data and fragment blocks.</summary>
    Data,

    /// <summary>Metadata blocks (inode, directory, fragment, export, id, xattr tables).</summary>
    Metadata,
}

/// <summary>
/// A SquashFS block codec over the native library mksquashfs itself uses, with mksquashfs's parameters,
/// so that recompressing a block's uncompressed bytes gives the exact stored bytes. Not thread-safe:
/// create one per thread (<see cref="Create"/> is cheap).
/// </summary>
public abstract class SquashFsCodec : IDisposable
{
    /// <summary>Size of an uncompressed metadata block.</summary>
    public const int MetadataBlockSize = 8192;

    private bool _disposed;

    /// <summary>Initializes the shared fields.</summary>
    protected SquashFsCodec(CompressorOptions options, uint blockSize, CodecRole role)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options;
        BlockSize = blockSize;
        Role = role;
    }

    /// <summary>The options in effect.</summary>
    public CompressorOptions Options { get; }

    /// <summary>The image's data block size.</summary>
    public uint BlockSize { get; }

    /// <summary>Data or metadata settings.</summary>
    public CodecRole Role { get; }

    /// <summary>The compressor.</summary>
    public CompressorId Compressor => Options.Compressor;

    /// <summary>
    /// Stable identity: compressor and native library version, e.g. <c>zstd/1.5.4</c>, <c>zlib/1.2.13</c>.
    /// Two codecs with the same identity and options produce the same bytes.
    /// </summary>
    public abstract string Identity { get; }

    /// <summary>Creates the codec for <paramref name="options"/>.</summary>
    public static SquashFsCodec Create(CompressorOptions options, uint blockSize, CodecRole role = CodecRole.Data)
    {
        ArgumentNullException.ThrowIfNull(options);
        try
        {
            return options.Compressor switch
            {
                CompressorId.Gzip => new GzipCodec(options, blockSize, role),
                CompressorId.Xz => new XzCodec(options, blockSize, role),
                CompressorId.Zstd => new ZstdCodec(options, blockSize, role),
                CompressorId.Lz4 => new Lz4Codec(options, blockSize, role),
                CompressorId.Lzo => new LzoCodec(options, blockSize, role),
                CompressorId.Lzma => throw SquashFsException.Unsupported("lzma (the legacy compressor id 2) is not supported."),
                _ => throw SquashFsException.Unsupported($"Compressor id {(int)options.Compressor} is unknown."),
            };
        }
        catch (DllNotFoundException e)
        {
            var name = options.Compressor.ToString().ToLowerInvariant();
            throw new SquashFsException(SquashFsErrorCategory.Unsupported, $"{name} is not supported: its native library is not installed ({e.Message}).", e);
        }
    }

    /// <summary>
    /// Decompresses <paramref name="source"/> into <paramref name="destination"/> and returns the bytes
    /// written. Throws <see cref="SquashFsException"/> (<see cref="SquashFsErrorCategory.Corrupted"/>)
    /// when the data is not a valid stream or does not fit.
    /// </summary>
    public abstract int Decompress(ReadOnlySpan<byte> source, Span<byte> destination);

    /// <summary>
    /// Compresses <paramref name="source"/> the way mksquashfs does. Returns false when the compressed
    /// form is not smaller than the input: mksquashfs then stores the block uncompressed. Pass a
    /// <paramref name="destination"/> of the block size (metadata: 8192 bytes), as mksquashfs does.
    /// </summary>
    public bool TryCompress(ReadOnlySpan<byte> source, Span<byte> destination, out int written)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        written = CompressCore(source, destination);
        if (written <= 0 || written >= source.Length)
        {
            written = 0;
            return false;
        }

        return true;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            Dispose(true);
            GC.SuppressFinalize(this);
        }
    }

    /// <summary>Compresses; returns 0 when the output does not fit into <paramref name="destination"/>.</summary>
    protected abstract int CompressCore(ReadOnlySpan<byte> source, Span<byte> destination);

    /// <summary>Frees native state.</summary>
    protected virtual void Dispose(bool disposing)
    {
    }

    /// <summary>The corruption exception every codec throws.</summary>
    protected SquashFsException DecompressFailed(string detail) =>
        SquashFsException.Corrupted($"{Compressor} block does not decompress: {detail}.");

    /// <summary>Reads a NUL-terminated native string.</summary>
    protected static unsafe string NativeString(byte* value) => Marshal.PtrToStringUTF8((nint)value) ?? "unknown";
}
