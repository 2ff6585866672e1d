using System.Text.Json.Nodes;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Agent.Tests.Fixtures;

/// <summary>What goes into a test image.</summary>
internal sealed record TestImageOptions
{
    public string Name { get; init; } = "demo";

    public required string Version { get; init; }

    public string Kind { get; init; } = "app";

    /// <summary>Loopback port the busybox httpd workload listens on (and the HTTP health probe asks).</summary>
    public int HttpPort { get; init; }

    /// <summary>The health check object of config.json; null gives an HTTP probe of the workload.</summary>
    public JsonObject? HealthCheck { get; init; }

    /// <summary>Bytes of incompressible filler, to make the image large enough for download checkpoints.</summary>
    public int FillerBytes { get; init; }

    /// <summary>Bytes of incompressible filler that are the same in every version (what a delta copies from the old image).</summary>
    public int SharedFillerBytes { get; init; }

    public string User { get; init; } = "app";

    /// <summary>Entrypoint; null runs httpd after recording the boot in the /data volume.</summary>
    public string[]? Entrypoint { get; init; }
}

/// <summary>Builds small EdgeUpdater images (config.json per docs/image-config.md + root/) with mksquashfs, around busybox.</summary>
internal static class TestImages
{
    public const string Busybox = "/bin/busybox";

    public static JsonObject HttpHealth(int port, int deadlineSeconds = 20) => new()
    {
        ["type"] = "http",
        ["url"] = $"http://127.0.0.1:{port}/version.txt",
        ["intervalSeconds"] = 1,
        ["timeoutSeconds"] = 2,
        ["deadlineSeconds"] = deadlineSeconds,
    };

    public static JsonObject FailingCommandHealth(int deadlineSeconds = 3) => new()
    {
        ["type"] = "command",
        ["command"] = new JsonArray("/bin/sh", "-c", "exit 1"),
        ["intervalSeconds"] = 1,
        ["deadlineSeconds"] = deadlineSeconds,
    };

    /// <summary>
    /// Copies a program into the image with the shared libraries ldd lists (none for busybox-static,
    /// libc and the loader for Debian's dynamic busybox), so that it runs chrooted either way.
    /// </summary>
    private static async Task CopyWithLibrariesAsync(string program, string root, string destination)
    {
        File.Copy(program, Path.Combine(root, destination));
        var ldd = await ExternalTool.RunAsync("ldd", [program]);
        foreach (var line in ldd.StandardOutput.Split('\n'))
        {
            var library = line.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries).FirstOrDefault(w => w.StartsWith('/'));
            if (library is null)
            {
                continue;
            }

            var target = Path.Combine(root, library.TrimStart('/'));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            if (!File.Exists(target))
            {
                File.Copy(library, target);
            }
        }
    }

    public static async Task<string> BuildAsync(string directory, TestImageOptions options)
    {
        if (!File.Exists(Busybox))
        {
            Assert.Fail("busybox is not installed (/bin/busybox); scripts/test.sh installs it.");
        }

        var source = Path.Combine(directory, $"src-{options.Name}-{options.Version}");
        var root = Path.Combine(source, "root");
        foreach (var dir in new[] { "bin", "www", "etc", "proc", "dev", "tmp", "data" })
        {
            Directory.CreateDirectory(Path.Combine(root, dir));
        }

        await CopyWithLibrariesAsync(Busybox, root, "bin/busybox");
        File.CreateSymbolicLink(Path.Combine(root, "bin/sh"), "busybox");
        await File.WriteAllTextAsync(Path.Combine(root, "www/version.txt"), options.Version);
        await File.WriteAllTextAsync(Path.Combine(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/data:/bin/sh\n");
        await File.WriteAllTextAsync(Path.Combine(root, "etc/group"), "root:x:0:\napp:x:1000:\nextra:x:1001:app\n");
        File.SetUnixFileMode(Path.Combine(root, "tmp"), (UnixFileMode)Convert.ToInt32("1777", 8));
        if (options.FillerBytes > 0)
        {
            var filler = new byte[options.FillerBytes];
            // Seeded by the version's bytes (string.GetHashCode differs per process): the same image every run.
            new Random(BitConverter.ToInt32(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(options.Version)))).NextBytes(filler);
            await File.WriteAllBytesAsync(Path.Combine(root, "www/filler.bin"), filler);
        }

        if (options.SharedFillerBytes > 0)
        {
            var shared = new byte[options.SharedFillerBytes];
            new Random(20261127).NextBytes(shared);
            await File.WriteAllBytesAsync(Path.Combine(root, "www/shared.bin"), shared);
        }

        var entrypoint = options.Entrypoint ??
        [
            "/bin/sh", "-c",
            $"echo \"$VERSION $(/bin/busybox id -u)\" >> /data/boots; exec /bin/busybox httpd -f -p 127.0.0.1:{options.HttpPort} -h /www",
        ];
        var config = new JsonObject
        {
            ["schemaVersion"] = 1,
            ["name"] = options.Name,
            ["version"] = options.Version,
            ["target"] = options.Kind,
            ["entrypoint"] = new JsonArray([.. entrypoint.Select(e => (JsonNode)e)]),
            ["env"] = new JsonObject { ["VERSION"] = options.Version },
            ["workingDir"] = "/",
            ["user"] = options.User,
            ["volumes"] = new JsonArray(new JsonObject { ["name"] = "data", ["path"] = "/data" }),
            ["healthCheck"] = options.HealthCheck?.DeepClone() ?? HttpHealth(options.HttpPort),
        };
        await File.WriteAllTextAsync(Path.Combine(source, "config.json"), config.ToJsonString());
        var image = Path.Combine(directory, $"{options.Name}-{options.Version}.sqfs");
        await ExternalTool.RunCheckedAsync("mksquashfs", [source, image, "-noappend", "-quiet", "-no-progress", "-comp", "gzip", "-processors", "1"]);
        Directory.Delete(source, recursive: true);
        return image;
    }
}
