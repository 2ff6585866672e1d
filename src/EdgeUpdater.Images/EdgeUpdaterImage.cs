using EdgeUpdater.SquashFs;
using EdgeUpdater.SquashFs.IO;
using EdgeUpdater.SquashFs.Reader;

namespace EdgeUpdater.Images;

/// <summary>
/// An open EdgeUpdater image: a SquashFS image whose top level holds exactly <c>config.json</c> (a
/// regular file) and <c>root/</c> (a directory).
/// </summary>
public sealed class EdgeUpdaterImage : IDisposable
{
    /// <summary>Name of the config file at the top level.</summary>
    public const string ConfigFileName = "config.json";

    /// <summary>Name of the root file system directory at the top level.</summary>
    public const string RootDirectoryName = "root";

    private readonly bool _ownsImage;

    private EdgeUpdaterImage(SquashFsImage image, bool ownsImage, ImageConfig config, byte[] configBytes, SquashFsEntry root)
    {
        Image = image;
        _ownsImage = ownsImage;
        Config = config;
        ConfigBytes = configBytes;
        Root = root;
    }

    /// <summary>The underlying SquashFS image.</summary>
    public SquashFsImage Image { get; }

    /// <summary>The parsed, validated config.</summary>
    public ImageConfig Config { get; }

    /// <summary>config.json exactly as stored.</summary>
    public byte[] ConfigBytes { get; }

    /// <summary>The <c>/root</c> directory entry.</summary>
    public SquashFsEntry Root { get; }

    /// <summary>Opens an image file and checks its layout and config.</summary>
    public static EdgeUpdaterImage Open(string path, SquashFsReaderOptions? options = null)
    {
        var image = SquashFsImage.Open(path, options);
        try
        {
            return FromImage(image, ownsImage: true);
        }
        catch
        {
            image.Dispose();
            throw;
        }
    }

    /// <summary>Opens an image from any source.</summary>
    public static EdgeUpdaterImage Open(IImageSource source, SquashFsReaderOptions? options = null, bool leaveOpen = false)
    {
        var image = SquashFsImage.Open(source, options, leaveOpen);
        try
        {
            return FromImage(image, ownsImage: true);
        }
        catch
        {
            image.Dispose();
            throw;
        }
    }

    /// <summary>Checks the layout of an already open image; the caller keeps ownership of it.</summary>
    public static EdgeUpdaterImage FromImage(SquashFsImage image, bool ownsImage = false)
    {
        ArgumentNullException.ThrowIfNull(image);
        var top = image.Root.EnumerateChildren().ToList();
        var names = top.Select(e => e.Name).ToList();
        var config = top.FirstOrDefault(e => e.Name == ConfigFileName);
        var root = top.FirstOrDefault(e => e.Name == RootDirectoryName);
        var extra = names.Where(n => n != ConfigFileName && n != RootDirectoryName).ToList();
        if (config is null || root is null || extra.Count > 0)
        {
            var missing = new[] { config is null ? "config.json" : null, root is null ? "root/" : null }.Where(n => n is not null);
            var found = names.Count == 0 ? "nothing" : string.Join(", ", names.Select(n => "'" + n + "'"));
            var detail = string.Join("; ", new[]
            {
                missing.Any() ? "missing " + string.Join(" and ", missing) : null,
                extra.Count > 0 ? "unexpected " + string.Join(", ", extra.Select(n => "'" + n + "'")) : null,
            }.Where(s => s is not null));
            throw new ImageException(ImageErrorCategory.InvalidLayout, $"Not an EdgeUpdater image: the top level must hold exactly config.json and root/; found {found} ({detail}).");
        }

        if (!config.IsFile)
        {
            throw new ImageException(ImageErrorCategory.InvalidLayout, $"Not an EdgeUpdater image: /config.json is a {config.Kind}, not a regular file.");
        }

        if (!root.IsDirectory)
        {
            throw new ImageException(ImageErrorCategory.InvalidLayout, $"Not an EdgeUpdater image: /root is a {root.Kind}, not a directory.");
        }

        if (config.Size > ImageConfigReader.MaxConfigBytes)
        {
            throw new ImageException(ImageErrorCategory.InvalidConfig, $"/config.json is {config.Size} bytes; at most {ImageConfigReader.MaxConfigBytes} are allowed.");
        }

        var bytes = new byte[config.Size];
        using (var stream = config.OpenRead())
        {
            stream.ReadExactly(bytes);
        }

        return new EdgeUpdaterImage(image, ownsImage, ImageConfigReader.Parse(bytes), bytes, root);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsImage)
        {
            Image.Dispose();
        }
    }
}
