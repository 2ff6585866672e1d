using EdgeUpdater.SquashFs.IO;
using Xunit;

namespace EdgeUpdater.Delta.Tests;

/// <summary>Generate and apply in memory, for tests.</summary>
public static class DeltaTestKit
{
    public static async Task<(byte[] Delta, DeltaGenerationResult Result)> GenerateAsync(byte[] oldImage, byte[] newImage, DeltaGeneratorOptions? options = null)
    {
        using var output = new MemoryStream();
        using var oldSource = new MemoryImageSource(oldImage);
        using var newSource = new MemoryImageSource(newImage);
        var result = await DeltaGenerator.GenerateAsync(oldSource, newSource, output, options ?? new DeltaGeneratorOptions { MaxParallelism = 2 });
        return (output.ToArray(), result);
    }

    public static async Task<byte[]> ApplyAsync(byte[] oldImage, byte[] delta, DeltaApplyOptions? options = null, CancellationToken cancellationToken = default)
    {
        using var oldSource = new MemoryImageSource(oldImage);
        using var input = new MemoryStream(delta, writable: false);
        using var output = new MemoryStream();
        using (var sink = new StreamImageSink(output, leaveOpen: true))
        {
            await DeltaApplier.ApplyAsync(oldSource, input, sink, options ?? new DeltaApplyOptions { MaxParallelism = 2 }, cancellationToken);
        }

        return output.ToArray();
    }

    /// <summary>Every section of a delta before its end section, decoded: where it lies and its payload.</summary>
    internal static async Task<List<(long Offset, long StoredLength, Format.SectionKind Kind, byte[] Payload)>> SectionsAsync(byte[] delta)
    {
        using var stream = new MemoryStream(delta, writable: false);
        var (_, headerLength) = await DeltaHeader.ReadAsync(stream, CancellationToken.None);
        using var reader = new Format.SectionReader(stream, headerLength);
        var sections = new List<(long, long, Format.SectionKind, byte[])>();
        while (true)
        {
            var section = await reader.ReadAsync(CancellationToken.None);
            if (section.Kind == Format.SectionKind.End)
            {
                return sections;
            }

            sections.Add((section.DeltaOffset, section.StoredLength, section.Kind, section.Payload.AsSpan(0, section.Length).ToArray()));
        }
    }

    /// <summary>The heads of a delta's content sections (coder, content length, reference items), in delta order.</summary>
    internal static async Task<List<Delta.Generation.ContentFrameHead>> FrameHeadsAsync(byte[] delta) =>
        [.. (await FramesAsync(delta)).Select(f => f.Head)];

    /// <summary>Every content frame of <paramref name="delta"/>: its head and its coded bytes.</summary>
    internal static async Task<List<(Delta.Generation.ContentFrameHead Head, byte[] Frame)>> FramesAsync(byte[] delta)
    {
        var (header, _) = await DeltaHeader.ReadAsync(new MemoryStream(delta, writable: false), CancellationToken.None);
        var frames = new List<(Delta.Generation.ContentFrameHead, byte[])>();
        foreach (var section in (await SectionsAsync(delta)).Where(s => s.Kind == Format.SectionKind.Content))
        {
            var bytes = new Format.ByteReader(section.Payload, "content section");
            var head = Delta.Generation.ContentFrame.ReadHead(ref bytes, header.Version, header.BaseSize, header.BlockSize);
            frames.Add((head, bytes.Blob(section.Payload.Length, "frame").ToArray()));
        }

        return frames;
    }

    /// <summary>Creates tree <c>A</c> (one 20 KB config file) under <paramref name="temp"/> and tree <c>B</c> as its copy; returns B's path, for the test to change.</summary>
    internal static async Task<string> StartPairAsync(Testing.TempDirectory temp)
    {
        var a = temp.Combine("A");
        Directory.CreateDirectory(Path.Combine(a, "etc"));
        await File.WriteAllBytesAsync(Path.Combine(a, "etc", "base.conf"), DeltaImages.Text(20_000, 1));
        var b = temp.Combine("B");
        await Testing.ExternalTool.RunCheckedAsync("cp", ["-a", a, b]);
        return b;
    }

    /// <summary>Squashes the trees <c>A</c> and <c>B</c> under <paramref name="temp"/> with <paramref name="compressor"/> (fixed times); returns the two images.</summary>
    internal static async Task<(byte[] A, byte[] B)> SquashPairAsync(Testing.TempDirectory temp, string compressor)
    {
        foreach (var tree in new[] { "A", "B" })
        {
            await Testing.ExternalTool.RunCheckedAsync("mksquashfs", [temp.Combine(tree), temp.Combine(tree + ".sqfs"), "-comp", compressor, "-noappend", "-no-progress", "-quiet", "-processors", "2", "-mkfs-time", "1600000000", "-all-time", "1600000000"], TimeSpan.FromMinutes(1));
        }

        return (await File.ReadAllBytesAsync(temp.Combine("A.sqfs")), await File.ReadAllBytesAsync(temp.Combine("B.sqfs")));
    }

    public static void AssertSameImage(byte[] expected, byte[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        var index = expected.AsSpan().CommonPrefixLength(actual);
        Assert.True(index == expected.Length, $"images differ first at offset {index}");
    }
}
