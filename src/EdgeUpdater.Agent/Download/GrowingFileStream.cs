using Microsoft.Win32.SafeHandles;

namespace EdgeUpdater.Agent.Download;

/// <summary>
/// Reads, front to back, a file that a download is still writing: a read at the end of what has arrived waits
/// for more (<see cref="Advance"/>), and ends the stream once the download is complete (<see cref="Complete"/>).
/// When the download stops (<see cref="Stop"/>), a waiting or later read throws
/// <see cref="DownloadStoppedException"/>. Not seekable: the reader sees bytes in the order they arrive.
/// </summary>
internal sealed class GrowingFileStream : Stream
{
    private readonly SafeFileHandle _file;
    private readonly Lock _gate = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _arrived;
    private bool _complete;
    private Exception? _stopped;
    private long _position;

    /// <param name="path">The file being downloaded.</param>
    /// <param name="arrived">Bytes at its start that are already the download's (a resumed download's offset).</param>
    public GrowingFileStream(string path, long arrived)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(arrived);
        _file = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, FileOptions.Asynchronous);
        _arrived = arrived;
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    /// <summary>The download has written the file up to <paramref name="arrived"/> bytes.</summary>
    public void Advance(long arrived) => Signal(() => _arrived = Math.Max(_arrived, arrived));

    /// <summary>The download ended with <paramref name="length"/> bytes: reads past them are the end of the stream.</summary>
    public void Complete(long length) => Signal(() =>
    {
        _arrived = length;
        _complete = true;
    });

    /// <summary>The download stopped without completing: reads throw <see cref="DownloadStoppedException"/> from now on.</summary>
    public void Stop(Exception reason) => Signal(() => _stopped ??= reason);

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty)
        {
            return 0;
        }

        while (true)
        {
            Task changed;
            int count;
            lock (_gate)
            {
                if (_stopped is not null)
                {
                    throw new DownloadStoppedException($"the download stopped after {_arrived} bytes: {_stopped.Message}", _stopped);
                }

                count = (int)Math.Min(buffer.Length, _arrived - _position);
                if (count <= 0 && _complete)
                {
                    return 0;
                }

                changed = _changed.Task;
            }

            if (count > 0)
            {
                var read = await RandomAccess.ReadAsync(_file, buffer[..count], _position, cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    throw new EndOfStreamException($"{count} bytes at offset {_position} were said to have arrived, but the file ends there");
                }

                _position += read;
                return read;
            }

            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _file.Dispose();
        }

        base.Dispose(disposing);
    }

    private void Signal(Action change)
    {
        TaskCompletionSource fired;
        lock (_gate)
        {
            change();
            fired = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        fired.TrySetResult();
    }
}

/// <summary>A <see cref="GrowingFileStream"/> was read after its download stopped.</summary>
internal sealed class DownloadStoppedException : IOException
{
    public DownloadStoppedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public DownloadStoppedException()
    {
    }

    public DownloadStoppedException(string message)
        : base(message)
    {
    }
}
