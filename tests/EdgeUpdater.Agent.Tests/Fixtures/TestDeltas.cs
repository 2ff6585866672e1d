using System.Security.Cryptography;
using EdgeUpdater.Delta;

namespace EdgeUpdater.Agent.Tests.Fixtures;

/// <summary>Deltas between test images, made with EdgeUpdater.Delta's generator as the server makes them, and damaged copies of them.</summary>
internal static class TestDeltas
{
    public static async Task<string> CreateAsync(string from, string to, string output, DeltaLevel level = DeltaLevel.Best)
    {
        await using (var stream = File.Create(output))
        {
            await DeltaGenerator.GenerateAsync(from, to, stream, new DeltaGeneratorOptions { Level = level, MaxParallelism = 1 });
        }

        return output;
    }

    public static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>A copy with a run of bytes inverted in the middle (inside a section: its checksum no longer matches).</summary>
    public static async Task<string> FlipBytesAsync(string delta)
    {
        var bytes = await File.ReadAllBytesAsync(delta);
        for (var i = bytes.Length / 2; i < bytes.Length / 2 + 8; i++)
        {
            bytes[i] ^= 0xff;
        }

        var output = delta + ".flipped";
        await File.WriteAllBytesAsync(output, bytes);
        return output;
    }

    /// <summary>A copy cut to its first half (served as if complete).</summary>
    public static async Task<string> TruncateAsync(string delta)
    {
        var bytes = await File.ReadAllBytesAsync(delta);
        var output = delta + ".truncated";
        await File.WriteAllBytesAsync(output, bytes.AsMemory(0, bytes.Length / 2));
        return output;
    }
}
