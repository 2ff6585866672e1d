using System.Security.Cryptography;
using System.Text;
using EdgeUpdater.Testing;

namespace EdgeUpdater.Server.Tests.Support;

/// <summary>An image file a test built, with its hash and size.</summary>
internal sealed record TestImage(string Path, string Sha256, long Size, string Name, string Version);

/// <summary>Builds small EdgeUpdater images (config.json + root/) with the reference mksquashfs.</summary>
internal static class TestImages
{
    /// <summary>
    /// An image whose root holds <paramref name="files"/> plus <paramref name="randomBytes"/> of
    /// incompressible data from <paramref name="seed"/> (so two versions share most blocks).
    /// </summary>
    public static async Task<TestImage> BuildAsync(
        TempDirectory workspace,
        string name,
        string version,
        int seed = 1,
        int randomBytes = 256 * 1024,
        IReadOnlyDictionary<string, string>? files = null)
    {
        var data = new byte[randomBytes];
        new Random(seed).NextBytes(data);
        var tree = new Dictionary<string, byte[]>
        {
            ["data.bin"] = data,
            ["etc/version"] = Encoding.UTF8.GetBytes(version + "\n"),
        };
        foreach (var (path, content) in files ?? new Dictionary<string, string>())
        {
            tree[path] = Encoding.UTF8.GetBytes(content);
        }

        return await BuildTreeAsync(workspace, name, version, tree);
    }

    /// <summary>
    /// Two versions of an app as a release would change it: v2 edits a few bytes in the middle of a
    /// library and a config file, adds a program and keeps the rest (a README, random data) as it is.
    /// Content is partly compressible (<see cref="TestTreeBuilder.Content"/>), so changed blocks are
    /// worth rebuilding on the device by recompression.
    /// </summary>
    public static async Task<(TestImage Old, TestImage New)> BuildReleasePairAsync(TempDirectory workspace, string name, string compressor = "gzip")
    {
        var library = TestTreeBuilder.Content(600_000, 11);
        var random = new byte[128 * 1024];
        new Random(15).NextBytes(random);
        var v1 = new Dictionary<string, byte[]>
        {
            ["usr/lib/libdemo.so"] = library,
            ["usr/share/doc/demo/README"] = TestTreeBuilder.Content(200_000, 12),
            ["usr/bin/demo"] = TestTreeBuilder.Content(300_000, 13),
            ["etc/demo.conf"] = "listen = 8080\nworkers = 4\nlog = info\n"u8.ToArray(),
            ["var/lib/demo/data.bin"] = random,
            ["etc/version"] = "1.0.0\n"u8.ToArray(),
        };
        var edited = (byte[])library.Clone();
        "patched!"u8.CopyTo(edited.AsSpan(200_000));
        "patched again"u8.CopyTo(edited.AsSpan(450_000));
        var v2 = new Dictionary<string, byte[]>(v1)
        {
            ["usr/lib/libdemo.so"] = edited,
            ["usr/bin/demo-helper"] = TestTreeBuilder.Content(100_000, 14),
            ["etc/demo.conf"] = "listen = 8080\nworkers = 8\nlog = info\n"u8.ToArray(),
            ["etc/version"] = "2.0.0\n"u8.ToArray(),
        };
        return (await BuildTreeAsync(workspace, name, "1.0.0", v1, compressor), await BuildTreeAsync(workspace, name, "2.0.0", v2, compressor));
    }

    /// <summary>An image of <c>config.json</c> + <c>root/</c> holding <paramref name="files"/> (paths below root/).</summary>
    public static async Task<TestImage> BuildTreeAsync(TempDirectory workspace, string name, string version, IReadOnlyDictionary<string, byte[]> files, string compressor = "gzip")
    {
        var tree = workspace.Combine($"tree-{name}-{version}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(System.IO.Path.Combine(tree, "root"));
        await File.WriteAllTextAsync(System.IO.Path.Combine(tree, "config.json"), $$"""{"name": "{{name}}", "version": "{{version}}"}""");
        foreach (var (path, content) in files)
        {
            var full = System.IO.Path.Combine(tree, "root", path);
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
            await File.WriteAllBytesAsync(full, content);
        }

        var image = workspace.Combine($"{name}-{version}-{Guid.NewGuid():N}.sqfs");
        await ExternalTool.RunCheckedAsync("mksquashfs", [tree, image, "-noappend", "-all-root", "-mkfs-time", "0", "-all-time", "0", "-comp", compressor, "-quiet", "-no-progress"]);
        return await DescribeAsync(image, name, version);
    }

    public static async Task<TestImage> DescribeAsync(string path, string name, string version)
    {
        await using var stream = File.OpenRead(path);
        var sha = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream));
        return new TestImage(path, sha, new FileInfo(path).Length, name, version);
    }

    /// <summary>Applies <paramref name="delta"/> to <paramref name="from"/> as the device does (<c>DeltaApplier</c>) and asserts the result is <paramref name="to"/> byte for byte.</summary>
    public static async Task AssertDeltaRebuildsAsync(TempDirectory workspace, TestImage from, TestImage to, byte[] delta)
    {
        var deltaPath = workspace.Combine($"{Guid.NewGuid():N}.eud");
        var outputPath = workspace.Combine($"{Guid.NewGuid():N}.sqfs");
        await File.WriteAllBytesAsync(deltaPath, delta);
        await EdgeUpdater.Delta.DeltaApplier.ApplyAsync(from.Path, deltaPath, outputPath);
        var expected = await File.ReadAllBytesAsync(to.Path);
        var rebuilt = await File.ReadAllBytesAsync(outputPath);
        Xunit.Assert.True(expected.AsSpan().SequenceEqual(rebuilt), "the applied delta rebuilds the new image byte for byte");
    }
}
