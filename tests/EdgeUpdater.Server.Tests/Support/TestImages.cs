using System.Security.Cryptography;
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
        var tree = workspace.Combine($"tree-{name}-{version}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(System.IO.Path.Combine(tree, "root", "etc"));
        await File.WriteAllTextAsync(System.IO.Path.Combine(tree, "config.json"), $$"""{"name": "{{name}}", "version": "{{version}}"}""");
        var data = new byte[randomBytes];
        new Random(seed).NextBytes(data);
        await File.WriteAllBytesAsync(System.IO.Path.Combine(tree, "root", "data.bin"), data);
        await File.WriteAllTextAsync(System.IO.Path.Combine(tree, "root", "etc", "version"), version + "\n");
        foreach (var (path, content) in files ?? new Dictionary<string, string>())
        {
            var full = System.IO.Path.Combine(tree, "root", path);
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
            await File.WriteAllTextAsync(full, content);
        }

        var image = workspace.Combine($"{name}-{version}-{Guid.NewGuid():N}.sqfs");
        await ExternalTool.RunCheckedAsync("mksquashfs", [tree, image, "-noappend", "-all-root", "-mkfs-time", "0", "-all-time", "0", "-comp", "gzip", "-quiet", "-no-progress"]);
        return await DescribeAsync(image, name, version);
    }

    public static async Task<TestImage> DescribeAsync(string path, string name, string version)
    {
        await using var stream = File.OpenRead(path);
        var sha = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream));
        return new TestImage(path, sha, new FileInfo(path).Length, name, version);
    }
}
