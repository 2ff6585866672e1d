namespace EdgeUpdater.Delta;

/// <summary>How the delta describes the new image.</summary>
public enum DeltaMode : byte
{
    /// <summary>Both images are SquashFS: block copies, recompression, metadata against the old tables.</summary>
    SquashFs = 1,

    /// <summary>Any bytes: chunk copies and patched literals.</summary>
    Generic = 2,
}

/// <summary>How hard the generator works.</summary>
public enum DeltaLevel : byte
{
    /// <summary>
    /// Inline on a first request: block copies, changed blocks patched on their stored bytes (in a small update,
    /// those that patch badly rebuilt as <see cref="Best"/> does), predicted metadata.
    /// </summary>
    Fast = 1,

    /// <summary>
    /// Background: patches of decompressed content with recompression on the device (in a small update, only of
    /// the blocks that patch badly on their stored bytes, as <see cref="Fast"/>).
    /// </summary>
    Best = 2,
}
