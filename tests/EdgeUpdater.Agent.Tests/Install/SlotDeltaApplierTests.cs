using EdgeUpdater.Agent.Install;
using EdgeUpdater.Agent.Slots;
using EdgeUpdater.Agent.Tests.Fixtures;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Agent.Tests.Install;

/// <summary>One image pair (mksquashfs, gzip) and the delta between them, made once for the class.</summary>
public sealed class DeltaPairFixture : IAsyncLifetime
{
    private readonly TempDirectory _directory = new("agent-delta-pair");

    public string V1 { get; private set; } = "";

    public string V2 { get; private set; } = "";

    public string Delta { get; private set; } = "";

    public string V1Sha256 { get; private set; } = "";

    public string V2Sha256 { get; private set; } = "";

    public long V2Size { get; private set; }

    public string Directory => _directory.Path;

    public async ValueTask InitializeAsync()
    {
        // 5 MiB new in v2 (several delta sections), 2 MiB shared (copies).
        V1 = await TestImages.BuildAsync(_directory.Path, new TestImageOptions { Version = "1.0.0", HttpPort = 1, SharedFillerBytes = 2 << 20 });
        V2 = await TestImages.BuildAsync(_directory.Path, new TestImageOptions { Version = "2.0.0", HttpPort = 1, SharedFillerBytes = 2 << 20, FillerBytes = 5 << 20 });
        Delta = await TestDeltas.CreateAsync(V1, V2, _directory.Combine("v1-v2.eud"));
        V1Sha256 = TestDeltas.Sha256(V1);
        V2Sha256 = TestDeltas.Sha256(V2);
        V2Size = new FileInfo(V2).Length;
    }

    public ValueTask DisposeAsync()
    {
        _directory.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>The agent's delta applier over EdgeUpdater.Delta: slot to slot, checkpoints, refusals with a reason.</summary>
public sealed class SlotDeltaApplierTests : IClassFixture<DeltaPairFixture>, IDisposable
{
    private readonly DeltaPairFixture _pair;
    private readonly TempDirectory _slots = new("agent-delta-slots");
    private readonly SlotDeltaApplier _applier = new();

    public SlotDeltaApplierTests(DeltaPairFixture pair)
    {
        _pair = pair;
        File.Copy(pair.V1, BaseSlot);

        // The inactive slot holds an older, longer image: the apply must cut it to the new size.
        File.WriteAllBytes(OutputSlot, new byte[pair.V2Size + 123_456]);
    }

    private string BaseSlot => _slots.Combine("app-a.sqfs");

    private string OutputSlot => _slots.Combine("app-b.sqfs");

    private string CheckpointPath => _slots.Combine("apply.checkpoint");

    [Fact]
    public async Task Rebuilds_the_new_image_into_the_other_slot_and_leaves_the_base_alone()
    {
        var outcome = await _applier.ApplyAsync(Request(), TestContext.Current.CancellationToken);

        Assert.Equal((_pair.V2Sha256, _pair.V2Size, 0L), (outcome.ImageSha256, outcome.ImageSize, outcome.ResumedFrom));
        Assert.Equal(_pair.V2Sha256, TestDeltas.Sha256(OutputSlot));
        Assert.Equal(_pair.V1Sha256, TestDeltas.Sha256(BaseSlot));
        Assert.False(File.Exists(CheckpointPath));
    }

    [Fact]
    public async Task Interrupted_apply_continues_from_its_checkpoint()
    {
        var interrupted = Request() with
        {
            CheckpointIntervalBytes = 1 << 20,
            Progress = (written, _) =>
            {
                if (File.Exists(CheckpointPath))
                {
                    throw new SimulatedPowerCutException();
                }
            },
        };
        await Assert.ThrowsAsync<SimulatedPowerCutException>(() => _applier.ApplyAsync(interrupted, TestContext.Current.CancellationToken));
        Assert.True(File.Exists(CheckpointPath));

        var outcome = await _applier.ApplyAsync(Request() with { CheckpointIntervalBytes = 1 << 20 }, TestContext.Current.CancellationToken);

        Assert.InRange(outcome.ResumedFrom, 1 << 20, _pair.V2Size - 1);
        Assert.Equal(_pair.V2Sha256, TestDeltas.Sha256(OutputSlot));
        Assert.False(File.Exists(CheckpointPath));
    }

    [Fact]
    public async Task Corrupt_delta_is_refused_with_its_category()
    {
        var flipped = await TestDeltas.FlipBytesAsync(_pair.Delta);
        try
        {
            var refused = await Assert.ThrowsAsync<DeltaApplyException>(() => _applier.ApplyAsync(Request() with { DeltaPath = flipped }, TestContext.Current.CancellationToken));

            Assert.Equal("corrupted", refused.Reason);
            Assert.Contains("delta offset", refused.Message, StringComparison.Ordinal);
            Assert.Equal(_pair.V1Sha256, TestDeltas.Sha256(BaseSlot));
        }
        finally
        {
            File.Delete(flipped);
        }
    }

    [Fact]
    public async Task Checkpoint_of_another_delta_is_refused_and_removed_so_the_next_attempt_starts_clean()
    {
        await File.WriteAllBytesAsync(CheckpointPath, new byte[96], TestContext.Current.CancellationToken);

        var refused = await Assert.ThrowsAsync<DeltaApplyException>(() => _applier.ApplyAsync(Request(), TestContext.Current.CancellationToken));

        Assert.Equal("checkpoint-mismatch", refused.Reason);
        Assert.False(File.Exists(CheckpointPath));
        Assert.Equal(_pair.V2Sha256, (await _applier.ApplyAsync(Request(), TestContext.Current.CancellationToken)).ImageSha256);
    }

    [Fact]
    public async Task A_slot_without_room_is_reported_as_lack_of_space_not_as_a_bad_delta()
    {
        // A bad delta falls back to the full image; that would need the same room, so it must not happen here.
        await using var small = await ScratchMount.TmpfsAsync(_slots.Combine("small-fs"), _pair.V2Size / 2);
        var request = Request() with { OutputPath = small.Combine("app-b.sqfs") };

        var refused = await Assert.ThrowsAsync<InsufficientSpaceException>(() => _applier.ApplyAsync(request, TestContext.Current.CancellationToken));

        Assert.Contains(request.OutputPath, refused.Message, StringComparison.Ordinal);
        Assert.Equal(_pair.V1Sha256, TestDeltas.Sha256(BaseSlot));
    }

    [Fact]
    public async Task A_delta_for_another_image_than_the_manifests_is_refused_before_the_slot_is_touched()
    {
        var before = await File.ReadAllBytesAsync(OutputSlot, TestContext.Current.CancellationToken);

        var refused = await Assert.ThrowsAsync<DeltaApplyException>(() => _applier.ApplyAsync(Request() with { ExpectedImage = (_pair.V1Sha256, _pair.V2Size) }, TestContext.Current.CancellationToken));

        Assert.Equal("wrong-target", refused.Reason);
        Assert.Equal(before, await File.ReadAllBytesAsync(OutputSlot, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task Refuses_to_write_the_slot_it_reads_from()
    {
        await Assert.ThrowsAsync<InvalidOperationException>(() => _applier.ApplyAsync(Request() with { OutputPath = BaseSlot }, TestContext.Current.CancellationToken));
        var link = BaseSlot + ".link";
        File.CreateSymbolicLink(link, BaseSlot);
        await Assert.ThrowsAsync<InvalidOperationException>(() => _applier.ApplyAsync(Request() with { OutputPath = link }, TestContext.Current.CancellationToken));
        Assert.Equal(_pair.V1Sha256, TestDeltas.Sha256(BaseSlot));
    }

    public void Dispose() => _slots.Dispose();

    private DeltaApplyRequest Request() => new()
    {
        BaseImagePath = BaseSlot,
        DeltaPath = _pair.Delta,
        OutputPath = OutputSlot,
        CheckpointPath = CheckpointPath,
        ExpectedImage = (_pair.V2Sha256, _pair.V2Size),
    };

    private sealed class SimulatedPowerCutException : Exception
    {
    }
}
