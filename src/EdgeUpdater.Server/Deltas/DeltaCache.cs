using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace EdgeUpdater.Server.Deltas;

/// <summary>Names one cached delta: the image pair, the device's codecs, the format version written and the level.</summary>
internal readonly record struct DeltaKey(string From, string To, string CodecsKey, int Format, DeltaLevel Level)
{
    /// <summary>The format of deltas cached before the key named one (and of requests that name none).</summary>
    public const int UnnamedFormat = 2;

    public DeltaKey WithLevel(DeltaLevel level) => this with { Level = level };

    public string LevelName => Level == DeltaLevel.Fast ? "fast" : "best";

    /// <summary>The format's part of a cache file name: <c>f3</c>.</summary>
    public string FormatName => string.Create(CultureInfo.InvariantCulture, $"f{Format}");

    /// <summary>
    /// A short stable key for a normalized codecs list: "any" when the request did not say (the server's
    /// own codecs), "none" when the device has none, else a hash of the list.
    /// </summary>
    public static string CodecsKeyOf(string? normalizedCodecs) => normalizedCodecs switch
    {
        null => "any",
        "" => "none",
        _ => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(normalizedCodecs)))[..16],
    };
}

/// <summary>A delta file in the cache. <see cref="Sha256"/> is its strong ETag.</summary>
internal sealed class DeltaCacheEntry
{
    public DeltaCacheEntry(DeltaKey key, string path, string sha256, long length, long lastAccess)
    {
        Key = key;
        Path = path;
        Sha256 = sha256;
        Length = length;
        LastAccess = lastAccess;
        LastPersistedAccess = lastAccess;
    }

    public DeltaKey Key { get; }

    public string Path { get; }

    public string Sha256 { get; }

    public long Length { get; }

    /// <summary>UTC ticks of the last use; the LRU order.</summary>
    public long LastAccess { get; set; }

    /// <summary>UTC ticks last written to the file's atime, so that the order survives a restart.</summary>
    public long LastPersistedAccess { get; set; }
}

/// <summary>
/// The delta disk cache: <c>{dir}/{from}/{to}.{codecs}.f{format}.{level}.{sha256}.delta</c>, plus
/// <c>{to}.{codecs}.f{format}.{level}.none</c> markers for levels that produced nothing worth serving (names
/// without <c>f{format}</c>, written before deltas had a choice of format, are format 2). The
/// index lives in memory and is rebuilt from the directory at start (LRU order from the files' access
/// times, which this class sets itself). Past the byte budget, least recently used deltas are deleted;
/// readers that already opened one keep reading it (Linux unlink semantics).
/// </summary>
internal sealed class DeltaCache
{
    private static readonly TimeSpan PersistAccessEvery = TimeSpan.FromMinutes(1);
    private readonly Dictionary<DeltaKey, DeltaCacheEntry> _entries = [];
    private readonly HashSet<DeltaKey> _none = [];
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private long _totalBytes;

    public DeltaCache(string directory, long budgetBytes, TimeProvider time)
    {
        Directory = directory;
        TempDirectory = System.IO.Path.Combine(directory, "tmp");
        BudgetBytes = budgetBytes;
        _time = time;
        System.IO.Directory.CreateDirectory(TempDirectory);
    }

    public string Directory { get; }

    /// <summary>Where generations write until they are committed.</summary>
    public string TempDirectory { get; }

    public long BudgetBytes { get; }

    public long TotalBytes
    {
        get
        {
            lock (_lock)
            {
                return _totalBytes;
            }
        }
    }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>Rebuilds the index from disk and deletes unfinished generations.</summary>
    public void Load()
    {
        foreach (var file in System.IO.Directory.EnumerateFiles(TempDirectory))
        {
            File.Delete(file);
        }

        lock (_lock)
        {
            _entries.Clear();
            _none.Clear();
            _totalBytes = 0;
            foreach (var fromDir in System.IO.Directory.EnumerateDirectories(Directory))
            {
                var from = System.IO.Path.GetFileName(fromDir);
                if (!Protocol.HttpRoutes.IsSha256(from))
                {
                    continue;
                }

                foreach (var file in System.IO.Directory.EnumerateFiles(fromDir))
                {
                    var parts = new List<string>(System.IO.Path.GetFileName(file).Split('.'));
                    var format = DeltaKey.UnnamedFormat;
                    if (parts.Count > 2 && TryParseFormat(parts[2], out var named))
                    {
                        format = named;
                        parts.RemoveAt(2);
                    }

                    if (parts.Count == 5 && parts[4] == "delta" && TryParseLevel(parts[2], out var level) && Protocol.HttpRoutes.IsSha256(parts[0]) && Protocol.HttpRoutes.IsSha256(parts[3]))
                    {
                        var info = new FileInfo(file);
                        var key = new DeltaKey(from, parts[0], parts[1], format, level);
                        var entry = new DeltaCacheEntry(key, file, parts[3], info.Length, info.LastAccessTimeUtc.Ticks);
                        _entries[key] = entry;
                        _totalBytes += entry.Length;
                    }
                    else if (parts.Count == 4 && parts[3] == "none" && TryParseLevel(parts[2], out level))
                    {
                        _none.Add(new DeltaKey(from, parts[0], parts[1], format, level));
                    }
                }
            }

            EvictOverBudgetLocked();
        }
    }

    /// <summary>Finds a cached delta and marks it used.</summary>
    public bool TryGet(DeltaKey key, out DeltaCacheEntry entry)
    {
        lock (_lock)
        {
            if (!_entries.TryGetValue(key, out entry!))
            {
                return false;
            }

            Touch(entry);
            return true;
        }
    }

    /// <summary>Finds the cached delta of this pair (either level) whose ETag is <paramref name="sha256"/>.</summary>
    public DeltaCacheEntry? FindBySha256(DeltaKey key, string sha256)
    {
        lock (_lock)
        {
            foreach (var level in (ReadOnlySpan<DeltaLevel>)[DeltaLevel.Fast, DeltaLevel.Best])
            {
                if (_entries.TryGetValue(key.WithLevel(level), out var entry) && entry.Sha256 == sha256)
                {
                    Touch(entry);
                    return entry;
                }
            }

            return null;
        }
    }

    /// <summary>True when this level was found not worth serving (delta not smaller than the image, or best not smaller than fast).</summary>
    public bool IsNone(DeltaKey key)
    {
        lock (_lock)
        {
            return _none.Contains(key);
        }
    }

    /// <summary>Records that this level is not worth serving, on disk so that a restart remembers.</summary>
    public void MarkNone(DeltaKey key)
    {
        var path = PathOf(key, "none");
        System.IO.Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, []);
        lock (_lock)
        {
            _none.Add(key);
        }
    }

    /// <summary>Moves a complete generation into the cache, then evicts past the budget.</summary>
    public DeltaCacheEntry Commit(DeltaKey key, string tempPath, string sha256, long length)
    {
        var path = PathOf(key, $"{sha256}.delta");
        System.IO.Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        File.Move(tempPath, path, overwrite: true);
        var now = _time.GetUtcNow().UtcTicks;
        var entry = new DeltaCacheEntry(key, path, sha256, length, now);
        lock (_lock)
        {
            if (_entries.Remove(key, out var previous))
            {
                _totalBytes -= previous.Length;
                if (previous.Path != path)
                {
                    File.Delete(previous.Path);
                }
            }

            _entries[key] = entry;
            _totalBytes += length;
            EvictOverBudgetLocked();
        }

        return entry;
    }

    /// <summary>Drops an entry whose file vanished under it.</summary>
    public void Forget(DeltaCacheEntry entry)
    {
        lock (_lock)
        {
            if (_entries.TryGetValue(entry.Key, out var current) && ReferenceEquals(current, entry))
            {
                _entries.Remove(entry.Key);
                _totalBytes -= entry.Length;
            }
        }
    }

    private void EvictOverBudgetLocked()
    {
        while (_totalBytes > BudgetBytes && _entries.Count > 0)
        {
            var victim = _entries.Values.MinBy(e => e.LastAccess)!;
            _entries.Remove(victim.Key);
            _totalBytes -= victim.Length;
            try
            {
                File.Delete(victim.Path);
            }
            catch (IOException)
            {
                // Already gone; the index no longer counts it either way.
            }
        }
    }

    private void Touch(DeltaCacheEntry entry)
    {
        var now = _time.GetUtcNow().UtcTicks;
        entry.LastAccess = Math.Max(now, entry.LastAccess + 1);
        if (now - entry.LastPersistedAccess >= PersistAccessEvery.Ticks)
        {
            entry.LastPersistedAccess = now;
            try
            {
                File.SetLastAccessTimeUtc(entry.Path, new DateTime(now, DateTimeKind.Utc));
            }
            catch (IOException)
            {
                // Only the order after a restart suffers.
            }
        }
    }

    private string PathOf(DeltaKey key, string suffix) =>
        System.IO.Path.Combine(Directory, key.From, string.Create(CultureInfo.InvariantCulture, $"{key.To}.{key.CodecsKey}.{key.FormatName}.{key.LevelName}.{suffix}"));

    private static bool TryParseFormat(string text, out int format)
    {
        format = 0;
        return text.Length is 2 or 3 && text[0] == 'f' && int.TryParse(text.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out format);
    }

    private static bool TryParseLevel(string text, out DeltaLevel level)
    {
        level = text == "best" ? DeltaLevel.Best : DeltaLevel.Fast;
        return text is "fast" or "best";
    }
}
