using EdgeUpdater.Agent.State;
using EdgeUpdater.Protocol;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Agent.Tests.State;

public sealed class StateJournalTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    [Fact]
    public void Saved_state_loads_back_whole_with_a_growing_sequence()
    {
        var journal = new StateJournal(_directory.Path);
        Assert.Null(journal.Load());
        var state = new AgentState
        {
            Targets = [new TargetState { Name = "app", Kind = "app", Phase = UpdateState.Downloading, B = new SlotRecord { State = SlotState.Writing, Version = "2.0.0" }, Pending = new PendingUpdate { ManifestSha256 = "m", Name = "demo", Version = "2.0.0", ImageSha256 = "i", Slot = "b", DownloadOffset = 4096, ETag = "\"i\"" } }],
            KeySetVersion = 3,
        };

        var first = journal.Save(state, "downloading");
        var second = journal.Save(first, "download-progress");
        var loaded = journal.Load()!;

        Assert.Equal(2, second.Sequence);
        Assert.Equal(2, loaded.Sequence);
        Assert.Equal(3, loaded.KeySetVersion);
        var target = loaded.Target("app");
        Assert.Equal((UpdateState.Downloading, SlotState.Writing, 4096L, "\"i\""), (target.Phase, target.B.State, target.Pending!.DownloadOffset, target.Pending.ETag));
        Assert.False(File.Exists(journal.FilePath + ".tmp"));
    }

    [Fact]
    public void History_keeps_the_newest_hundred_lines()
    {
        var state = new AgentState();
        for (var i = 0; i < 150; i++)
        {
            state = state.WithHistory(new HistoryRecord { Target = "app", Message = $"#{i}" });
        }

        Assert.Equal(AgentState.HistoryLimit, state.History.Count);
        Assert.Equal("#149", state.History[^1].Message);
        Assert.Equal("#50", state.History[0].Message);
    }

    [Fact]
    public void A_corrupt_file_is_reported_with_its_path()
    {
        File.WriteAllText(_directory.Combine("state.json"), "{ \"schema\": 1, \"targets\": [");
        var e = Assert.Throws<InvalidDataException>(() => new StateJournal(_directory.Path).Load());
        Assert.Contains(_directory.Combine("state.json"), e.Message, StringComparison.Ordinal);
    }

    public void Dispose() => _directory.Dispose();
}
