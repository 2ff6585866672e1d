using System.Collections.Concurrent;
using EdgeUpdater.Delta;

namespace EdgeUpdater.Server.Deltas;

/// <summary>
/// One <see cref="ReproductionRecord"/> per target image, kept in memory and in
/// <c>&lt;data&gt;/reproduction/&lt;sha256&gt;.record</c>. A fleet updates from many versions to one release:
/// the first delta to an image proves which of its blocks recompress exactly (on xz images, more than half
/// of a <c>best</c> generation's CPU time), and every later delta to it, from any base and after a restart,
/// reuses those proofs. A record is only a saving: a missing or damaged file means proving again.
/// </summary>
internal sealed class ReproductionRecords
{
    private readonly ConcurrentDictionary<string, Lazy<Entry>> _records = new();
    private readonly ILogger<ReproductionRecords> _logger;

    public ReproductionRecords(string directory, ILogger<ReproductionRecords> logger)
    {
        Directory = directory;
        _logger = logger;
    }

    public string Directory { get; }

    /// <summary>The record of the image with this SHA-256 (lowercase hex), read from disk on first use.</summary>
    public ReproductionRecord For(string imageSha256) => _records.GetOrAdd(imageSha256, sha => new Lazy<Entry>(() => Load(sha))).Value.Record;

    /// <summary>Writes the record of <paramref name="imageSha256"/> when it learned something since it was last written.</summary>
    public void Save(string imageSha256)
    {
        if (!_records.TryGetValue(imageSha256, out var lazy) || !lazy.IsValueCreated)
        {
            return;
        }

        var entry = lazy.Value;
        lock (entry)
        {
            var count = entry.Record.Count;
            if (count == entry.SavedCount)
            {
                return;
            }

            try
            {
                System.IO.Directory.CreateDirectory(Directory);
                var path = PathOf(imageSha256);
                var temp = path + ".tmp";
                using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
                {
                    entry.Record.Write(file);
                    file.Flush(flushToDisk: true);
                }

                File.Move(temp, path, overwrite: true);
                entry.SavedCount = count;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _logger.LogWarning("Could not write the reproduction record of {Image}: {Message}", imageSha256, e.Message);
            }
        }
    }

    private string PathOf(string imageSha256) => Path.Combine(Directory, imageSha256 + ".record");

    private Entry Load(string imageSha256)
    {
        var path = PathOf(imageSha256);
        try
        {
            var record = ReproductionRecord.Read(File.ReadAllBytes(path));
            return new Entry(record) { SavedCount = record.Count };
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return new Entry(new ReproductionRecord()) { SavedCount = 0 };
        }
        catch (Exception e) when (e is DeltaException or IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning("Reproduction record of {Image} not used ({Message}); its blocks are proved again.", imageSha256, e.Message);
            return new Entry(new ReproductionRecord());
        }
    }

    private sealed class Entry(ReproductionRecord record)
    {
        public ReproductionRecord Record { get; } = record;

        public int SavedCount { get; set; } = -1;
    }
}
