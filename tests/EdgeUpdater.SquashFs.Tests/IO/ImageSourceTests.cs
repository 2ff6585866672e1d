using EdgeUpdater.SquashFs.IO;
using EdgeUpdater.SquashFs.Reader;
using EdgeUpdater.SquashFs.Writer;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.SquashFs.Tests.IO;

/// <summary>The file, mapped and memory sources agree byte for byte, hand out spans only when they hold the bytes, and refuse ranges outside the image.</summary>
public sealed class ImageSourceTests : IDisposable
{
    private static readonly byte[] Bytes = TestTreeBuilder.Content(300_000, 3);
    private readonly TempDirectory _dir = new();

    private string WriteFile(byte[] bytes)
    {
        var path = Path.Combine(_dir.Path, $"image-{Guid.NewGuid():N}");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void Mapped_file_and_memory_sources_read_the_same_bytes_at_every_offset()
    {
        var path = WriteFile(Bytes);
        using var mapped = MappedImageSource.TryOpen(path);
        Assert.NotNull(mapped);
        using var file = new FileImageSource(path);
        using var memory = new MemoryImageSource(Bytes);
        Assert.Equal(Bytes.Length, mapped.Length);
        var random = new Random(7);
        for (var i = 0; i < 200; i++)
        {
            var offset = random.Next(Bytes.Length);
            var length = random.Next(Bytes.Length - offset + 1);
            var a = new byte[length];
            var b = new byte[length];
            mapped.ReadAt(offset, a);
            file.ReadAt(offset, b);
            Assert.True(Bytes.AsSpan(offset, length).SequenceEqual(a));
            Assert.Equal(a, b);
            Assert.True(mapped.TryGetSpan(offset, length, out var span));
            Assert.True(span.SequenceEqual(a));
            Assert.True(memory.TryGetSpan(offset, length, out var inMemory));
            Assert.True(inMemory.SequenceEqual(a));
        }
    }

    [Fact]
    public void A_file_source_gives_no_span_and_reads_instead()
    {
        using IImageSource file = new FileImageSource(WriteFile(Bytes));
        Assert.False(file.TryGetSpan(10, 100, out var span));
        Assert.True(span.IsEmpty);
    }

    [Theory]
    [InlineData(-1L, 1)]
    [InlineData(300_000L, 1)]
    [InlineData(299_999L, 2)]
    [InlineData(0L, -1)]
    public void Ranges_outside_the_image_are_refused_by_every_source(long offset, int length)
    {
        var path = WriteFile(Bytes);
        using var mapped = MappedImageSource.TryOpen(path)!;
        using var memory = new MemoryImageSource(Bytes);
        using var file = new FileImageSource(path);
        foreach (IImageSource source in new IImageSource[] { mapped, memory, file })
        {
            var e = Assert.Throws<SquashFsException>(() => source.TryGetSpan(offset, length, out _));
            Assert.Equal(SquashFsErrorCategory.OutOfBounds, e.Category);
            if (length >= 0)
            {
                Assert.Throws<SquashFsException>(() => source.ReadAt(offset, new byte[length]));
            }
        }
    }

    [Fact]
    public void Files_without_a_length_to_map_are_left_to_the_file_source()
    {
        Assert.Null(MappedImageSource.TryOpen(WriteFile([])));
        Assert.Null(MappedImageSource.TryOpen("/dev/null"));
        Assert.Null(MappedImageSource.TryOpen(Path.Combine(_dir.Path, "missing")));
    }

    [Fact]
    public async Task A_mapped_image_gives_its_stored_blocks_in_place()
    {
        var root = SourceNode.Directory(string.Empty).Add(SourceNode.File("f", TestTreeBuilder.Content(100_000, 5)));
        var path = Path.Combine(_dir.Path, "tree.sqfs");
        using (var sink = new FileImageSink(path))
        {
            await SquashFsWriter.WriteAsync(root, sink, new SquashFsWriterOptions { BlockSize = 4096 });
        }

        using var image = SquashFsImage.Open(MappedImageSource.TryOpen(path)!);
        var bytes = File.ReadAllBytes(path);
        var scratch = new byte[8];
        var stored = image.GetStoredBytes(96, 8, scratch);
        Assert.True(stored.SequenceEqual(bytes.AsSpan(96, 8)));
        Assert.True(scratch.AsSpan().IndexOfAnyExcept((byte)0) < 0, "a mapped image hands out the bytes in place, not through the scratch buffer");
        var e = Assert.Throws<SquashFsException>(() => image.GetStoredBytes(bytes.Length - 4, 8, scratch).Length);
        Assert.Equal(SquashFsErrorCategory.OutOfBounds, e.Category);
    }

    public void Dispose() => _dir.Dispose();
}
