namespace EdgeUpdater.Agent.Install;

/// <summary>A delta that cannot be applied (corrupt, wrong base): the agent falls back to the full image.</summary>
internal sealed class DeltaApplyException : Exception
{
    public DeltaApplyException(string message)
        : base(message)
    {
    }

    public DeltaApplyException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public DeltaApplyException()
    {
    }
}

/// <summary>
/// Seam to EdgeUpdater.Delta (issue 7): rebuild the new image into the inactive slot from the active
/// slot's image and a delta, streamed. Until the library lands no implementation is registered and the
/// agent always downloads the full image.
/// </summary>
internal interface IDeltaApplier
{
    /// <summary>Codec identities for the delta request's <c>codecs</c> query.</summary>
    string Codecs { get; }

    /// <summary>Writes the image rebuilt from <paramref name="baseImagePath"/> and <paramref name="deltaPath"/> to the start of <paramref name="outputPath"/>, fsync'd.</summary>
    Task ApplyAsync(string baseImagePath, long baseImageLength, string deltaPath, string outputPath, CancellationToken cancellationToken = default);
}
