using System.Text.Json;
using EdgeUpdater.Agent.Interop.Linux;

namespace EdgeUpdater.Agent.State;

/// <summary>
/// The state file: every write is a whole new file (temp, fsync, rename, fsync the directory), so a
/// power cut leaves either the old or the new state, never a torn one.
/// </summary>
internal sealed class StateJournal
{
    /// <summary>Test-only hook: SIGKILL the agent right after persisting the named checkpoint (docs/agent.md).</summary>
    public const string FaultVariable = "EDGEUPDATER_FAULT_KILL_AFTER";

    private readonly string _path;
    private readonly string _directory;
    private readonly string? _killAfter;

    public StateJournal(string stateDirectory, string? killAfter = null)
    {
        _directory = stateDirectory;
        _path = Path.Combine(stateDirectory, "state.json");
        _killAfter = killAfter;
    }

    public string FilePath => _path;

    /// <summary>
    /// Loads the state, or null when none was ever written. A newer agent's state that says this agent reads it
    /// (<see cref="AgentState.MinReaderSchema"/>) is read for what this agent knows, and saved again in this
    /// agent's schema. Throws <see cref="InvalidDataException"/> for anything else.
    /// </summary>
    public AgentState? Load()
    {
        if (!File.Exists(_path))
        {
            return null;
        }

        var bytes = File.ReadAllBytes(_path);
        try
        {
            var state = JsonSerializer.Deserialize(bytes, AgentStateJsonContext.Default.AgentState)
                ?? throw new InvalidDataException($"{_path} holds null");
            if (state.Schema < AgentState.CurrentSchema || state.MinReaderSchema > AgentState.CurrentSchema)
            {
                throw new InvalidDataException($"{_path} has schema {state.Schema}, read by schema {state.MinReaderSchema} and later; this agent reads {AgentState.CurrentSchema}");
            }

            return state with { Schema = AgentState.CurrentSchema, MinReaderSchema = AgentState.OldestReaderSchema };
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{_path} is not a valid state file: {e.Message}", e);
        }
    }

    /// <summary>
    /// Renames a state file that <see cref="Load"/> refused to <c>state.json.unreadable</c> (replacing an older
    /// one), so that the agent can start afresh and the file is still there to look at; returns the new path
    /// and the key set version the file names (0 when it names none), which a fresh start must not lower:
    /// it is what refuses an older, perhaps compromised, key set.
    /// </summary>
    public (string KeptAs, long KeySetVersion) SetAside()
    {
        long keySetVersion = 0;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(_path));
            if (document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("keySetVersion", out var version) && version.TryGetInt64(out var number) && number > 0)
            {
                keySetVersion = number;
            }
        }
        catch (JsonException)
        {
            // Not JSON at all: nothing to keep.
        }

        var kept = _path + ".unreadable";
        File.Move(_path, kept, overwrite: true);
        Libc.FsyncDirectory(_directory);
        return (kept, keySetVersion);
    }

    /// <summary>Persists <paramref name="state"/> durably. <paramref name="checkpoint"/> names the transition for the fault hook.</summary>
    public AgentState Save(AgentState state, string checkpoint)
    {
        Directory.CreateDirectory(_directory);
        var next = state with { Sequence = state.Sequence + 1 };
        var temp = _path + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            JsonSerializer.Serialize(stream, next, AgentStateJsonContext.Default.AgentState);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temp, _path, overwrite: true);
        Libc.FsyncDirectory(_directory);
        if (_killAfter is not null && string.Equals(_killAfter, checkpoint, StringComparison.Ordinal))
        {
            // Simulates a power cut at the worst moment: the state is on disk, nothing after it happened.
            Libc.Kill(Libc.GetProcessId(), Libc.SigKill);
        }

        return next;
    }
}
