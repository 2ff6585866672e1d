using EdgeUpdater.Delta.Format;

namespace EdgeUpdater.Delta;

/// <summary>
/// The delta format versions this library handles (docs/delta-format.md), for the delta request's
/// <c>format</c> query: a device sends <see cref="Newest"/>, the server writes no newer.
/// </summary>
public static class DeltaFormatVersions
{
    /// <summary>The newest version read and written.</summary>
    public const int Newest = DeltaFormat.Version;

    /// <summary>The oldest version written (<see cref="DeltaGeneratorOptions.FormatVersion"/>).</summary>
    public const int OldestWritten = DeltaFormat.OldestWrittenVersion;

    /// <summary>The oldest version read.</summary>
    public const int OldestRead = DeltaFormat.OldestVersion;
}
