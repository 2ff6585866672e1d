using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;

namespace EdgeUpdater.Server.Deltas;

/// <summary>
/// One delta being generated into a temp file. Any number of requests follow it while it grows
/// (<see cref="OpenRead"/> + <see cref="BytesWritten"/> + <see cref="WaitForProgressAsync"/>); the
/// generation itself belongs to no request, so a client that goes away does not waste it.
/// </summary>
internal sealed class DeltaGeneration
{
    private readonly Lock _lock = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _progress = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _bytesWritten;
    private string _path;

    public DeltaGeneration(DeltaKey key, string tempPath)
    {
        Key = key;
        TempPath = tempPath;
        _path = tempPath;
    }

    /// <summary>The file the generator writes; moved into the cache on success.</summary>
    public string TempPath { get; }

    /// <summary>A generation that is already complete: its result is the cached file.</summary>
    public static DeltaGeneration Completed(DeltaCacheEntry entry)
    {
        var generation = new DeltaGeneration(entry.Key, entry.Path);
        generation._bytesWritten = entry.Length;
        generation.Result = entry;
        generation.Sha256 = entry.Sha256;
        generation._completion.SetResult();
        return generation;
    }

    public DeltaKey Key { get; }

    /// <summary>Bytes visible to readers so far.</summary>
    public long BytesWritten => Interlocked.Read(ref _bytesWritten);

    /// <summary>Completes when generation ended, successfully or not (it never faults).</summary>
    public Task Completion => _completion.Task;

    /// <summary>True once generation ended well: every byte up to <see cref="BytesWritten"/> is the delta.</summary>
    public bool Succeeded => _completion.Task.IsCompleted && Error is null;

    /// <summary>Why generation failed, once it did.</summary>
    public Exception? Error { get; private set; }

    /// <summary>SHA-256 of the complete delta, once it succeeded.</summary>
    public string? Sha256 { get; private set; }

    /// <summary>The cache entry, when the result was committed to the cache.</summary>
    public DeltaCacheEntry? Result { get; private set; }

    /// <summary>Opens the bytes for reading, wherever they are now (temp file or cache).</summary>
    public SafeFileHandle OpenRead()
    {
        lock (_lock)
        {
            return File.OpenHandle(_path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, FileOptions.Asynchronous);
        }
    }

    /// <summary>Waits until more than <paramref name="position"/> bytes exist or generation ended.</summary>
    public Task WaitForProgressAsync(long position, CancellationToken cancellationToken)
    {
        Task signal;
        lock (_lock)
        {
            signal = _progress.Task;
        }

        if (BytesWritten > position || _completion.Task.IsCompleted)
        {
            return Task.CompletedTask;
        }

        return Task.WhenAny(signal, _completion.Task).WaitAsync(cancellationToken);
    }

    internal void Advance(long bytes)
    {
        TaskCompletionSource fired;
        lock (_lock)
        {
            Interlocked.Add(ref _bytesWritten, bytes);
            fired = _progress;
            _progress = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        fired.SetResult();
    }

    /// <summary>Moves the file under the lock so that no reader opens a path in between.</summary>
    internal void MoveTo(Func<DeltaCacheEntry> commit)
    {
        lock (_lock)
        {
            var entry = commit();
            _path = entry.Path;
            Result = entry;
        }
    }

    internal void Succeed(string sha256)
    {
        Sha256 = sha256;
        _completion.TrySetResult();
        _progress.TrySetResult();
    }

    internal void Fail(Exception error)
    {
        Error = error;
        _completion.TrySetResult();
        _progress.TrySetResult();
    }
}

/// <summary>
/// The stream a generator writes into: buffers small writes, makes each flushed chunk visible to the
/// readers of the <see cref="DeltaGeneration"/>, hashes everything and stops the generator (by
/// throwing <see cref="DeltaNotWorthwhileException"/>) once the delta passes its limit (a share of the
/// target image, or for <c>best</c> the size of the <c>fast</c> delta).
/// </summary>
internal sealed class GenerationOutputStream : Stream
{
    private const int ChunkSize = 16 * 1024;
    private readonly FileStream _file;
    private readonly DeltaGeneration _generation;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly long _limit;
    private readonly string _limitReason;
    private readonly byte[] _buffer = new byte[ChunkSize];
    private int _buffered;
    private long _length;

    public GenerationOutputStream(FileStream file, DeltaGeneration generation, long limit, string limitReason)
    {
        _limitReason = limitReason;
        _file = file;
        _generation = generation;
        _limit = limit;
    }

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => _length;

    public override long Position
    {
        get => _length;
        set => throw new NotSupportedException();
    }

    /// <summary>Lowercase hex SHA-256 of everything written; call once, after the last flush.</summary>
    public string FinishHash() => Convert.ToHexStringLower(_hash.GetHashAndReset());

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Account(buffer.Length);
        while (!buffer.IsEmpty)
        {
            var n = Math.Min(buffer.Length, ChunkSize - _buffered);
            buffer[..n].CopyTo(_buffer.AsSpan(_buffered));
            _buffered += n;
            buffer = buffer[n..];
            if (_buffered == ChunkSize)
            {
                FlushChunk();
            }
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Account(buffer.Length);
        while (!buffer.IsEmpty)
        {
            var n = Math.Min(buffer.Length, ChunkSize - _buffered);
            buffer[..n].CopyTo(_buffer.AsMemory(_buffered));
            _buffered += n;
            buffer = buffer[n..];
            if (_buffered == ChunkSize)
            {
                await FlushChunkAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush() => FlushChunk();

    public override Task FlushAsync(CancellationToken cancellationToken) => FlushChunkAsync(cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
        }

        base.Dispose(disposing);
    }

    private void Account(int count)
    {
        _length += count;
        if (_length > _limit)
        {
            throw new DeltaNotWorthwhileException($"the delta passed {_limit} bytes ({_limitReason})");
        }
    }

    private void FlushChunk()
    {
        if (_buffered == 0)
        {
            return;
        }

        _hash.AppendData(_buffer, 0, _buffered);
        _file.Write(_buffer, 0, _buffered);
        _file.Flush();
        _generation.Advance(_buffered);
        _buffered = 0;
    }

    private async Task FlushChunkAsync(CancellationToken cancellationToken)
    {
        if (_buffered == 0)
        {
            return;
        }

        _hash.AppendData(_buffer, 0, _buffered);
        await _file.WriteAsync(_buffer.AsMemory(0, _buffered), cancellationToken).ConfigureAwait(false);
        await _file.FlushAsync(cancellationToken).ConfigureAwait(false);
        _generation.Advance(_buffered);
        _buffered = 0;
    }
}

/// <summary>The delta would not be smaller than what it replaces.</summary>
internal sealed class DeltaNotWorthwhileException : Exception
{
    public DeltaNotWorthwhileException(string message)
        : base(message)
    {
    }

    public DeltaNotWorthwhileException()
    {
    }

    public DeltaNotWorthwhileException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
