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

    public static void AssertSameImage(byte[] expected, byte[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        var index = expected.AsSpan().CommonPrefixLength(actual);
        Assert.True(index == expected.Length, $"images differ first at offset {index}");
    }
}
