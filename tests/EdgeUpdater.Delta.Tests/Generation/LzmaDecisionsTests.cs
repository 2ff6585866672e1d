using EdgeUpdater.Delta.Format;
using EdgeUpdater.Delta.Patching;
using EdgeUpdater.SquashFs.Compression;
using EdgeUpdater.SquashFs.Format;
using EdgeUpdater.SquashFs.Metadata;
using EdgeUpdater.SquashFs.Reader;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Delta.Tests.Generation;

/// <summary>
/// LZMA decisions recorded from liblzma's xz streams and replayed over the same content must give the same
/// stream byte for byte: on mksquashfs's metadata blocks (what the delta uses them for) and on liblzma's output
/// at every preset. Records that do not describe their content are refused; streams of another form are not
/// recorded.
/// </summary>
public sealed class LzmaDecisionsTests(DeltaImages images) : IClassFixture<DeltaImages>
{
    public static TheoryData<string> XzVariants => ["xz", "xz-64k-always-fragments"];

    [Theory]
    [MemberData(nameof(XzVariants))]
    public async Task Every_metadata_block_of_mksquashfs_xz_images_replays_byte_for_byte(string variantName)
    {
        var variant = DeltaImages.Variants.Single(v => v.Name == variantName);
        var codec = new LzmaDecisions();
        var blocks = 0;
        foreach (var tree in new[] { images.TreeA, images.TreeB, images.TreeC })
        {
            using var image = SquashFsImage.Open(await images.GetImageAsync(tree, variant));
            foreach (var table in image.ReadAllMetadataTables().Where(t => t.Kind != MetadataTableKind.CompressorOptions))
            {
                var offset = 0;
                foreach (var block in table.Blocks)
                {
                    var content = table.Data.AsSpan(offset, block.UncompressedSize);
                    offset += block.UncompressedSize;
                    if (!block.IsCompressed)
                    {
                        continue;
                    }

                    var stored = new byte[block.TotalSize];
                    image.ReadStoredBytes(block.Offset, stored);
                    AssertReplays(codec, stored.AsSpan(2), content, $"{variantName} {Path.GetFileName(tree)} {table.Kind} block at {block.Offset}");
                    blocks++;
                }
            }
        }

        Assert.True(blocks >= 10, $"only {blocks} compressed metadata blocks in the images");
    }

    [Theory]
    [InlineData(0, false)]
    [InlineData(1, false)]
    [InlineData(3, false)]
    [InlineData(5, false)]
    [InlineData(6, false)]
    [InlineData(9, false)]
    [InlineData(6, true)]
    [InlineData(9, true)]
    public void Liblzma_streams_at_every_preset_replay_byte_for_byte(int preset, bool extreme)
    {
        var options = CompressorOptions.Default(CompressorId.Xz) with { Level = preset, XzExtreme = extreme };
        using var metadata = SquashFsCodec.Create(options, 131072, CodecRole.Metadata);
        using var data = SquashFsCodec.Create(options, 65536);
        var codec = new LzmaDecisions();
        var contents = new List<(string Name, byte[] Content, SquashFsCodec Codec)>
        {
            ("100 zeros", new byte[100], metadata),
            // The block header is sized for the compressed size's bound (content + 4): one byte of size up to 123.
            ("123 zeros", new byte[123], metadata),
            ("124 zeros", new byte[124], metadata),
            ("text", DeltaImages.Text(8192, 3), metadata),
            ("records", DeltaImages.Records(8192, 4, changes: 3), metadata),
            ("half random", [.. TestTreeBuilder.Content(4096, 5), .. new byte[4096]], metadata),
            ("zeros", new byte[8192], metadata),
            ("a period of 3", [.. Enumerable.Range(0, 8192).Select(i => (byte)(i % 3))], metadata),
            ("64 KiB of text", DeltaImages.Text(65536, 6), data),
        };

        foreach (var (name, content, xz) in contents)
        {
            var stored = new byte[content.Length + 1024];
            Assert.True(xz.TryCompress(content, stored, out var written), name);
            AssertReplays(codec, stored.AsSpan(0, written), content, $"{name} at preset {preset}{(extreme ? "e" : string.Empty)}");
        }
    }

    [Fact]
    public void Streams_of_another_form_are_not_recorded()
    {
        var codec = new LzmaDecisions();
        var content = new byte[70000];

        using var xz = SquashFsCodec.Create(CompressorOptions.Default(CompressorId.Xz), 131072, CodecRole.Metadata);
        var stored = new byte[16384];

        // Truncated, damaged and foreign streams.
        var text = DeltaImages.Text(8192, 11);
        Assert.True(xz.TryCompress(text, stored, out var written));
        var valid = stored.AsSpan(0, written).ToArray();
        var candidates = new List<byte[]> { Array.Empty<byte>(), valid[..20], valid[..(valid.Length / 2)], new byte[valid.Length], TestTreeBuilder.Content(valid.Length, 12) };
        var random2 = new Random(20261129);
        for (var i = 0; i < 300; i++)
        {
            var damaged = valid.ToArray();
            damaged[random2.Next(12, damaged.Length)] ^= (byte)(1 << random2.Next(8));
            candidates.Add(damaged);
        }

        foreach (var candidate in candidates)
        {
            // Never throws, and a failure leaves no record; what it records is only ever used after a replay gave
            // the stored bytes again.
            if (!codec.TryRecord(candidate, content, out _))
            {
                Assert.Equal(0, codec.LastRecord.Length);
            }
        }

        // Another filter in front of or instead of LZMA2 (mksquashfs -Xbcj x86 writes BCJ filters).
        var withFilter = valid.ToArray();
        var filterAt = Array.IndexOf(withFilter, (byte)0x21, 14);
        Assert.InRange(filterAt, 14, 24);
        withFilter[filterAt] = 0x04;
        Assert.False(codec.TryRecord(withFilter, content, out _));

        // An LZMA2 chunk stored uncompressed, or one that keeps the dictionary (a later chunk of a longer stream).
        var dataStart = 12 + ((valid[12] + 1) * 4);
        Assert.Equal(0xE0, valid[dataStart]);
        foreach (var control in new byte[] { 0x01, 0x02, 0x80, 0xC0 })
        {
            var other = valid.ToArray();
            other[dataStart] = control;
            Assert.False(codec.TryRecord(other, content, out _));
        }


        Assert.True(codec.TryRecord(valid, content, out var length));
        Assert.Equal(text, content[..length]);
    }

    [Fact]
    public void Records_that_do_not_describe_their_content_are_refused()
    {
        var codec = new LzmaDecisions();
        var content = DeltaImages.Text(8192, 13);
        using var xz = SquashFsCodec.Create(CompressorOptions.Default(CompressorId.Xz), 131072, CodecRole.Metadata);
        var stored = new byte[16384];
        Assert.True(xz.TryCompress(content, stored, out var written));
        Assert.True(codec.TryRecord(stored.AsSpan(0, written), new byte[8192], out _));
        var record = codec.LastRecord.ToArray();
        var output = new byte[16384];

        // The same decisions over other content: a match no longer repeats.
        var other = content.ToArray();
        other[^1] ^= 0xFF;
        other[4000] ^= 0xFF;
        var changed = Assert.Throws<DeltaException>(() => codec.Replay(record, other, output, "record"));
        Assert.Equal(DeltaErrorCategory.Corrupted, changed.Category);

        // Hand-made records: (properties, dictionary property, decisions...).
        byte lc3pb2 = 3 + (45 * 2);
        var hostile = new (string Name, byte[] Record, byte[] Content, DeltaErrorCategory Category)[]
        {
            ("properties past lc + lp = 4", [4 + 9, 2, 0, 2], [1, 2], DeltaErrorCategory.Corrupted),
            ("properties past 224", [225, 2, 0, 2], [1, 2], DeltaErrorCategory.Corrupted),
            ("dictionary property past 40", [lc3pb2, 41, 0, 2], [1, 2], DeltaErrorCategory.Corrupted),
            ("a match before the start", [lc3pb2, 2, 0, 1, 1, 0, 5], [1, 2, 1, 2], DeltaErrorCategory.Corrupted),
            ("a match past the end", [lc3pb2, 2, 0, 2, 1, 5, 1], [1, 2, 1, 2], DeltaErrorCategory.Corrupted),
            ("a literal run past the end", [lc3pb2, 2, 0, 5], [1, 2, 3], DeltaErrorCategory.Overflow),
            ("an empty literal run", [lc3pb2, 2, 0, 0, 0, 3], [1, 2, 3], DeltaErrorCategory.Corrupted),
            ("a one-byte repeat of another byte", [lc3pb2, 2, 0, 1, 6, 0, 1], [1, 2, 3], DeltaErrorCategory.Corrupted),
            ("an unknown decision", [lc3pb2, 2, 0, 1, 7], [1, 2], DeltaErrorCategory.Corrupted),
            ("a match longer than 273", [lc3pb2, 2, 0, 1, 1, 0x90, 0x02, 0], new byte[400], DeltaErrorCategory.Overflow),
            ("bytes after the content is covered", [lc3pb2, 2, 0, 2, 6], [1, 2], DeltaErrorCategory.Corrupted),
            ("decisions that end early", [lc3pb2, 2, 0, 1], [1, 2], DeltaErrorCategory.Corrupted),
            ("no content", [lc3pb2, 2], [], DeltaErrorCategory.Corrupted),
        };
        foreach (var (name, hostileRecord, hostileContent, category) in hostile)
        {
            var error = Assert.Throws<DeltaException>(() => codec.Replay(hostileRecord, hostileContent, output, name));
            Assert.True(category == error.Category, $"{name}: {error.Category} ({error.Message})");
        }

        // A destination too small for the stream.
        var small = Assert.Throws<DeltaException>(() => codec.Replay(record, content, new byte[600], "small destination"));
        Assert.Equal(DeltaErrorCategory.Corrupted, small.Category);
    }

    private static void AssertReplays(LzmaDecisions codec, ReadOnlySpan<byte> stored, ReadOnlySpan<byte> content, string what)
    {
        var decoded = new byte[LzmaDecisions.MaxContentLength];
        Assert.True(codec.TryRecord(stored, decoded, out var length), $"{what}: not recorded");
        Assert.True(content.SequenceEqual(decoded.AsSpan(0, length)), $"{what}: decoded content differs");
        var replayed = new byte[stored.Length + 64];
        var written = codec.Replay(codec.LastRecord, content, replayed, what);
        Assert.True(stored.SequenceEqual(replayed.AsSpan(0, written)), $"{what}: replayed {written} bytes, stored {stored.Length}, first difference at {FirstDifference(stored, replayed.AsSpan(0, written))}");
    }

    private static int FirstDifference(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) => a.CommonPrefixLength(b);
}
