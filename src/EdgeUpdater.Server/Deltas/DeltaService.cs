using System.Collections.Concurrent;
using EdgeUpdater.Server.Content;
using EdgeUpdater.Server.Hosting;

namespace EdgeUpdater.Server.Deltas;

/// <summary>What a delta request resolves to.</summary>
internal abstract record DeltaLookup
{
    /// <summary>No delta: the device should fetch the full image.</summary>
    public sealed record Refused(int StatusCode, string Reason, string Message) : DeltaLookup;

    /// <summary>A complete delta in the cache. <paramref name="Final"/>: this URL will keep serving it (immutable).</summary>
    public sealed record Cached(DeltaCacheEntry Entry, bool Final) : DeltaLookup;

    /// <summary>A delta being generated; the response follows it as it grows.</summary>
    public sealed record Streaming(DeltaGeneration Generation) : DeltaLookup;
}

/// <summary>
/// Deltas on request: resolves a request to a cached delta or to a generation in progress, starting
/// one when needed. Single flight: one generation per (from, to, codecs, format, level) however many requests
/// arrive together. The first request for a pair gets <c>fast</c>; when it completes, <c>best</c> is
/// generated in the background (bounded concurrency) and served from then on.
/// </summary>
internal sealed class DeltaService : IAsyncDisposable
{
    private readonly ConcurrentDictionary<DeltaKey, Lazy<DeltaGeneration>> _inFlight = new();
    private readonly ConcurrentDictionary<Task, byte> _running = new();
    private readonly DeltaCache _cache;
    private readonly ContentStore _content;
    private readonly IDeltaGenerator _generator;
    private readonly DeltaSettings _settings;
    private readonly SemaphoreSlim _fastSlots;
    private readonly SemaphoreSlim _bestSlots;
    private readonly CancellationTokenSource _shutdown = new();
    private readonly ILogger<DeltaService> _logger;
    private long _streamedResponses;

    public DeltaService(DeltaCache cache, ContentStore content, IDeltaGenerator generator, ServerOptions options, ILogger<DeltaService> logger)
    {
        _cache = cache;
        _content = content;
        _generator = generator;
        _settings = options.Deltas;
        _fastSlots = new SemaphoreSlim(_settings.FastConcurrency);
        _bestSlots = new SemaphoreSlim(_settings.BestConcurrency);
        _logger = logger;
    }

    /// <summary>Generations currently running or queued.</summary>
    public int InFlight => _inFlight.Count;

    /// <summary>Responses that followed a generation in progress (rather than a cached file), since start.</summary>
    public long StreamedResponses => Interlocked.Read(ref _streamedResponses);

    /// <summary>Counts a response that streams a generation in progress.</summary>
    internal void CountStreamedResponse() => Interlocked.Increment(ref _streamedResponses);

    /// <summary>Resolves a request. <paramref name="ifRangeSha256"/> pins a cached delta a client is resuming.</summary>
    public DeltaLookup Lookup(string from, string to, string? normalizedCodecs, int format, DeltaLevel? requested, string? ifRangeSha256)
    {
        if (from == to)
        {
            return new DeltaLookup.Refused(404, "same-image", "the device already has the target image");
        }

        if (_content.Find(ContentKind.Image, from) is null)
        {
            return new DeltaLookup.Refused(404, "unknown-base", $"the server does not hold image {from}; fetch the full image");
        }

        if (_content.Find(ContentKind.Image, to) is null)
        {
            return new DeltaLookup.Refused(404, "unknown-target", $"the server does not hold image {to}");
        }

        var fast = new DeltaKey(from, to, DeltaKey.CodecsKeyOf(normalizedCodecs), format, DeltaLevel.Fast);
        var best = fast.WithLevel(DeltaLevel.Best);
        if (ifRangeSha256 is not null && _cache.FindBySha256(fast, ifRangeSha256) is { } pinned)
        {
            return new DeltaLookup.Cached(pinned, Final: true);
        }

        if (_cache.IsNone(fast))
        {
            return new DeltaLookup.Refused(404, "not-worthwhile", "a delta would not be much smaller than the image; fetch the full image");
        }

        switch (requested)
        {
            case DeltaLevel.Fast:
                return _cache.TryGet(fast, out var fastEntry)
                    ? new DeltaLookup.Cached(fastEntry, Final: true)
                    : new DeltaLookup.Streaming(Join(fast, normalizedCodecs));

            case DeltaLevel.Best:
                if (_cache.TryGet(best, out var bestEntry))
                {
                    return new DeltaLookup.Cached(bestEntry, Final: true);
                }

                if (_cache.IsNone(best))
                {
                    goto case DeltaLevel.Fast;
                }

                return new DeltaLookup.Streaming(Join(best, normalizedCodecs));

            default:
                if (_cache.TryGet(best, out bestEntry))
                {
                    return new DeltaLookup.Cached(bestEntry, Final: true);
                }

                if (_cache.TryGet(fast, out fastEntry))
                {
                    var bestSettled = _cache.IsNone(best) || !_settings.GenerateBest;
                    if (!bestSettled)
                    {
                        // After a restart or an eviction the best level may be missing: make it again.
                        _ = Join(best, normalizedCodecs);
                    }

                    return new DeltaLookup.Cached(fastEntry, Final: bestSettled);
                }

                if (_inFlight.TryGetValue(best, out var bestRunning) && !_inFlight.ContainsKey(fast))
                {
                    return new DeltaLookup.Streaming(bestRunning.Value);
                }

                return new DeltaLookup.Streaming(Join(fast, normalizedCodecs));
        }
    }

    /// <summary>
    /// Prepares a newly published image as a delta target in the background (<see cref="IDeltaGenerator.PrepareTargetAsync"/>),
    /// in one of the <c>best</c> slots; returns the task (tests wait for it), which never throws.
    /// </summary>
    public Task PrepareTarget(string imageSha256)
    {
        if (!_settings.ProveOnPublish || _shutdown.IsCancellationRequested)
        {
            return Task.CompletedTask;
        }

        var task = Task.Run(async () =>
        {
            var acquired = false;
            try
            {
                await _bestSlots.WaitAsync(_shutdown.Token).ConfigureAwait(false);
                acquired = true;
                var path = _content.Find(ContentKind.Image, imageSha256) ?? throw new FileNotFoundException($"image {imageSha256} vanished");
                var started = System.Diagnostics.Stopwatch.GetTimestamp();
                var prepared = await _generator.PrepareTargetAsync(path, imageSha256, _shutdown.Token).ConfigureAwait(false);
                _logger.LogInformation(
                    "Prepared image {Image} as a delta target in {Elapsed:F2} s: {Reproducing} of {Blocks} compressed blocks recompress exactly",
                    imageSha256[..12],
                    System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds,
                    prepared?.Reproducing ?? 0,
                    prepared?.Blocks ?? 0);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                if (!_shutdown.IsCancellationRequested)
                {
                    _logger.LogWarning(e, "Preparing image {Image} as a delta target failed; its deltas prove their blocks themselves", imageSha256[..12]);
                }
            }
            finally
            {
                if (acquired)
                {
                    _bestSlots.Release();
                }
            }
        });
        _running.TryAdd(task, 0);
        _ = task.ContinueWith(t => _running.TryRemove(t, out _), TaskScheduler.Default);
        return task;
    }

    /// <summary>Drops a cache entry whose file was evicted between lookup and open.</summary>
    public void Forget(DeltaCacheEntry entry) => _cache.Forget(entry);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_shutdown.IsCancellationRequested)
        {
            return;
        }

        await _shutdown.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_running.Keys).ConfigureAwait(false);
    }

    private DeltaGeneration Join(DeltaKey key, string? normalizedCodecs)
    {
        for (var attempt = 0; ; attempt++)
        {
            var lazy = _inFlight.GetOrAdd(key, k => new Lazy<DeltaGeneration>(() => Start(k, normalizedCodecs)));
            var generation = lazy.Value;
            if (!generation.Completion.IsCompleted)
            {
                return generation;
            }

            _inFlight.TryRemove(KeyValuePair.Create(key, lazy));

            // A generation that already failed is not joined (its readers break off): this request starts
            // a new one, once (one that fails at once, at shutdown say, is returned as it is). One that
            // succeeded is read from the file it committed.
            if (generation.Succeeded || attempt > 0)
            {
                return generation;
            }
        }
    }

    private DeltaGeneration Start(DeltaKey key, string? normalizedCodecs)
    {
        // Another request may have committed this key between our cache miss and here.
        if (_cache.TryGet(key, out var entry))
        {
            return DeltaGeneration.Completed(entry);
        }

        var generation = new DeltaGeneration(key, Path.Combine(_cache.TempDirectory, $"{key.From[..16]}-{key.To[..16]}-{key.FormatName}-{key.LevelName}-{Guid.NewGuid():N}.part"));

        // Created now, empty, so that readers joining before the generator starts can open it.
        File.WriteAllBytes(generation.TempPath, []);
        var task = Task.Run(() => RunAsync(generation, normalizedCodecs));
        _running.TryAdd(task, 0);
        _ = task.ContinueWith(t => _running.TryRemove(t, out _), TaskScheduler.Default);
        return generation;
    }

    private async Task RunAsync(DeltaGeneration generation, string? normalizedCodecs)
    {
        var key = generation.Key;
        var slots = key.Level == DeltaLevel.Fast ? _fastSlots : _bestSlots;
        var tempPath = generation.TempPath;
        var acquired = false;
        var committed = false;
        try
        {
            await slots.WaitAsync(_shutdown.Token).ConfigureAwait(false);
            acquired = true;
            var fromPath = _content.Find(ContentKind.Image, key.From) ?? throw new FileNotFoundException($"image {key.From} vanished");
            var toPath = _content.Find(ContentKind.Image, key.To) ?? throw new FileNotFoundException($"image {key.To} vanished");
            // Past this the device is better off with the image itself (no apply step, CDN-cacheable).
            var limit = (long)Math.Ceiling(new FileInfo(toPath).Length * _settings.MaxSizeRatio) - 1;
            var limitReason = $"{_settings.MaxSizeRatio:P0} of the target image";
            if (key.Level == DeltaLevel.Best && _cache.TryGet(key.WithLevel(DeltaLevel.Fast), out var fastEntry) && fastEntry.Length - 1 < limit)
            {
                limit = fastEntry.Length - 1;
                limitReason = "the size of the fast delta";
            }

            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            string sha256;
            long length;
            await using (var file = new FileStream(tempPath, FileMode.Open, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, 0, FileOptions.Asynchronous))
            await using (var output = new GenerationOutputStream(file, generation, limit, limitReason))
            {
                await _generator.GenerateAsync(new DeltaJob(fromPath, toPath, key.From, key.To, key.Level, normalizedCodecs, key.Format), output, _shutdown.Token).ConfigureAwait(false);
                await output.FlushAsync(_shutdown.Token).ConfigureAwait(false);
                file.Flush(flushToDisk: true);
                sha256 = output.FinishHash();
                length = output.Length;
            }

            generation.MoveTo(() => _cache.Commit(key, tempPath, sha256, length));
            committed = true;
            generation.Succeed(sha256);
            _logger.LogInformation(
                "Generated {Level} delta {From} -> {To}: {Length} bytes in {Elapsed:F2} s",
                key.LevelName,
                key.From[..12],
                key.To[..12],
                length,
                System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
        catch (DeltaNotWorthwhileException e)
        {
            _cache.MarkNone(key);
            _logger.LogInformation("No {Level} delta {From} -> {To}: {Reason}", key.LevelName, key.From[..12], key.To[..12], e.Message);
            _inFlight.TryRemove(key, out _);
            generation.Fail(e);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            if (!_shutdown.IsCancellationRequested)
            {
                _logger.LogError(e, "Generating the {Level} delta {From} -> {To} failed", key.LevelName, key.From[..12], key.To[..12]);
            }

            // Out of the registry before its readers learn of the failure: a client that retries at once
            // must start a new generation, not join this one.
            _inFlight.TryRemove(key, out _);
            generation.Fail(e);
        }
        finally
        {
            if (acquired)
            {
                slots.Release();
            }

            if (!committed)
            {
                File.Delete(tempPath);
            }

            _inFlight.TryRemove(key, out _);
        }

        if (committed && key.Level == DeltaLevel.Fast && _settings.GenerateBest && !_shutdown.IsCancellationRequested && !_cache.IsNone(key.WithLevel(DeltaLevel.Best)))
        {
            _ = Join(key.WithLevel(DeltaLevel.Best), normalizedCodecs);
        }
    }
}
