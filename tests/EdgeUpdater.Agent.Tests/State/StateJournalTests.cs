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

    [Fact]
    public void A_newer_agents_state_that_says_this_agent_reads_it_loads_and_saves_in_this_schema()
    {
        // What a later agent that added a field writes; the device then rolled back to this agent's slot.
        File.WriteAllText(_directory.Combine("state.json"), """
            { "schema": 2, "minReaderSchema": 1, "sequence": 7, "keySetVersion": 5, "futureField": { "x": [1, 2] },
              "targets": [ { "name": "app", "kind": "app", "committedSlot": "b", "futureTargetField": true } ] }
            """);
        var journal = new StateJournal(_directory.Path);

        var loaded = journal.Load()!;

        Assert.Equal((AgentState.CurrentSchema, AgentState.OldestReaderSchema, 7L, 5L), (loaded.Schema, loaded.MinReaderSchema, loaded.Sequence, loaded.KeySetVersion));
        Assert.Equal("b", loaded.Target("app").CommittedSlot);
        journal.Save(loaded, "test");
        var saved = File.ReadAllText(journal.FilePath);
        Assert.Contains($"\"schema\": {AgentState.CurrentSchema}", saved, StringComparison.Ordinal);
        Assert.DoesNotContain("future", saved, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData(3, 2)]
    [InlineData(0, 0)]
    public void A_state_of_a_schema_this_agent_cannot_read_is_refused(int schema, int minReaderSchema)
    {
        File.WriteAllText(_directory.Combine("state.json"), $$"""{ "schema": {{schema}}, "minReaderSchema": {{minReaderSchema}}, "targets": [] }""");
        var e = Assert.Throws<InvalidDataException>(() => new StateJournal(_directory.Path).Load());
        Assert.Contains($"has schema {schema}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_refused_file_is_set_aside_whole_and_the_next_load_starts_afresh()
    {
        var bytes = "{ \"schema\": 1, \"targets\": ["u8.ToArray();
        File.WriteAllBytes(_directory.Combine("state.json"), bytes);
        var journal = new StateJournal(_directory.Path);
        Assert.Throws<InvalidDataException>(() => journal.Load());

        var (kept, keySetVersion) = journal.SetAside();

        Assert.Equal(bytes, File.ReadAllBytes(kept));
        Assert.Equal(0, keySetVersion);
        Assert.Null(journal.Load());
    }

    [Fact]
    public void Setting_aside_a_newer_agents_state_keeps_the_key_set_version_it_names()
    {
        File.WriteAllText(_directory.Combine("state.json"), """{ "schema": 3, "minReaderSchema": 3, "keySetVersion": 7, "targets": [] }""");
        var journal = new StateJournal(_directory.Path);
        Assert.Throws<InvalidDataException>(() => journal.Load());

        Assert.Equal(7, journal.SetAside().KeySetVersion);
    }

    public void Dispose() => _directory.Dispose();
}
