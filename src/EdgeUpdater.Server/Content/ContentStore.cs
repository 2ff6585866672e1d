using System.Security.Cryptography;

namespace EdgeUpdater.Server.Content;

/// <summary>What a content-addressed file is; each kind has its own directory.</summary>
internal enum ContentKind
{
    /// <summary>A SquashFS image.</summary>
    Image,

    /// <summary>A signed manifest envelope.</summary>
    Manifest,
}

/// <summary>
/// Content-addressed, immutable files under <c>{data}/content/{kind}/{xx}/{sha256}</c>. Writes go to a
/// temp file under <c>{data}/tmp</c>, hashed while streaming, and become visible only by an atomic
/// rename after the caller checked them; a failed or abandoned write leaves nothing behind.
/// </summary>
internal sealed class ContentStore
{
    private readonly string _root;

    public ContentStore(string dataDirectory)
    {
        _root = Path.Combine(dataDirectory, "content");
        TempDirectory = Path.Combine(dataDirectory, "tmp");
        Directory.CreateDirectory(_root);
        Directory.CreateDirectory(TempDirectory);
    }

    /// <summary>Where in-flight uploads and generations live; emptied at start.</summary>
    public string TempDirectory { get; }

    /// <summary>Deletes temp files left by a crash (nothing in there is ever complete).</summary>
    public void DeleteLeftovers()
    {
        foreach (var file in Directory.EnumerateFiles(TempDirectory))
        {
            File.Delete(file);
        }
    }

    /// <summary>Path of a stored file, or null when it is not stored.</summary>
    public string? Find(ContentKind kind, string sha256)
    {
        if (!Protocol.HttpRoutes.IsSha256(sha256))
        {
            return null;
        }

        var path = PathOf(kind, sha256);
        return File.Exists(path) ? path : null;
    }

    /// <summary>
    /// Streams <paramref name="source"/> into a temp file, hashing as it goes. Refuses (with
    /// <see cref="ContentTooLargeException"/>) as soon as more than <paramref name="maxBytes"/> arrive.
    /// The result must be committed or disposed; disposing an uncommitted one deletes the temp file.
    /// </summary>
    public async Task<PendingContent> ReceiveAsync(Stream source, long maxBytes, CancellationToken cancellationToken = default)
    {
        var tempPath = Path.Combine(TempDirectory, $"upload-{Guid.NewGuid():N}.part");
        var pending = new PendingContent(this, tempPath);
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            await using (var file = new FileStream(tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, 0, FileOptions.Asynchronous))
            {
                var buffer = new byte[1 << 16];
                long total = 0;
                int read;
                while ((read = await source.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    total += read;
                    if (total > maxBytes)
                    {
                        throw new ContentTooLargeException(maxBytes);
                    }

                    hash.AppendData(buffer, 0, read);
                    await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                }

                file.Flush(flushToDisk: true);
                pending.Size = total;
            }

            pending.Sha256 = Convert.ToHexStringLower(hash.GetHashAndReset());
            return pending;
        }
        catch
        {
            pending.Dispose();
            throw;
        }
    }

    /// <summary>Moves a checked temp file to its content address (a no-op when already stored).</summary>
    internal string Commit(ContentKind kind, PendingContent pending)
    {
        var path = PathOf(kind, pending.Sha256);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (File.Exists(path))
        {
            File.Delete(pending.TempPath);
        }
        else
        {
            File.SetUnixFileMode(pending.TempPath, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            File.Move(pending.TempPath, path, overwrite: false);
        }

        return path;
    }

    private string PathOf(ContentKind kind, string sha256) =>
        Path.Combine(_root, kind == ContentKind.Image ? "images" : "manifests", sha256[..2], sha256);
}

/// <summary>A received file that is not yet in the store.</summary>
internal sealed class PendingContent : IDisposable
{
    private readonly ContentStore _store;
    private bool _done;

    internal PendingContent(ContentStore store, string tempPath)
    {
        _store = store;
        TempPath = tempPath;
    }

    /// <summary>Temp file holding the bytes.</summary>
    public string TempPath { get; }

    /// <summary>SHA-256 of the bytes (lowercase hex).</summary>
    public string Sha256 { get; internal set; } = string.Empty;

    /// <summary>Number of bytes.</summary>
    public long Size { get; internal set; }

    /// <summary>Moves the file to its content address and returns that path.</summary>
    public string Commit(ContentKind kind)
    {
        ObjectDisposedException.ThrowIf(_done, this);
        var path = _store.Commit(kind, this);
        _done = true;
        return path;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (!_done)
        {
            _done = true;
            File.Delete(TempPath);
        }
    }
}

/// <summary>An upload exceeded its size limit.</summary>
internal sealed class ContentTooLargeException : Exception
{
    public ContentTooLargeException(long limit)
        : base($"the upload exceeds the limit of {limit} bytes")
    {
        Limit = limit;
    }

    public ContentTooLargeException()
    {
    }

    public ContentTooLargeException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public long Limit { get; }
}
