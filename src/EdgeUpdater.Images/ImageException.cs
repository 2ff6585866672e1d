namespace EdgeUpdater.Images;

/// <summary>What kind of problem an <see cref="ImageException"/> reports.</summary>
public enum ImageErrorCategory
{
    /// <summary>config.json is not valid JSON or breaks the schema.</summary>
    InvalidConfig,

    /// <summary>The image is not laid out as config.json + root/.</summary>
    InvalidLayout,

    /// <summary>An input file or directory is missing.</summary>
    NotFound,
}

/// <summary>The one exception family of EdgeUpdater.Images. Config errors list every problem with its JSON path.</summary>
public class ImageException : Exception
{
    /// <summary>Creates an exception.</summary>
    public ImageException(ImageErrorCategory category, string message, IReadOnlyList<string>? errors = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Category = category;
        Errors = errors ?? [message];
    }

    /// <summary>Creates an <see cref="ImageErrorCategory.InvalidConfig"/> exception.</summary>
    public ImageException()
        : this(ImageErrorCategory.InvalidConfig, "The image is invalid.")
    {
    }

    /// <summary>Creates an <see cref="ImageErrorCategory.InvalidConfig"/> exception.</summary>
    public ImageException(string message)
        : this(ImageErrorCategory.InvalidConfig, message)
    {
    }

    /// <summary>Creates an <see cref="ImageErrorCategory.InvalidConfig"/> exception with a cause.</summary>
    public ImageException(string message, Exception innerException)
        : this(ImageErrorCategory.InvalidConfig, message, null, innerException)
    {
    }

    /// <summary>What kind of problem this is.</summary>
    public ImageErrorCategory Category { get; }

    /// <summary>Every problem found, each naming its JSON path or image path.</summary>
    public IReadOnlyList<string> Errors { get; }
}
