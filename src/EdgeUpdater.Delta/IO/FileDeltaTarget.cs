using System.Runtime.InteropServices;
using EdgeUpdater.SquashFs.IO;
using Microsoft.Win32.SafeHandles;

namespace EdgeUpdater.Delta;

/// <summary>
/// The output of an apply: a regular file or a block device (an A/B slot), written at offsets and read
/// back when a resumed apply hashes what it had written. Opening never truncates, so a checkpoint's
/// prefix survives; <see cref="SetLength"/> is a no-op on block devices. A full file system, a quota or
/// the end of a block device is reported as <see cref="DeltaErrorCategory.OutputFull"/>.
/// </summary>
public sealed class FileDeltaTarget : IImageSink, IImageSource
{
    /// <summary>Bytes written between two early writeback starts.</summary>
    private const long WritebackChunk = 8 << 20;

    private readonly SafeFileHandle _handle;
    private readonly string _path;
    private long _length;
    private long _writebackFrom;
    private long _writebackTo;
    private bool _writebackUnsupported;

    /// <summary>Opens (or creates) <paramref name="path"/> for reading and writing.</summary>
    public FileDeltaTarget(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        _path = path;
        IsBlockDevice = path.StartsWith("/dev/", StringComparison.Ordinal);
        _handle = File.OpenHandle(path, IsBlockDevice ? FileMode.Open : FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
        _length = IsBlockDevice ? long.MaxValue : RandomAccess.GetLength(_handle);
    }

    /// <summary>
    /// Opens (or creates) <paramref name="path"/> as the output of an apply that reads the image at
    /// <paramref name="basePath"/>. Refuses (<see cref="DeltaErrorCategory.Unsupported"/>), before anything
    /// is opened, an output that is that very file or block device (through links or another device node):
    /// the apply writes over its output in place and would destroy the base it is reading.
    /// </summary>
    public FileDeltaTarget(string path, string basePath)
        : this(RefuseBase(path, basePath))
    {
    }

    /// <summary>True for a block device: its size is fixed and it is never truncated.</summary>
    public bool IsBlockDevice { get; }

    /// <inheritdoc />
    public long Length => _length;

    /// <inheritdoc />
    public void WriteAt(long offset, ReadOnlySpan<byte> source)
    {
        try
        {
            RandomAccess.Write(_handle, source, offset);
        }
        catch (IOException e) when (Interop.Libc.IsNoRoom(e.HResult))
        {
            throw NoRoom($"writing {source.Length} bytes at offset {offset}", e);
        }

        if (!IsBlockDevice)
        {
            _length = Math.Max(_length, offset + source.Length);
        }

        StartWriteback(offset, source.Length);
    }

    /// <inheritdoc />
    public async ValueTask WriteAtAsync(long offset, ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
    {
        try
        {
            await RandomAccess.WriteAsync(_handle, source, offset, cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e) when (Interop.Libc.IsNoRoom(e.HResult))
        {
            throw NoRoom($"writing {source.Length} bytes at offset {offset}", e);
        }

        if (!IsBlockDevice)
        {
            _length = Math.Max(_length, offset + source.Length);
        }

        StartWriteback(offset, source.Length);
    }

    /// <inheritdoc />
    public void ReadAt(long offset, Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            var read = RandomAccess.Read(_handle, destination, offset);
            if (read <= 0)
            {
                throw new DeltaException(DeltaErrorCategory.CheckpointMismatch, $"The output ends at {offset}, before the checkpoint's position.");
            }

            destination = destination[read..];
            offset += read;
        }
    }

    /// <inheritdoc />
    public ValueTask ReadAtAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        ReadAt(offset, destination.Span);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public void SetLength(long length)
    {
        if (!IsBlockDevice)
        {
            RandomAccess.SetLength(_handle, length);
            _length = length;
        }
    }

    /// <inheritdoc />
    public void Flush()
    {
        try
        {
            RandomAccess.FlushToDisk(_handle);
        }
        catch (IOException e) when (Interop.Libc.IsNoRoom(e.HResult))
        {
            // Delayed allocation (ext4, XFS) can find the file system full only when the pages are written out.
            throw NoRoom("flushing it to the disk", e);
        }
    }

    /// <summary>
    /// Reserves the file's blocks up to <paramref name="length"/> bytes (fallocate, keeping its size), so a
    /// file system without room, or one whose largest file is smaller than the image, refuses it before
    /// anything is written, and no other writer can take the space while it is written. Nothing to do on a
    /// block device (its end is found by the writes). A file system without fallocate still refuses a file
    /// larger than its largest (the kernel checks that before it asks the file system); a lack of room is
    /// then reported by the writes.
    /// </summary>
    public void Reserve(long length)
    {
        if (IsBlockDevice || length <= 0 || Interop.Libc.Fallocate(_handle, Interop.Libc.FallocateKeepSize, 0, length) == 0)
        {
            return;
        }

        var errno = Marshal.GetLastPInvokeError();

        // EFBIG here, where it is still an errno: .NET reports it from a write as an ArgumentOutOfRangeException.
        if (Interop.Libc.IsNoRoom(errno) || errno == Interop.Libc.EFBIG)
        {
            throw NoRoom($"reserving {length} bytes for the new image ({Marshal.GetPInvokeErrorMessage(errno)})", null);
        }
    }

    /// <summary>
    /// True when <paramref name="path"/> is the file or block device at <paramref name="basePath"/>: the same
    /// device and inode after links, or the same block device through another node. False when either
    /// does not exist.
    /// </summary>
    public static bool IsBase(string path, string basePath)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentException.ThrowIfNullOrEmpty(basePath);
        return SquashFs.Interop.Linux.Statx.SameFile(path, basePath);
    }

    private static string RefuseBase(string path, string basePath)
    {
        if (IsBase(path, basePath))
        {
            throw new DeltaException(DeltaErrorCategory.Unsupported, $"The output {path} is the base image {basePath} itself; write the new image somewhere else (the inactive slot).");
        }

        return path;
    }

    private DeltaException NoRoom(string what, Exception? cause) =>
        new(DeltaErrorCategory.OutputFull, $"No room on the output {_path} {what}{(cause is null ? "" : $" ({cause.Message})")}. The base image is untouched; make room and apply again (with a checkpoint, the apply resumes where it stopped).", cause);

    /// <summary>
    /// Starts writing each written 8 MiB out to the disk at once, without waiting: the sync at a checkpoint
    /// and at the end then waits for the last chunk only, not for everything the page cache held (applying
    /// a small update to a 56 MB image here: that sync took 4 ms instead of 33 ms, the apply 92 instead of 105).
    /// </summary>
    private void StartWriteback(long offset, int count)
    {
        if (_writebackUnsupported)
        {
            return;
        }

        if (offset != _writebackTo)
        {
            // Not sequential (a resume, a rewrite): start over from here.
            _writebackFrom = offset;
        }

        _writebackTo = offset + count;
        if (_writebackTo - _writebackFrom < WritebackChunk)
        {
            return;
        }

        if (Interop.Libc.SyncFileRange(_handle, _writebackFrom, _writebackTo - _writebackFrom, Interop.Libc.SyncFileRangeWrite) != 0)
        {
            // Only a hint (ESPIPE, EINVAL on some file systems): the sync at the checkpoint still does all.
            _writebackUnsupported = true;
        }

        _writebackFrom = _writebackTo;
    }

    /// <inheritdoc />
    public void Dispose() => _handle.Dispose();
}

/// <summary>The first <c>length</c> bytes of a source (a slot larger than the image it holds).</summary>
internal sealed class BoundedImageSource : IImageSource
{
    private readonly IImageSource _inner;

    public BoundedImageSource(IImageSource inner, long length)
    {
        _inner = inner;
        Length = length;
    }

    public long Length { get; }

    public void ReadAt(long offset, Span<byte> destination)
    {
        if (offset < 0 || offset > Length - destination.Length)
        {
            throw DeltaException.OutOfBounds($"Read of {destination.Length} bytes at base offset {offset} is outside the base image ({Length} bytes).");
        }

        _inner.ReadAt(offset, destination);
    }

    public ValueTask ReadAtAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        ReadAt(offset, destination.Span);
        return ValueTask.CompletedTask;
    }

    public void Dispose()
    {
    }
}
