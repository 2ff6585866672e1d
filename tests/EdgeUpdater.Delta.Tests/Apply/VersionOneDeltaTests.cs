using System.Security.Cryptography;
using EdgeUpdater.SquashFs.IO;
using Xunit;

namespace EdgeUpdater.Delta.Tests.Apply;

/// <summary>Deltas of format version 1 (devices in the field may still be sent them) apply byte for byte and resume.</summary>
public sealed class VersionOneDeltaTests
{
    private const string TargetSha256 = "b29daf4a35bb9177fe502e4cd70713d8a076c47547114da94eeffa58791663cf";

    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "v1", name);

    [Theory]
    [InlineData("ab-best-v1.eud", DeltaMode.SquashFs)]
    [InlineData("ab-fast-v1.eud", DeltaMode.SquashFs)]
    [InlineData("ab-generic-v1.eud", DeltaMode.Generic)]
    public async Task A_version_1_delta_rebuilds_its_image(string name, DeltaMode mode)
    {
        var delta = await File.ReadAllBytesAsync(Fixture(name));
        var info = await DeltaInspector.InspectAsync(new MemoryStream(delta));
        Assert.Equal(1, info.Header.Version);
        Assert.Equal(mode, info.Header.Mode);
        var result = await DeltaTestKit.ApplyAsync(await File.ReadAllBytesAsync(Fixture("A.sqfs")), delta);
        Assert.Equal(TargetSha256, Convert.ToHexStringLower(SHA256.HashData(result)));
    }

    [Fact]
    public async Task A_version_1_best_delta_rebuilds_recompressed_blocks()
    {
        var info = await DeltaInspector.InspectAsync(File.OpenRead(Fixture("ab-best-v1.eud")));
        Assert.True(info.RecompressedBlocks > 0, "the fixture no longer exercises recompression");
        Assert.True(info.DeltaBytesBySection.GetValueOrDefault("content") > 0);
    }

    [Fact]
    public async Task An_interrupted_version_1_apply_resumes()
    {
        using var temp = new Testing.TempDirectory("delta-v1-resume");
        var output = temp.Combine("B.sqfs");
        var options = new DeltaApplyOptions { CheckpointPath = output + ".checkpoint", CheckpointInterval = 1, MaxParallelism = 2 };
        var resumed = false;
        for (long limit = 0; limit < 118784; limit += 118784 / 7)
        {
            using (var baseSource = new FileImageSource(Fixture("A.sqfs")))
            await using (var delta = File.OpenRead(Fixture("ab-best-v1.eud")))
            using (var failing = new PowerCutTarget(output, limit))
            {
                await Assert.ThrowsAsync<IOException>(() => DeltaApplier.ApplyAsync(baseSource, delta, failing, options));
            }

            var result = await DeltaApplier.ApplyAsync(Fixture("A.sqfs"), Fixture("ab-best-v1.eud"), output, options with { Resume = true });
            Assert.Equal(TargetSha256, Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(output))));
            resumed |= result.ResumedFrom > 0;
            File.Delete(output);
        }

        Assert.True(resumed, "no interruption point resumed from a checkpoint");
    }
}
