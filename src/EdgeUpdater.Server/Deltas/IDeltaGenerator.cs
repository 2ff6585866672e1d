namespace EdgeUpdater.Server.Deltas;

/// <summary>The two levels of a delta (see the delta format): quick to make, or small.</summary>
internal enum DeltaLevel
{
    /// <summary>Generated inline for the first request; low time to first byte.</summary>
    Fast,

    /// <summary>Generated in the background, then served to every later request.</summary>
    Best,
}

/// <summary>One delta to generate.</summary>
/// <param name="FromImagePath">The image the device has.</param>
/// <param name="ToImagePath">The image it should get.</param>
/// <param name="Level">Fast or best.</param>
/// <param name="Codecs">Normalized codec identities the device can recompress with ("" when not given).</param>
internal sealed record DeltaJob(string FromImagePath, string ToImagePath, DeltaLevel Level, string Codecs);

/// <summary>
/// Writes the delta between two images, streaming, to <c>output</c>. The seam to the delta library;
/// the server counts on nothing but "bytes written, then the task completes, or it throws".
/// </summary>
internal interface IDeltaGenerator
{
    /// <summary>False when this build cannot generate deltas; devices are then told to fetch full images.</summary>
    bool IsAvailable { get; }

    /// <summary>Generates the delta. A throw means the output is garbage and is discarded.</summary>
    Task GenerateAsync(DeltaJob job, Stream output, CancellationToken cancellationToken = default);
}

/// <summary>Stand-in until the delta library is wired: every delta request answers 404 <c>delta-unavailable</c>.</summary>
internal sealed class UnavailableDeltaGenerator : IDeltaGenerator
{
    public bool IsAvailable => false;

    public Task GenerateAsync(DeltaJob job, Stream output, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("this server build has no delta generator");
}
