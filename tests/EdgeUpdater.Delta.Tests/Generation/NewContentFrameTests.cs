using System.Runtime.InteropServices;
using EdgeUpdater.Delta.Format;
using EdgeUpdater.Delta.Generation;
using EdgeUpdater.Delta.Patching;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Delta.Tests.Generation;

/// <summary>
/// Blocks of new files (nothing in A to patch against) go into LZMA2 content frames, behind the BCJ filter of
/// the machine code they hold, at the best level, when both sides have liblzma; the result is byte-exact.
/// </summary>
public sealed class NewContentFrameTests
{
    private static readonly string[] Binaries = ["/usr/bin/tar", "/usr/bin/ls", "/usr/bin/cp", "/usr/bin/mksquashfs", "/usr/bin/xz"];

    /// <summary>A: one config file; B: A plus this machine's binaries and a new config file.</summary>
    internal static async Task<(byte[] A, byte[] B)> MakePairAsync(TempDirectory temp, string compressor)
    {
        var b = await DeltaTestKit.StartPairAsync(temp);
        Directory.CreateDirectory(Path.Combine(b, "usr", "bin"));
        foreach (var binary in Binaries.Where(File.Exists))
        {
            File.Copy(binary, Path.Combine(b, "usr", "bin", Path.GetFileName(binary)));
        }

        await File.WriteAllBytesAsync(Path.Combine(b, "etc", "new.conf"), DeltaImages.Text(150_000, 2));
        return await DeltaTestKit.SquashPairAsync(temp, compressor);
    }

    [Theory]
    [InlineData("xz")]
    [InlineData("zstd")]
    [InlineData("gzip")]
    public async Task New_machine_code_goes_into_bcj_lzma2_frames_and_round_trips(string compressor)
    {
        var expectedFilter = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 or Architecture.X86 => LzmaCoder.X86,
            Architecture.Arm64 => LzmaCoder.Arm64,
            _ => (byte)0,
        };
        Assert.SkipWhen(expectedFilter == 0, "no BCJ filter for this machine's binaries");
        Assert.SkipWhen(LzmaCoder.LocalVersion is null, "liblzma is not installed");
        using var temp = new TempDirectory("delta-new-content");
        var (a, b) = await MakePairAsync(temp, compressor);
        var (delta, result) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { Level = DeltaLevel.Best, MaxParallelism = 2 });
        DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(a, delta));
        var heads = await DeltaTestKit.FrameHeadsAsync(delta);
        Assert.Contains(heads, h => h.Coder == FrameCoder.Lzma2 && h.Filter == expectedFilter);
        Assert.All(heads.Where(h => h.Coder == FrameCoder.Lzma2), h => Assert.Equal(LzmaCoder.DictionaryFor(h.ContentLength), h.Dictionary));
        Assert.True(result.Statistics.NewFileBlocksRebuilt > 0);
        var info = await DeltaInspector.InspectAsync(new MemoryStream(delta));
        Assert.True(info.ContentBytesByCoder.GetValueOrDefault("lzma2") > 0);

        // A device without liblzma gets no LZMA2 frames (the new blocks go literally) and a larger delta.
        var zstdOnly = DeltaCodecs.LocalIdentities().Where(i => !i.StartsWith("xz/", StringComparison.Ordinal)).ToList();
        if (compressor != "xz")
        {
            var (plain, plainResult) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { Level = DeltaLevel.Best, MaxParallelism = 2, DeviceCodecs = zstdOnly });
            Assert.True(plainResult.Header.UsesRecompression);
            Assert.DoesNotContain(await DeltaTestKit.FrameHeadsAsync(plain), h => h.Coder == FrameCoder.Lzma2);
            Assert.Equal(0, plainResult.Statistics.NewFileBlocksRebuilt);
            DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(a, plain));
            Assert.True(delta.Length < plain.Length * 9 / 10, $"LZMA2 frames give {delta.Length} bytes, literal new blocks {plain.Length}");
        }

        // The fast level never uses them.
        var (fast, _) = await DeltaTestKit.GenerateAsync(a, b, new DeltaGeneratorOptions { Level = DeltaLevel.Fast, MaxParallelism = 2 });
        Assert.DoesNotContain(await DeltaTestKit.FrameHeadsAsync(fast), h => h.Coder == FrameCoder.Lzma2);
        DeltaTestKit.AssertSameImage(b, await DeltaTestKit.ApplyAsync(a, fast));
    }

    [Fact]
    public void The_elf_machine_is_read_from_either_byte_order()
    {
        Assert.NotEqual(0, SquashFsPlanner.ElfMachine(File.ReadAllBytes("/usr/bin/ls").AsSpan(0, 64)));
        byte[] little = [0x7F, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 183, 0];
        Assert.Equal(183, SquashFsPlanner.ElfMachine(little));
        byte[] big = [0x7F, (byte)'E', (byte)'L', (byte)'F', 1, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 20];
        Assert.Equal(20, SquashFsPlanner.ElfMachine(big));
        Assert.Equal(0, SquashFsPlanner.ElfMachine("#!/bin/sh\necho hello\n"u8));
        Assert.Equal(0, SquashFsPlanner.ElfMachine(little.AsSpan(0, 19)));
    }

    [Theory]
    [InlineData((byte)0)]
    [InlineData(LzmaCoder.X86)]
    [InlineData(LzmaCoder.Arm64)]
    public void Lzma2_frames_round_trip_and_refuse_a_small_capacity(byte filter)
    {
        var content = File.ReadAllBytes("/usr/bin/ls");
        var frame = LzmaCoder.Encode(content, filter, content.Length, content.Length);
        Assert.NotNull(frame);
        var decoded = new byte[content.Length];
        LzmaCoder.Decode(frame, filter, content.Length, decoded, "test");
        Assert.Equal(content, decoded);
        Assert.Null(LzmaCoder.Encode(content, filter, content.Length, 100));
    }
}
