namespace EdgeUpdater.SquashFs;

/// <summary>What kind of problem a <see cref="SquashFsException"/> reports.</summary>
public enum SquashFsErrorCategory
{
    /// <summary>The image contradicts the format: a bad magic, an impossible value, a broken compressed block.</summary>
    Corrupted,

    /// <summary>The image is valid but uses something this library does not implement (a compressor, a version).</summary>
    Unsupported,

    /// <summary>An offset or size points outside the image or outside the table it belongs to.</summary>
    OutOfBounds,

    /// <summary>A count or size is larger than the image can hold, or arithmetic on it would overflow.</summary>
    Overflow,

    /// <summary>A structural loop (a directory that contains itself) or a walk deeper than the allowed depth.</summary>
    Loop,

    /// <summary>The per-open budget (inodes, entries, metadata bytes) was used up: the image is hostile or absurd.</summary>
    BudgetExceeded,

    /// <summary>A path or name does not exist in the image.</summary>
    NotFound,

    /// <summary>The caller asked for something the entry cannot do (open a directory as a file, ...).</summary>
    InvalidOperation,

    /// <summary>A native codec library failed or is missing.</summary>
    Codec,

    /// <summary>The writer was given an input it cannot store (a name too long, a file that changed while read).</summary>
    InvalidInput,
}

/// <summary>
/// The one exception family of EdgeUpdater.SquashFs. The message says what was expected, what was found
/// and where (image offset, table, field or path).
/// </summary>
public class SquashFsException : Exception
{
    /// <summary>Creates an exception with a category and message.</summary>
    public SquashFsException(SquashFsErrorCategory category, string message)
        : base(message)
    {
        Category = category;
    }

    /// <summary>Creates an exception with a category, message and cause.</summary>
    public SquashFsException(SquashFsErrorCategory category, string message, Exception? innerException)
        : base(message, innerException)
    {
        Category = category;
    }

    /// <summary>Creates an uncategorized (<see cref="SquashFsErrorCategory.Corrupted"/>) exception.</summary>
    public SquashFsException()
        : this(SquashFsErrorCategory.Corrupted, "The SquashFS image is invalid.")
    {
    }

    /// <summary>Creates a <see cref="SquashFsErrorCategory.Corrupted"/> exception.</summary>
    public SquashFsException(string message)
        : this(SquashFsErrorCategory.Corrupted, message)
    {
    }

    /// <summary>Creates a <see cref="SquashFsErrorCategory.Corrupted"/> exception with a cause.</summary>
    public SquashFsException(string message, Exception innerException)
        : this(SquashFsErrorCategory.Corrupted, message, innerException)
    {
    }

    /// <summary>What kind of problem this is.</summary>
    public SquashFsErrorCategory Category { get; }

    internal static SquashFsException Corrupted(string message) => new(SquashFsErrorCategory.Corrupted, message);

    internal static SquashFsException OutOfBounds(string message) => new(SquashFsErrorCategory.OutOfBounds, message);

    internal static SquashFsException Overflow(string message) => new(SquashFsErrorCategory.Overflow, message);

    internal static SquashFsException Unsupported(string message) => new(SquashFsErrorCategory.Unsupported, message);
}
