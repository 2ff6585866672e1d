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
/// <param name="FromImagePath">The image the device has (content store path).</param>
/// <param name="ToImagePath">The image it should get.</param>
/// <param name="FromSha256">Lowercase hex SHA-256 of <paramref name="FromImagePath"/> (its content address).</param>
/// <param name="ToSha256">Lowercase hex SHA-256 of <paramref name="ToImagePath"/>.</param>
/// <param name="Level">Fast or best.</param>
/// <param name="Codecs">
/// Normalized codec identities the device can recompress with: null when the request did not say
/// (no <c>codecs</c> parameter: assume the server's own), empty when the device said it has none.
/// </param>
/// <param name="Format">The delta format version to write: the newest the device reads, as far as the server writes it.</param>
internal sealed record DeltaJob(string FromImagePath, string ToImagePath, string FromSha256, string ToSha256, DeltaLevel Level, string? Codecs, int Format);

/// <summary>
/// Writes the delta between two images, streaming, to <c>output</c>. The seam to the delta library
/// (<see cref="LibraryDeltaGenerator"/>; tests put a stand-in here to count, hold and fail
/// generations); the server counts on nothing but "bytes written, then the task completes, or it throws".
/// </summary>
internal interface IDeltaGenerator
{
    /// <summary>Generates the delta. A throw means the output is garbage and is discarded.</summary>
    Task GenerateAsync(DeltaJob job, Stream output, CancellationToken cancellationToken = default);

    /// <summary>
    /// Work that makes later deltas to a newly published image cheaper (the real generator proves which of
    /// its blocks recompress exactly). Only a saving: a throw is logged, nothing else depends on it.
    /// </summary>
    /// <returns>What the image's record holds then, for the log; null when nothing was proved.</returns>
    Task<TargetPreparation?> PrepareTargetAsync(string imagePath, string imageSha256, CancellationToken cancellationToken = default);
}

/// <summary>
/// An image prepared as a delta target: of its <paramref name="Blocks"/> compressed blocks,
/// <paramref name="Reproducing"/> recompress to their stored bytes and can be rebuilt on devices; the others
/// go literally in every delta to it.
/// </summary>
internal sealed record TargetPreparation(int Blocks, int Reproducing);
