using EdgeUpdater.Delta.Patching;
using Xunit;

namespace EdgeUpdater.Delta.Tests.Generation;

/// <summary>Patch frames over large references, and pack frames of compressed bytes: what the fast level's frames find.</summary>
public sealed class ZstdPatcherTests
{
    /// <summary>
    /// A target made of short pieces from all over a 6 MiB reference (what a changed block shares with its
    /// old version: runs shorter than the long-distance matcher's 64 bytes, anywhere in the reference).
    /// At level 3 with zstd's own tables (2^17 entries) most of the reference has fallen out of them when
    /// the target is encoded: the frame took 287 KB of the target's 328 KB. With tables sized to the window,
    /// 80 KB.
    /// </summary>
    [Fact]
    public void A_fast_level_frame_finds_short_runs_anywhere_in_a_large_reference()
    {
        var (reference, target) = RunsFromAll(6 << 20, pieceLength: 40, pieces: 8192, seed: 20261128);

        using var patcher = new ZstdPatcher();
        var frame = patcher.Compress(reference, target, 3).ToArray();
        var decoded = new byte[target.Length];
        patcher.Decode(reference, frame, decoded, "test frame");

        Assert.Equal(target, decoded);
        Assert.True(frame.Length < target.Length / 3, $"{frame.Length} bytes for {target.Length}: the frame missed most of the reference's runs");
    }

    /// <summary>
    /// The same kind of target, runs of 56 bytes, over a 24 MiB reference, where even tables of 2^19 entries
    /// have lost most of the reference: the long-distance matcher, which samples the whole reference, finds
    /// the runs only when it may take matches shorter than its own 64 bytes. The frame took 363 KB of the
    /// target's 459 KB with zstd's minimum, 259 KB with the fast frames' 6.
    /// </summary>
    [Fact]
    public void A_fast_level_frame_takes_short_long_distance_matches()
    {
        var (reference, target) = RunsFromAll(24 << 20, pieceLength: 56, pieces: 8192, seed: 7);

        using var patcher = new ZstdPatcher();
        var frame = patcher.Compress(reference, target, 3).ToArray();
        var decoded = new byte[target.Length];
        patcher.Decode(reference, frame, decoded, "test frame");

        Assert.Equal(target, decoded);
        Assert.True(frame.Length < target.Length * 2 / 3, $"{frame.Length} bytes for {target.Length}: the long-distance matcher missed the short runs");
    }

    /// <summary>
    /// Stored bytes of blocks deflate shrank to a third or less still hold short repeats: zstd's level 3
    /// finds nothing in them, the pack frame's optimal parser with 3-byte matches does, and more than the
    /// lazy parser other compressors' blocks get (why gzip images pay for the optimal one).
    /// </summary>
    [Fact]
    public void A_pack_frame_finds_what_deflate_left_where_level_3_finds_nothing()
    {
        // A table deflated in 128 KiB blocks, as a gzip SquashFS stores it.
        var table = DeltaImages.Records(2 << 20, 11, changes: 1);
        var content = new MemoryStream();
        for (var offset = 0; offset < table.Length; offset += 128 << 10)
        {
            using var deflate = new System.IO.Compression.ZLibStream(content, System.IO.Compression.CompressionLevel.SmallestSize, leaveOpen: true);
            deflate.Write(table, offset, 128 << 10);
        }

        var stored = content.ToArray();
        Assert.True(stored.Length < table.Length / 3, $"deflate took {stored.Length} bytes for {table.Length}");

        using var patcher = new ZstdPatcher();
        var packed = patcher.Pack(stored, optimal: true).ToArray();
        var lazy = patcher.Pack(stored, optimal: false).ToArray();
        var plain = patcher.Compress([], stored, 3).ToArray();
        foreach (var frame in new[] { packed, lazy })
        {
            var decoded = new byte[stored.Length];
            patcher.Decode([], frame, decoded, "pack frame");
            Assert.Equal(stored, decoded);
        }

        Assert.True(packed.Length < lazy.Length * 995 / 1000, $"optimal {packed.Length} bytes, lazy {lazy.Length}");
        Assert.True(packed.Length < stored.Length * 995 / 1000, $"{packed.Length} bytes for {stored.Length}: the pack frame found less than 0.5 %");
        Assert.True(packed.Length < plain.Length * 995 / 1000, $"pack {packed.Length} bytes, level 3 {plain.Length}");
    }

    /// <summary>A random reference, and a target of <paramref name="pieces"/> runs copied from random places in it.</summary>
    private static (byte[] Reference, byte[] Target) RunsFromAll(int referenceLength, int pieceLength, int pieces, int seed)
    {
        var random = new Random(seed);
        var reference = new byte[referenceLength];
        random.NextBytes(reference);
        var target = new byte[pieceLength * pieces];
        for (var i = 0; i < pieces; i++)
        {
            reference.AsSpan(random.Next(referenceLength - pieceLength), pieceLength).CopyTo(target.AsSpan(i * pieceLength));
        }

        return (reference, target);
    }
}
