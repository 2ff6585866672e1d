namespace EdgeUpdater.Delta;

/// <summary>What kind of problem a <see cref="DeltaException"/> reports.</summary>
public enum DeltaErrorCategory
{
    /// <summary>The delta contradicts its format: a bad magic, a checksum that does not match, an impossible value.</summary>
    Corrupted,

    /// <summary>The delta ended before its end marker.</summary>
    Truncated,

    /// <summary>The delta was made with a format version this library does not read.</summary>
    UnsupportedVersion,

    /// <summary>The base image is not the one the delta was made from (size or SHA-256 differ).</summary>
    WrongBase,

    /// <summary>An operation points outside the base image, past the new image's size or outside a buffer.</summary>
    OutOfBounds,

    /// <summary>A length or count is larger than the format allows, or arithmetic on it would overflow.</summary>
    Overflow,

    /// <summary>The delta needs recompression with a codec whose identity differs from this device's.</summary>
    CodecMismatch,

    /// <summary>The rebuilt image does not have the SHA-256 the delta promises.</summary>
    VerificationFailed,

    /// <summary>A resume checkpoint does not belong to this delta or output.</summary>
    CheckpointMismatch,

    /// <summary>An input cannot be handled (a native library is missing, an option is invalid).</summary>
    Unsupported,

    /// <summary>
    /// The output has no room for the new image: its file system is full, over quota or cannot hold a file
    /// that large, or the block device is smaller than the image. Nothing else is lost: the base is only
    /// read, and the checkpoint (when there is one) still lets the apply resume once there is room.
    /// </summary>
    OutputFull,

    /// <summary>
    /// The delta rebuilds another image than the one the caller expects (<see cref="DeltaApplyOptions.ExpectedTarget"/>):
    /// refused from its header, before anything is written.
    /// </summary>
    WrongTarget,
}

/// <summary>
/// The one exception family of EdgeUpdater.Delta. The message says what was expected, what was found
/// and where (delta offset, section, image offset).
/// </summary>
public class DeltaException : Exception
{
    /// <summary>Creates an exception with a category and message.</summary>
    public DeltaException(DeltaErrorCategory category, string message)
        : base(message)
    {
        Category = category;
    }

    /// <summary>Creates an exception with a category, message and cause.</summary>
    public DeltaException(DeltaErrorCategory category, string message, Exception? innerException)
        : base(message, innerException)
    {
        Category = category;
    }

    /// <summary>Creates a <see cref="DeltaErrorCategory.Corrupted"/> exception.</summary>
    public DeltaException()
        : this(DeltaErrorCategory.Corrupted, "The delta is invalid.")
    {
    }

    /// <summary>Creates a <see cref="DeltaErrorCategory.Corrupted"/> exception.</summary>
    public DeltaException(string message)
        : this(DeltaErrorCategory.Corrupted, message)
    {
    }

    /// <summary>Creates a <see cref="DeltaErrorCategory.Corrupted"/> exception with a cause.</summary>
    public DeltaException(string message, Exception innerException)
        : this(DeltaErrorCategory.Corrupted, message, innerException)
    {
    }

    /// <summary>What kind of problem this is.</summary>
    public DeltaErrorCategory Category { get; }

    internal static DeltaException Corrupted(string message) => new(DeltaErrorCategory.Corrupted, message);

    internal static DeltaException Truncated(string message) => new(DeltaErrorCategory.Truncated, message);

    internal static DeltaException OutOfBounds(string message) => new(DeltaErrorCategory.OutOfBounds, message);

    internal static DeltaException Overflow(string message) => new(DeltaErrorCategory.Overflow, message);
}
