using System.Globalization;
using EdgeUpdater.SquashFs.IO;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Delta.Tests.Apply;

/// <summary>
/// An output without room for the new image, on real storage: a tmpfs too small for it, a loop device that
/// ends before it, a file system too full for the checkpoint. Each is refused as
/// <see cref="DeltaErrorCategory.OutputFull"/>; the base is never changed, and once there is room the
/// apply completes (from its checkpoint, when one was written).
/// </summary>
[Collection(DeltaImagesGroup.Name)]
public sealed class FullOutputTests
{
    private readonly DeltaImages _images;

    public FullOutputTests(DeltaImages images)
    {
        _images = images;
    }

    [Fact]
    public async Task A_file_system_too_small_for_the_image_refuses_it_before_anything_is_written()
    {
        var (aPath, b, deltaPath) = await PairAsync();
        var baseBefore = await File.ReadAllBytesAsync(aPath);
        await using var small = await ScratchMount.TmpfsAsync(_images.NewPath("small-fs"), b.Length / 2);
        var output = small.Combine("b.sqfs");
        var options = new DeltaApplyOptions { CheckpointPath = output + ".checkpoint", CheckpointInterval = 1 };

        var refused = await Assert.ThrowsAsync<DeltaException>(() => DeltaApplier.ApplyAsync(aPath, deltaPath, output, options));

        Assert.Equal(DeltaErrorCategory.OutputFull, refused.Category);
        Assert.Contains(output, refused.Message, StringComparison.Ordinal);
        Assert.Contains(b.Length.ToString(CultureInfo.InvariantCulture), refused.Message, StringComparison.Ordinal);
        Assert.Equal(0, new FileInfo(output).Length);
        Assert.False(File.Exists(options.CheckpointPath));
        Assert.Equal(baseBefore, await File.ReadAllBytesAsync(aPath));

        await small.ResizeAsync(b.Length * 2L);
        await DeltaApplier.ApplyAsync(aPath, deltaPath, output, options);
        DeltaTestKit.AssertSameImage(b, await File.ReadAllBytesAsync(output));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_file_system_whose_largest_file_is_smaller_than_the_image_refuses_it_before_anything_is_written(bool extents)
    {
        // ext4's largest file is 16 TiB (4 KiB blocks), 4 TiB without extents: a delta whose header names a
        // 32 TiB image. Files without extents have no fallocate: the kernel still checks the size first.
        await using var ext4 = await ScratchMount.LoopExt4Async(_images.NewPath("ext4.img"), _images.NewPath("ext4-fs"), 32 << 20, extents);

        // The premise: a small reservation succeeds with extents only.
        var probe = ext4.Combine("probe");
        await File.WriteAllBytesAsync(probe, []);
        var reserved = await ExternalTool.RunAsync("fallocate", ["--keep-size", "--length", "4096", probe], TimeSpan.FromSeconds(30));
        Assert.Equal(extents, reserved.ExitCode == 0);

        const long claimed = 1L << 45;
        var delta = HostileDeltaTests.Build(HostileDeltaTests.Header() with { TargetSize = claimed }, (Format.SectionKind.End, HostileDeltaTests.End(claimed)));
        var output = ext4.Combine("huge.out");
        DeltaException refused;
        using (var baseSource = new MemoryImageSource(HostileDeltaTests.Base))
        using (var sink = new FileDeltaTarget(output))
        {
            refused = await Assert.ThrowsAsync<DeltaException>(() => DeltaApplier.ApplyAsync(baseSource, new MemoryStream(delta), sink));
        }

        Assert.Equal(DeltaErrorCategory.OutputFull, refused.Category);
        Assert.Contains(claimed.ToString(CultureInfo.InvariantCulture), refused.Message, StringComparison.Ordinal);
        Assert.Equal(0, new FileInfo(output).Length);
    }

    [Fact]
    public async Task A_block_device_that_ends_before_the_image_stops_the_apply_which_resumes_once_it_is_larger()
    {
        Privileges.RequireRoot("loop devices");
        var (aPath, b, deltaPath) = await PairAsync();
        var backing = _images.NewPath("short-slot.img");

        // The slot lacks the image's last page: the apply fails at its very end, after checkpoints.
        var slotSize = (b.Length - 1) & ~4095;
        File.WriteAllBytes(backing, new byte[slotSize]);
        var device = (await ExternalTool.RunCheckedAsync("losetup", ["--find", "--show", backing])).StandardOutput.Trim();
        try
        {
            var options = new DeltaApplyOptions { CheckpointPath = _images.NewPath("slot.checkpoint"), CheckpointInterval = 64 << 10 };
            using (var baseSource = new FileImageSource(aPath))
            await using (var delta = File.OpenRead(deltaPath))
            using (var slot = new FileDeltaTarget(device))
            {
                var refused = await Assert.ThrowsAsync<DeltaException>(() => DeltaApplier.ApplyAsync(baseSource, delta, slot, options));
                Assert.Equal(DeltaErrorCategory.OutputFull, refused.Category);
                Assert.Contains(device, refused.Message, StringComparison.Ordinal);
            }

            Assert.True(File.Exists(options.CheckpointPath), "no checkpoint before the device's end");

            // A larger slot: the same device, its backing file grown and its capacity read again.
            using (var grown = new FileStream(backing, FileMode.Open))
            {
                grown.SetLength(((long)b.Length + 4095) & ~4095L);
            }

            await ExternalTool.RunCheckedAsync("losetup", ["--set-capacity", device]);
            DeltaApplyResult result;
            using (var baseSource = new FileImageSource(aPath))
            await using (var delta = File.OpenRead(deltaPath))
            using (var slot = new FileDeltaTarget(device))
            {
                result = await DeltaApplier.ApplyAsync(baseSource, delta, slot, options with { Resume = true });
            }

            Assert.InRange(result.ResumedFrom, 1, slotSize);
            var landed = new byte[b.Length];
            await using (var read = new FileStream(device, FileMode.Open, FileAccess.Read))
            {
                read.ReadExactly(landed);
            }

            DeltaTestKit.AssertSameImage(b, landed);
        }
        finally
        {
            await ExternalTool.RunAsync("losetup", ["-d", device]);
        }
    }

    [Fact]
    public async Task A_checkpoint_that_finds_no_room_stops_the_apply_and_the_one_before_it_stays()
    {
        var (aPath, b, deltaPath) = await PairAsync();
        await using var tiny = await ScratchMount.TmpfsAsync(_images.NewPath("checkpoint-fs"), 64 << 10);
        var checkpoint = tiny.Combine("apply.checkpoint");
        var output = _images.NewPath("beside-full-checkpoint.out");
        var options = new DeltaApplyOptions { CheckpointPath = checkpoint, CheckpointInterval = 1 };
        var filler = tiny.Combine("filler");
        var progress = new InlineProgress(_ =>
        {
            // Once the first checkpoint is written, something else takes the rest of the file system.
            if (File.Exists(checkpoint) && !File.Exists(filler))
            {
                FillUp(filler);
            }
        });

        var refused = await Assert.ThrowsAsync<DeltaException>(() => DeltaApplier.ApplyAsync(aPath, deltaPath, output, options with { Progress = progress }));

        Assert.Equal(DeltaErrorCategory.OutputFull, refused.Category);
        Assert.Contains("checkpoint", refused.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(checkpoint), "the checkpoint before the full disk is gone");

        File.Delete(filler);
        var result = await DeltaApplier.ApplyAsync(aPath, deltaPath, output, options with { Resume = true });
        Assert.True(result.ResumedFrom > 0, "did not resume from the checkpoint before the full disk");
        DeltaTestKit.AssertSameImage(b, await File.ReadAllBytesAsync(output));
    }

    private static void FillUp(string path)
    {
        using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
        var chunk = new byte[4096];
        try
        {
            while (true)
            {
                file.Write(chunk);
                file.Flush();
            }
        }
        catch (IOException)
        {
            // Full: what the test wants.
        }
    }

    private async Task<(string A, byte[] B, string Delta)> PairAsync()
    {
        Privileges.RequireRoot("mounts of a fixed size");
        var (aPath, bPath, deltaPath) = await _images.WriteDeltaAsync(DeltaImages.Variants.Single(v => v.Name == "gzip"), DeltaLevel.Fast);
        return (aPath, await File.ReadAllBytesAsync(bPath), deltaPath);
    }

    /// <summary>Reports on the applying thread, in order.</summary>
    private sealed class InlineProgress(Action<DeltaApplyProgress> report) : IProgress<DeltaApplyProgress>
    {
        public void Report(DeltaApplyProgress value) => report(value);
    }
}
