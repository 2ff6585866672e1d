using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Delta.Tests;

/// <summary>One way of running mksquashfs for a pair.</summary>
public sealed record ImageVariant(string Name, string Compressor, params string[] Arguments)
{
    public override string ToString() => Name;
}

/// <summary>
/// Three source trees built once per test assembly and their mksquashfs images per variant:
/// A (the rich tree plus a small distribution-like part), B (A with every kind of change) and C (B with one
/// line of one config file edited).
/// </summary>
public sealed class DeltaImages : IAsyncLifetime
{
    public static readonly ImageVariant[] Variants =
    [
        new("gzip", "gzip"),
        new("gzip-4k-no-fragments", "gzip", "-b", "4096", "-no-fragments"),
        new("gzip-uncompressed", "gzip", "-noI", "-noD", "-noF", "-noX"),
        new("xz", "xz"),
        new("xz-64k-always-fragments", "xz", "-b", "65536", "-always-use-fragments"),
        new("zstd-1m", "zstd", "-b", "1M"),
        new("lz4", "lz4"),
        new("zstd-no-xattrs-no-exports", "zstd", "-no-xattrs", "-no-exports"),
    ];

    private readonly TempDirectory _temp = new("delta-images");
    private readonly Dictionary<string, string> _images = [];
    private readonly SemaphoreSlim _lock = new(1, 1);

    public string TreeA => _temp.Combine("A");

    public string TreeB => _temp.Combine("B");

    public string TreeC => _temp.Combine("C");

    public bool Privileged { get; private set; }

    public async ValueTask InitializeAsync()
    {
        Privileged = Privileges.IsRoot;
        Directory.CreateDirectory(TreeA);
        var a = TestTreeBuilder.Rich(TreeA, Privileged);
        a.Directory("usr/lib")
            .File("usr/lib/libfoo.so.1.2.3", 300_000, 21, mode: 0x1ED)
            .File("etc/login.defs", Text(12_000, 22))
            .Directory("usr/share")
            .Directory("usr/share/doc");
        for (var i = 0; i < 60; i++)
        {
            a.File($"usr/share/doc/readme-{i:D2}.txt", Text(200 + (i * 97 % 3000), 300 + i));
        }

        await a.BuildAsync();
        await ExternalTool.RunCheckedAsync("cp", ["-a", TreeA, TreeB]);
        await EditBAsync();
        await ExternalTool.RunCheckedAsync("cp", ["-a", TreeB, TreeC]);
        var defs = Path.Combine(TreeC, "etc/login.defs");
        var text = await File.ReadAllTextAsync(defs);
        await File.WriteAllTextAsync(defs, text.Replace("line 0010", "line 0010 edited", StringComparison.Ordinal));
        await ExternalTool.RunCheckedAsync("touch", ["-h", "-m", "-d", "@1700000000", defs]);
    }

    /// <summary>Every kind of change between A and B.</summary>
    private async Task EditBAsync()
    {
        string B(string relative) => Path.Combine(TreeB, relative);

        // Small edit, rewrite, growth, shrink, empty.
        var config = await File.ReadAllBytesAsync(B("etc/config.json"));
        config[100] ^= 0x55;
        await File.WriteAllBytesAsync(B("etc/config.json"), config);
        await File.WriteAllBytesAsync(B("usr/bin/exact"), TestTreeBuilder.Content(131072 * 2, 999));
        var lib = await File.ReadAllBytesAsync(B("usr/lib/libfoo.so.1.2.3"));
        File.Delete(B("usr/lib/libfoo.so.1.2.3"));
        lib[1000] ^= 1;
        lib[200_000] ^= 1;
        await File.WriteAllBytesAsync(B("usr/lib/libfoo.so.1.2.4"), [.. lib, .. TestTreeBuilder.Content(5000, 23)]);
        await File.WriteAllBytesAsync(B("var/lib/many-010"), []);
        await File.AppendAllTextAsync(B("usr/share/doc/readme-05.txt"), "appended line\n");
        await File.WriteAllTextAsync(B("usr/share/doc/readme-06.txt"), "short now\n");

        // Added, removed, renamed, moved.
        await File.WriteAllBytesAsync(B("usr/bin/newtool"), TestTreeBuilder.Content(200_000, 24));
        await File.WriteAllBytesAsync(B("etc/new-empty"), []);
        File.Delete(B("var/lib/many-200"));
        File.Move(B("var/lib/big"), B("var/lib/big-renamed"));
        Directory.CreateDirectory(B("opt"));
        File.Move(B("usr/share.txt"), B("opt/share.txt"));
        File.Delete(B("usr/share-link.txt"));

        // Metadata-only changes: permissions, symlink target, hard link, xattr, sparse data.
        TestTreeBuilder.Chmod(B("etc/hostname"), 0x180);
        File.Delete(B("usr/dangling"));
        File.CreateSymbolicLink(B("usr/dangling"), "../elsewhere");
        await ExternalTool.RunCheckedAsync("ln", [B("usr/bin/newtool"), B("usr/bin/newtool-link")]);
        await ExternalTool.RunCheckedAsync("setfattr", ["-h", "-n", "user.comment", "-v", "changed", B("etc/hostname")]);
        await using (var sparse = new FileStream(B("var/lib/sparse.img"), FileMode.Open))
        {
            sparse.Position = 131072 * 5;
            sparse.Write(TestTreeBuilder.Content(3000, 25));
        }

        if (Privileged)
        {
            await ExternalTool.RunCheckedAsync("chown", ["-h", "2000:2000", B("etc/config.json")]);
            await ExternalTool.RunCheckedAsync("setfattr", ["-h", "-x", "security.capability", B("usr/bin/tool")]);
        }
    }

    /// <summary>Text-like content with numbered lines (a config file or document).</summary>
    public static byte[] Text(int size, int seed)
    {
        var random = new Random(seed);
        var builder = new System.Text.StringBuilder();
        for (var line = 0; builder.Length < size; line++)
        {
            builder.Append(System.Globalization.CultureInfo.InvariantCulture, $"line {line:D4} {random.Next(100000)} setting_{random.Next(50)} = value {random.Next(1000)}\n");
        }

        return System.Text.Encoding.ASCII.GetBytes(builder.ToString(0, size));
    }

    /// <summary>
    /// Table-like content: 16-byte records, each the one before with <paramref name="changes"/> bytes changed.
    /// Compressors shrink it to a quarter or less and leave short repeats in their output (the same codes at
    /// the same bit offsets): deflate with 1 change, zstd with 2, LZ4 with both.
    /// </summary>
    public static byte[] Records(int size, int seed, int changes)
    {
        var random = new Random(seed);
        var content = new byte[size];
        random.NextBytes(content.AsSpan(0, Math.Min(16, size)));
        for (var i = 16; i < size; i += 16)
        {
            var record = content.AsSpan(i, Math.Min(16, size - i));
            content.AsSpan(i - 16, record.Length).CopyTo(record);
            for (var c = 0; c < changes; c++)
            {
                record[random.Next(record.Length)] = (byte)random.Next(256);
            }
        }

        return content;
    }

    /// <summary>The bytes of <see cref="GetImageAsync"/>'s image.</summary>
    public async Task<byte[]> ReadImageAsync(string tree, ImageVariant variant) => await File.ReadAllBytesAsync(await GetImageAsync(tree, variant));

    /// <summary>The image of <paramref name="tree"/> ("A", "B" or "C") for a variant, built on first use.</summary>
    public async Task<string> GetImageAsync(string tree, ImageVariant variant)
    {
        await _lock.WaitAsync();
        try
        {
            var key = tree + "-" + variant.Name;
            if (_images.TryGetValue(key, out var existing))
            {
                return existing;
            }

            var image = _temp.Combine(key + ".sqfs");
            var source = tree switch { "A" => TreeA, "B" => TreeB, _ => TreeC };
            await ExternalTool.RunCheckedAsync("mksquashfs", [source, image, "-comp", variant.Compressor, "-noappend", "-no-progress", "-quiet", "-processors", "2", "-mkfs-time", "1600000000", .. variant.Arguments], TimeSpan.FromMinutes(2));
            _images[key] = image;
            return image;
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>The image of <paramref name="tree"/> written by this project's SquashFS writer, built on first use.</summary>
    public async Task<string> GetWriterImageAsync(string tree, string compressor, bool fragments = true)
    {
        await _lock.WaitAsync();
        try
        {
            var key = $"{tree}-writer-{compressor}-{(fragments ? "frag" : "nofrag")}";
            if (_images.TryGetValue(key, out var existing))
            {
                return existing;
            }

            var image = _temp.Combine(key + ".sqfs");
            var source = tree switch { "A" => TreeA, "B" => TreeB, _ => TreeC };
            var id = compressor switch { "xz" => SquashFs.Format.CompressorId.Xz, "zstd" => SquashFs.Format.CompressorId.Zstd, "lz4" => SquashFs.Format.CompressorId.Lz4, _ => SquashFs.Format.CompressorId.Gzip };
            await SquashFs.Writer.SquashFsWriter.WriteAsync(source, image, new SquashFs.Writer.SquashFsWriterOptions
            {
                Compressor = SquashFs.Compression.CompressorOptions.Default(id),
                Fragments = fragments,
                FixedTimestamp = 1_600_000_000,
                Parallelism = 2,
            });
            _images[key] = image;
            return image;
        }
        finally
        {
            _lock.Release();
        }
    }

    public string NewPath(string name) => _temp.Combine(name + "-" + Guid.NewGuid().ToString("N")[..8]);

    /// <summary>A new delta file from A to B of <paramref name="variant"/> at <paramref name="level"/>, with the images' paths.</summary>
    public async Task<(string A, string B, string Delta)> WriteDeltaAsync(ImageVariant variant, DeltaLevel level, string from = "A", string to = "B")
    {
        var a = await GetImageAsync(from, variant);
        var b = await GetImageAsync(to, variant);
        var delta = NewPath($"{variant.Name}-{level}-{from}{to}.delta");
        await using (var stream = File.Create(delta))
        {
            await DeltaGenerator.GenerateAsync(a, b, stream, new DeltaGeneratorOptions { Level = level, MaxParallelism = 2 });
        }

        return (a, b, delta);
    }

    public ValueTask DisposeAsync()
    {
        _temp.Dispose();
        _lock.Dispose();
        return ValueTask.CompletedTask;
    }
}

[CollectionDefinition(Name)]
public sealed class DeltaImagesGroup : ICollectionFixture<DeltaImages>
{
    public const string Name = "delta images";
}
