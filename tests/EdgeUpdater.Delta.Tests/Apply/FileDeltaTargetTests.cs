using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Delta.Tests.Apply;

/// <summary>
/// The apply's output starts writeback of every 8 MiB it writes (sync_file_range); whatever the order of
/// the writes, on a file or a block device (an A/B slot), what lands is exactly what was written.
/// </summary>
public sealed class FileDeltaTargetTests : IDisposable
{
    private const int Piece = 512 << 10;
    private readonly TempDirectory _directory = new("delta-target");

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void Sequential_rewound_and_scattered_writes_land_exactly_in_a_file()
    {
        var path = _directory.Combine("out.img");
        var expected = new byte[40 << 20];
        using (var target = new FileDeltaTarget(path))
        {
            WriteLikeAnApply(target, expected, truncates: true);
            target.Flush();
            Assert.Equal(expected.Length, target.Length);
        }

        Assert.True(expected.AsSpan().SequenceEqual(File.ReadAllBytes(path)));
    }

    [Fact]
    public async Task Sequential_rewound_and_scattered_writes_land_exactly_on_a_block_device()
    {
        var backing = _directory.Combine("slot.img");
        using (var file = File.Create(backing))
        {
            file.SetLength(48 << 20);
        }

        var device = (await ExternalTool.RunCheckedAsync("losetup", ["--find", "--show", backing])).StandardOutput.Trim();
        try
        {
            var expected = new byte[40 << 20];
            using (var target = new FileDeltaTarget(device))
            {
                Assert.True(target.IsBlockDevice);
                WriteLikeAnApply(target, expected, truncates: false);
                target.Flush();
            }

            var landed = new byte[expected.Length];
            using (var read = new FileStream(device, FileMode.Open, FileAccess.Read))
            {
                read.ReadExactly(landed);
            }

            Assert.True(expected.AsSpan().SequenceEqual(landed));
        }
        finally
        {
            await ExternalTool.RunCheckedAsync("losetup", ["-d", device]);
        }
    }

    /// <summary>
    /// 20 MiB front to back (two writeback chunks and a half), a resume from 6 MiB that rewrites with other
    /// bytes, a jump forward that leaves a hole, then sequential writes again; <paramref name="expected"/>
    /// gets what must land.
    /// </summary>
    private static void WriteLikeAnApply(FileDeltaTarget target, byte[] expected, bool truncates)
    {
        var random = new Random(7);
        void Write(long offset, int length)
        {
            var bytes = new byte[length];
            random.NextBytes(bytes);
            target.WriteAt(offset, bytes);
            bytes.CopyTo(expected.AsSpan((int)offset));
        }

        for (long offset = 0; offset < 20 << 20; offset += Piece)
        {
            Write(offset, Piece);
        }

        if (truncates)
        {
            target.SetLength(6 << 20);
            expected.AsSpan(6 << 20).Clear();
        }

        for (long offset = 6 << 20; offset < 26 << 20; offset += Piece)
        {
            Write(offset, Piece);
        }

        // Past a hole of 3 MiB and not on a piece boundary.
        for (long offset = (29 << 20) + 1000; offset + Piece <= expected.Length; offset += Piece)
        {
            Write(offset, Piece);
        }

        Write(expected.Length - 1000, 1000);
    }
}
