using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.SquashFs.Tests;

/// <summary>One way of running mksquashfs.</summary>
public sealed record MksquashfsVariant(string Name, string Compressor, params string[] Arguments)
{
    public override string ToString() => Name;
}

/// <summary>
/// The rich source tree and one mksquashfs image per variant, built once for the whole test assembly
/// (the tree needs root for owners, devices and security xattrs; without root a reduced tree is used).
/// </summary>
public sealed class MksquashfsImages : IAsyncLifetime
{
    public static readonly MksquashfsVariant[] Variants =
    [
        new("gzip", "gzip"),
        new("gzip-level1-4k", "gzip", "-Xcompression-level", "1", "-b", "4096"),
        new("gzip-strategies", "gzip", "-Xstrategy", "default,filtered,huffman_only,run_length_encoded,fixed", "-Xwindow-size", "12"),
        new("gzip-no-fragments", "gzip", "-no-fragments"),
        new("gzip-always-fragments", "gzip", "-always-use-fragments", "-b", "1M"),
        new("gzip-uncompressed", "gzip", "-noI", "-noD", "-noF", "-noX"),
        new("gzip-no-xattrs-no-exports", "gzip", "-no-xattrs", "-no-exports", "-no-duplicates"),
        new("xz", "xz"),
        new("xz-bcj-64k", "xz", "-Xbcj", "x86,arm", "-b", "65536", "-Xdict-size", "50%"),
        new("lz4", "lz4"),
        new("lz4-hc", "lz4", "-Xhc"),
        new("zstd", "zstd"),
        new("zstd-level3-1m", "zstd", "-Xcompression-level", "3", "-b", "1M"),
        new("lzo", "lzo"),
    ];

    private readonly TempDirectory _temp = new("sqfs-mk");
    private readonly Dictionary<string, string> _images = [];
    private readonly SemaphoreSlim _lock = new(1, 1);

    public string Source => _temp.Combine("src");

    public bool Privileged { get; private set; }

    public async ValueTask InitializeAsync()
    {
        Privileged = Privileges.IsRoot;
        Directory.CreateDirectory(Source);
        await TestTreeBuilder.Rich(Source, Privileged).BuildAsync();
    }

    /// <summary>The image for a variant, built on first use.</summary>
    public async Task<string> GetImageAsync(MksquashfsVariant variant)
    {
        await _lock.WaitAsync();
        try
        {
            if (_images.TryGetValue(variant.Name, out var existing))
            {
                return existing;
            }

            var image = _temp.Combine(variant.Name + ".sqfs");
            await ExternalTool.RunCheckedAsync("mksquashfs", [Source, image, "-comp", variant.Compressor, "-noappend", "-no-progress", "-quiet", "-processors", "2", .. variant.Arguments], TimeSpan.FromMinutes(2));
            _images[variant.Name] = image;
            return image;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>A scratch directory under this fixture's temp dir.</summary>
    public string NewDirectory(string name)
    {
        var path = _temp.Combine(name + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(path);
        return path;
    }

    public ValueTask DisposeAsync()
    {
        _temp.Dispose();
        _lock.Dispose();
        return ValueTask.CompletedTask;
    }
}

[CollectionDefinition(Name)]
public sealed class MksquashfsImagesGroup : ICollectionFixture<MksquashfsImages>
{
    public const string Name = "mksquashfs images";
}
