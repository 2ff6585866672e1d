using EdgeUpdater.Delta;
using EdgeUpdater.Server.Hosting;

namespace EdgeUpdater.Server.Deltas;

/// <summary>
/// The real generator: <see cref="DeltaGenerator"/> of EdgeUpdater.Delta over the content store's image
/// files, written section by section into the output as it goes (which is what lets the first
/// requester read a <c>fast</c> delta while it is made). The images' SHA-256 are their content
/// addresses, so the library is told them instead of hashing both images again. Each generation shares
/// the target image's <see cref="ReproductionRecord"/>, so recompression is proved once per image.
/// </summary>
internal sealed class LibraryDeltaGenerator : IDeltaGenerator
{
    private readonly DeltaSettings _settings;
    private readonly ReproductionRecords _records;

    public LibraryDeltaGenerator(ServerOptions options, ReproductionRecords records)
    {
        _settings = options.Deltas;
        _records = records;
    }

    public async Task GenerateAsync(DeltaJob job, Stream output, CancellationToken cancellationToken = default)
    {
        var options = new DeltaGeneratorOptions
        {
            Level = job.Level == DeltaLevel.Fast ? Delta.DeltaLevel.Fast : Delta.DeltaLevel.Best,
            DeviceCodecs = DeviceCodecsOf(job.Codecs),
            FormatVersion = job.Format,
            OldImageSha256 = Convert.FromHexString(job.FromSha256),
            NewImageSha256 = Convert.FromHexString(job.ToSha256),

            // Fast runs inline for a waiting device: all cores. Best runs in the background: leave
            // room for the requests (and fast generations) being served meanwhile.
            MaxParallelism = job.Level == DeltaLevel.Fast ? Environment.ProcessorCount : _settings.BestThreads,
            Reproduction = _records.For(job.ToSha256),
            MaxMetadataTableBytes = _settings.MaxMetadataTableBytes,
        };
        try
        {
            await DeltaGenerator.GenerateAsync(job.FromImagePath, job.ToImagePath, output, options, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            // Proofs made before a failure or a cancellation hold all the same.
            _records.Save(job.ToSha256);
        }
    }

    public async Task<TargetPreparation?> PrepareTargetAsync(string imagePath, string imageSha256, CancellationToken cancellationToken = default)
    {
        try
        {
            var record = _records.For(imageSha256);
            await ReproductionProver.ProveAsync(imagePath, record, _settings.BestThreads, Convert.FromHexString(imageSha256), cancellationToken).ConfigureAwait(false);
            return new TargetPreparation(record.Count, record.ReproducingCount);
        }
        finally
        {
            _records.Save(imageSha256);
        }
    }

    /// <summary>
    /// The request's normalized <c>codecs</c> as the library wants them: null (not given) means "the
    /// server's own codecs", an empty list means "the device has none: literals only".
    /// </summary>
    internal static IReadOnlyCollection<string>? DeviceCodecsOf(string? normalizedCodecs) =>
        normalizedCodecs is null ? null : DeltaCodecs.Parse(normalizedCodecs);
}
