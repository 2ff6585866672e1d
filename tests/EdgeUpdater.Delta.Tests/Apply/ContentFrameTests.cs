using EdgeUpdater.Delta.Format;
using EdgeUpdater.Delta.Generation;
using EdgeUpdater.Delta.Patching;
using Xunit;
using static EdgeUpdater.Delta.Tests.Apply.HostileDeltaTests;

namespace EdgeUpdater.Delta.Tests.Apply;

/// <summary>
/// Format-2 content frames on handmade deltas: zstd and LZMA2 (with and without BCJ) frames, several per ops
/// section, apply exactly; every hostile head, stream and frame selection is refused with a precise category.
/// </summary>
public sealed class ContentFrameTests
{
    private const int Split = 32500;

    /// <summary>The changed middle of the target, as the content of two frames.</summary>
    private static ReadOnlySpan<byte> First => Target.AsSpan(30000, Split - 30000);

    private static ReadOnlySpan<byte> Second => Target.AsSpan(Split, 35000 - Split);

    private static byte[] ZstdFrame(ReadOnlySpan<byte> content)
    {
        var w = new ByteWriter();
        w.VarU((ulong)content.Length);
        w.U8((byte)FrameCoder.Zstd);
        w.VarU(0);
        using var zstd = new ZstdPatcher();
        w.Blob(zstd.Compress([], content, 3).Span);
        return w.ToArray();
    }

    private static byte[] LzmaFrame(ReadOnlySpan<byte> content, byte filter = 0, long? dictionary = null, Func<byte[], byte[]>? damage = null, long? claimedLength = null, byte coder = (byte)FrameCoder.Lzma2)
    {
        var stream = LzmaCoder.Encode(content, filter, LzmaCoder.DictionaryFor(content.Length), 1 << 20)!;
        var w = new ByteWriter();
        w.VarU((ulong)(claimedLength ?? content.Length));
        w.U8(coder);
        w.U8(filter);
        w.VarU((ulong)(dictionary ?? LzmaCoder.DictionaryFor(content.Length)));
        w.Blob(damage is null ? stream : damage(stream));
        return w.ToArray();
    }

    /// <summary>Copy, the two halves of the changed middle as uncompressed blocks from frames, copy.</summary>
    private static byte[] BlockOps(int firstFrame, int secondFrame, BlockFlags extra = BlockFlags.None) => Ops(w =>
    {
        w.U8((byte)OpCode.Copy);
        w.VarS(0);
        w.VarU(30000);
        foreach (var (frame, content) in new[] { (firstFrame, First.ToArray()), (secondFrame, Second.ToArray()) })
        {
            w.U8((byte)OpCode.Block);
            w.U8((byte)(BlockFlags.Uncompressed | extra | (BlockFlags)(frame << 4)));
            w.VarU((ulong)content.Length);
            w.VarU((ulong)content.Length);
            w.U32(OpsBuilder.BlockCheck(content));
        }

        w.U8((byte)OpCode.Copy);
        w.VarS(10000);
        w.VarU((ulong)(Base.Length - 40000));
    });

    private static byte[] Delta(params byte[][] contentSections) => DeltaWith(BlockOps(0, 1), contentSections);

    private static byte[] DeltaWith(byte[] ops, params byte[][] contentSections) => Build(
        Header(),
        [.. contentSections.Select(c => (SectionKind.Content, c)), (SectionKind.Ops, ops), (SectionKind.End, End(Target.Length))]);

    [Theory]
    [InlineData((byte)0)]
    [InlineData(LzmaCoder.X86)]
    [InlineData(LzmaCoder.Arm64)]
    public async Task Zstd_and_lzma2_frames_feed_one_ops_section(byte filter)
    {
        var delta = Delta(ZstdFrame(First), LzmaFrame(Second, filter));
        DeltaTestKit.AssertSameImage(Target, await DeltaTestKit.ApplyAsync(Base, delta));
        var info = await DeltaInspector.InspectAsync(new MemoryStream(delta));
        Assert.True(info.ContentBytesByCoder.GetValueOrDefault("lzma2") > 0);
        Assert.True(info.ContentBytesByCoder.GetValueOrDefault("zstd") > 0);
        Assert.Equal(5000, info.LargestContent);

        // The frame bits choose the frame: swapped frames swap the halves, which the block checks catch.
        var swapped = DeltaWith(BlockOps(1, 0), LzmaFrame(Second, filter), ZstdFrame(First));
        DeltaTestKit.AssertSameImage(Target, await DeltaTestKit.ApplyAsync(Base, swapped));
    }

    [Fact]
    public async Task Four_frames_are_allowed_and_a_fifth_is_refused()
    {
        var half = First.Length / 2;
        var quarters = new[] { First[..half].ToArray(), First[half..].ToArray() };
        var ops = Ops(w =>
        {
            w.U8((byte)OpCode.Copy);
            w.VarS(0);
            w.VarU(30000);
            var parts = new[] { (0, quarters[0]), (1, quarters[1]), (2, Second[..1000].ToArray()), (3, Second[1000..].ToArray()) };
            foreach (var (frame, content) in parts)
            {
                w.U8((byte)OpCode.Block);
                w.U8((byte)(BlockFlags.Uncompressed | (BlockFlags)(frame << 4)));
                w.VarU((ulong)content.Length);
                w.VarU((ulong)content.Length);
                w.U32(OpsBuilder.BlockCheck(content));
            }

            w.U8((byte)OpCode.Copy);
            w.VarS(10000);
            w.VarU((ulong)(Base.Length - 40000));
        });
        byte[][] frames = [LzmaFrame(quarters[0]), ZstdFrame(quarters[1]), LzmaFrame(Second[..1000], LzmaCoder.X86), ZstdFrame(Second[1000..])];
        DeltaTestKit.AssertSameImage(Target, await DeltaTestKit.ApplyAsync(Base, DeltaWith(ops, frames)));
        var e = await RefusedAsync(DeltaWith(ops, [.. frames, ZstdFrame(Second)]));
        Assert.Equal(DeltaErrorCategory.Corrupted, e.Category);
        Assert.Contains("at most 4", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData((byte)0)]
    [InlineData((byte)3)]
    [InlineData((byte)0x80)]
    public async Task An_unknown_frame_coder_is_refused(byte coder)
    {
        var e = await RefusedAsync(Delta(ZstdFrame(First), LzmaFrame(Second, coder: coder)));
        Assert.Equal(DeltaErrorCategory.Corrupted, e.Category);
        Assert.Contains($"frame coder {coder}", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData((byte)0x01)]
    [InlineData((byte)0x03)]
    [InlineData((byte)0x0C)]
    [InlineData((byte)0xFF)]
    public async Task An_unknown_bcj_filter_is_refused(byte filter)
    {
        var frame = LzmaFrame(Second);
        var headLength = VarU(Second.Length).Length + 1;
        frame[headLength] = filter;
        var e = await RefusedAsync(Delta(ZstdFrame(First), frame));
        Assert.Equal(DeltaErrorCategory.Corrupted, e.Category);
        Assert.Contains($"BCJ filter 0x{filter:x2}", e.Message, StringComparison.Ordinal);
    }

    private static byte[] VarU(int length)
    {
        var w = new ByteWriter();
        w.VarU((ulong)length);
        return w.ToArray();
    }

    [Theory]
    [InlineData(8192L)]
    [InlineData(8L << 20)]
    [InlineData(1L << 31)]
    [InlineData(long.MaxValue)]
    public async Task A_dictionary_larger_than_the_frame_is_refused_before_any_allocation(long dictionary)
    {
        // Second is 2500 bytes: its frame needs liblzma's minimum dictionary (4096) at most.
        var e = await RefusedAsync(Delta(ZstdFrame(First), LzmaFrame(Second, dictionary: dictionary)));
        Assert.Equal(DeltaErrorCategory.Overflow, e.Category);
        Assert.Contains("LZMA2 dictionary size", e.Message, StringComparison.Ordinal);
        Assert.Contains("at most 4096", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_dictionary_past_the_format_maximum_is_refused_whatever_the_frame_size()
    {
        var content = new byte[DeltaFormat.MaxLzmaDictionary + 4096];
        var frame = LzmaFrame(content, dictionary: DeltaFormat.MaxLzmaDictionary + 1);
        var ops = Ops(w =>
        {
            w.U8((byte)OpCode.Block);
            w.U8((byte)BlockFlags.Uncompressed);
            w.VarU((ulong)content.Length);
            w.VarU((ulong)content.Length);
            w.U32(OpsBuilder.BlockCheck(content));
        });
        var e = await RefusedAsync(DeltaWith(ops, frame));
        Assert.Equal(DeltaErrorCategory.Overflow, e.Category);
        Assert.Contains($"at most {DeltaFormat.MaxLzmaDictionary}", e.Message, StringComparison.Ordinal);
        var direct = Assert.Throws<DeltaException>(() => LzmaCoder.Decode([1, 2, 3], 0, DeltaFormat.MaxLzmaDictionary * 2, new byte[16], "test frame"));
        Assert.Equal(DeltaErrorCategory.Overflow, direct.Category);
    }

    [Fact]
    public async Task A_dictionary_below_the_minimum_or_the_stream_is_refused()
    {
        var e = await RefusedAsync(Delta(ZstdFrame(First), LzmaFrame(Second, dictionary: 4095)));
        Assert.Equal(DeltaErrorCategory.Corrupted, e.Category);

        // A stream whose matches reach further back than the dictionary it names: liblzma refuses it.
        var content = new byte[64 << 10];
        new Random(5).NextBytes(content.AsSpan(0, 32 << 10));
        content.AsSpan(0, 32 << 10).CopyTo(content.AsSpan(32 << 10));
        var stream = LzmaCoder.Encode(content, 0, content.Length, 1 << 20)!;
        var ex = Assert.Throws<DeltaException>(() => LzmaCoder.Decode(stream, 0, LzmaCoder.MinDictionary, new byte[content.Length], "test frame"));
        Assert.Equal(DeltaErrorCategory.Corrupted, ex.Category);
        Assert.Contains("test frame", ex.Message, StringComparison.Ordinal);
        var decoded = new byte[content.Length];
        LzmaCoder.Decode(stream, 0, content.Length, decoded, "test frame");
        Assert.Equal(content, decoded);
    }

    [Fact]
    public async Task A_truncated_or_damaged_lzma2_stream_is_refused()
    {
        foreach (var cut in new[] { 1, 2, 10, 100 })
        {
            var e = await RefusedAsync(Delta(ZstdFrame(First), LzmaFrame(Second, damage: s => s[..^cut])));
            Assert.True(e.Category == DeltaErrorCategory.Corrupted, $"cut {cut}: {e.Category} {e.Message}");
            Assert.Contains("LZMA2 frame", e.Message, StringComparison.Ordinal);
        }

        var trailing = await RefusedAsync(Delta(ZstdFrame(First), LzmaFrame(Second, damage: s => [.. s, 0, 0])));
        Assert.Equal(DeltaErrorCategory.Corrupted, trailing.Category);
        var shorter = await RefusedAsync(Delta(ZstdFrame(First), LzmaFrame(Second, claimedLength: Second.Length + 1)));
        Assert.Equal(DeltaErrorCategory.Corrupted, shorter.Category);
        var longer = await RefusedAsync(Delta(ZstdFrame(First), LzmaFrame(Second, claimedLength: Second.Length - 1)));
        Assert.Equal(DeltaErrorCategory.Corrupted, longer.Category);
        var empty = await RefusedAsync(Delta(ZstdFrame(First), LzmaFrame(Second, damage: _ => [])));
        Assert.Equal(DeltaErrorCategory.Corrupted, empty.Category);
    }

    [Fact]
    public async Task A_frame_index_past_the_pending_frames_is_refused()
    {
        foreach (var (first, second) in new[] { (0, 2), (3, 1) })
        {
            var e = await RefusedAsync(DeltaWith(BlockOps(first, second), ZstdFrame(First), LzmaFrame(Second)));
            Assert.Equal(DeltaErrorCategory.OutOfBounds, e.Category);
            Assert.Contains("2 content frame(s) are pending", e.Message, StringComparison.Ordinal);
        }

        var overused = await RefusedAsync(DeltaWith(BlockOps(0, 0), ZstdFrame(First), LzmaFrame(Second)));
        Assert.Equal(DeltaErrorCategory.OutOfBounds, overused.Category);
        var unused = await RefusedAsync(Delta(ZstdFrame(First), LzmaFrame(Second), ZstdFrame(Second)));
        Assert.Equal(DeltaErrorCategory.Corrupted, unused.Category);
        Assert.Contains("content frame 2 are left unused", unused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Version_1_deltas_have_one_zstd_frame_and_no_frame_bits()
    {
        byte[] V1Frame(ReadOnlySpan<byte> content)
        {
            var w = new ByteWriter();
            w.VarU((ulong)content.Length);
            w.VarU(0);
            using var zstd = new ZstdPatcher();
            w.Blob(zstd.Compress([], content, 3).Span);
            return w.ToArray();
        }

        byte[] V1(byte[] ops, params byte[][] frames) => Build(
            Header(version: 1),
            [.. frames.Select(f => (SectionKind.Content, f)), (SectionKind.Ops, ops), (SectionKind.End, End(Target.Length))]);

        var whole = Target.AsSpan(30000, 5000).ToArray();
        var ops = Ops(w =>
        {
            w.U8((byte)OpCode.Copy);
            w.VarS(0);
            w.VarU(30000);
            w.U8((byte)OpCode.Block);
            w.U8((byte)BlockFlags.Uncompressed);
            w.VarU(5000);
            w.VarU(5000);
            w.U32(OpsBuilder.BlockCheck(whole));
            w.U8((byte)OpCode.Copy);
            w.VarS(10000);
            w.VarU((ulong)(Base.Length - 40000));
        });
        DeltaTestKit.AssertSameImage(Target, await DeltaTestKit.ApplyAsync(Base, V1(ops, V1Frame(whole))));
        Assert.Equal(DeltaErrorCategory.Corrupted, (await RefusedAsync(V1(BlockOps(0, 1), V1Frame(First), V1Frame(Second)))).Category);
        var bits = await RefusedAsync(V1(BlockOps(0, 1), V1Frame(whole)));
        Assert.Equal(DeltaErrorCategory.Corrupted, bits.Category);
        Assert.Contains("block flags", bits.Message, StringComparison.Ordinal);
    }
}
