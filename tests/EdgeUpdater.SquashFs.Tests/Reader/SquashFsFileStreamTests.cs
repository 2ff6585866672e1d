using EdgeUpdater.SquashFs.IO;
using EdgeUpdater.SquashFs.Reader;
using EdgeUpdater.SquashFs.Writer;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.SquashFs.Tests.Reader;

/// <summary>File streams: every access pattern returns the file's bytes, and a damaged block is reported when it is read, not before.</summary>
public sealed class SquashFsFileStreamTests
{
    private const int BlockSize = 4096;
    private static readonly byte[] Content = TestTreeBuilder.Content((40 * BlockSize) + 1234, 11);

    private static async Task<byte[]> BuildAsync()
    {
        var root = SourceNode.Directory(string.Empty).Add(SourceNode.File("big", Content));
        var buffer = new MemoryStream();
        using (var sink = new StreamImageSink(buffer, leaveOpen: true))
        {
            await SquashFsWriter.WriteAsync(root, sink, new SquashFsWriterOptions { BlockSize = BlockSize });
        }

        return buffer.ToArray();
    }

    [Theory]
    [InlineData(1000)]
    [InlineData(BlockSize)]
    [InlineData(3 * BlockSize)]
    [InlineData(1 << 20)]
    public async Task Sequential_reads_of_any_size_return_the_file(int chunk)
    {
        using var image = SquashFsImage.Open(new MemoryImageSource(await BuildAsync()));
        using var stream = image.GetEntry("/big").OpenRead();
        var read = new MemoryStream();
        var buffer = new byte[chunk];
        int n;
        while ((n = stream.Read(buffer)) > 0)
        {
            read.Write(buffer, 0, n);
        }

        Assert.Equal(Content, read.ToArray());
    }

    [Fact]
    public async Task Seeks_between_sequential_runs_return_the_right_bytes()
    {
        using var image = SquashFsImage.Open(new MemoryImageSource(await BuildAsync()));
        using var stream = image.GetEntry("/big").OpenRead();
        var random = new Random(5);
        for (var i = 0; i < 300; i++)
        {
            // Runs of a few blocks broken by jumps backwards and forwards.
            var start = random.Next(Content.Length);
            var length = Math.Min(Content.Length - start, random.Next(1, 4 * BlockSize));
            stream.Position = start;
            var buffer = new byte[length];
            stream.ReadExactly(buffer);
            Assert.True(Content.AsSpan(start, length).SequenceEqual(buffer), $"bytes {start}..{start + length}");
        }
    }

    [Fact]
    public async Task Damage_in_a_block_never_asked_for_is_not_reported_and_is_when_read()
    {
        var bytes = await BuildAsync();
        int damaged;
        using (var clean = SquashFsImage.Open(new MemoryImageSource(bytes)))
        {
            var block = clean.GetFileBlocks(clean.GetEntry("/big").Inode).Blocks[2];
            Assert.True(block.IsCompressed);
            damaged = (int)block.Offset + ((int)block.StoredSize / 2);
        }

        for (var i = 0; i < 16; i++)
        {
            bytes[damaged + i] ^= 0x5A;
        }

        using var image = SquashFsImage.Open(new MemoryImageSource(bytes));
        var buffer = new byte[2 * BlockSize];
        using (var stream = image.GetEntry("/big").OpenRead())
        {
            // Blocks 0 and 1, then a jump past the damaged block 2: nothing to report.
            stream.ReadExactly(buffer);
            Assert.True(Content.AsSpan(0, buffer.Length).SequenceEqual(buffer));
            stream.Position = 10 * BlockSize;
            stream.ReadExactly(buffer);
            Assert.True(Content.AsSpan(10 * BlockSize, buffer.Length).SequenceEqual(buffer));
        }

        using (var stream = image.GetEntry("/big").OpenRead())
        {
            stream.ReadExactly(buffer);
            var error = Assert.Throws<SquashFsException>(() => stream.ReadExactly(buffer));
            Assert.Equal(SquashFsErrorCategory.Corrupted, error.Category);
            Assert.Contains("'/big' block 2", error.Message, StringComparison.Ordinal);
        }
    }
}
