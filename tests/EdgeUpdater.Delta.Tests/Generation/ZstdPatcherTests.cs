using EdgeUpdater.Delta.Patching;
using Xunit;

namespace EdgeUpdater.Delta.Tests.Generation;

/// <summary>Patch frames over large references: what the fast level's frames find in them.</summary>
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
        const int PieceLength = 40;
        const int Pieces = 8192;
        var random = new Random(20261128);
        var reference = new byte[6 << 20];
        random.NextBytes(reference);
        var target = new byte[PieceLength * Pieces];
        for (var i = 0; i < Pieces; i++)
        {
            reference.AsSpan(random.Next(reference.Length - PieceLength), PieceLength).CopyTo(target.AsSpan(i * PieceLength));
        }

        using var patcher = new ZstdPatcher();
        var frame = patcher.Encode(reference, target, 3);
        var decoded = new byte[target.Length];
        patcher.Decode(reference, frame, decoded, "test frame");

        Assert.Equal(target, decoded);
        Assert.True(frame.Length < target.Length / 3, $"{frame.Length} bytes for {target.Length}: the frame missed most of the reference's runs");
    }
}
