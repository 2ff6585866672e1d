using EdgeUpdater.Agent.State;
using EdgeUpdater.Agent.Tests.Fixtures;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Agent.Tests.EndToEnd;

/// <summary>
/// A state file this agent cannot read (damaged, or written by a newer agent whose trial failed and left the
/// device on this agent's slot) must not stop the agent from starting: it would leave the device unmanaged,
/// restarted and failing forever. The agent keeps the file, starts afresh from the booted image, and says so.
/// </summary>
[Trait("requirement", "root")]
public sealed class UnreadableStateTests
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData("""{ "schema": 3, "minReaderSchema": 2, "keySetVersion": 4, "targets": [ { "name": "app", "kind": "app", "committedSlot": "b" } ] }""", "has schema 3", 4)]
    [InlineData("""{ "schema": 1, "targets": [ { "name": "app", "ki""", "is not a valid state file", 0)]
    public async Task An_unreadable_state_file_is_kept_aside_and_the_agent_starts_afresh_on_the_booted_image(string content, string reason, long keySetVersion)
    {
        Privileges.RequireRoot("loop devices, squashfs and overlay mounts, chroot");
        await using var env = await DeviceEnvironment.CreateAsync();
        var (v1, _) = await env.BuildPairAsync();
        env.Sandbox.Provision(v1);
        Directory.CreateDirectory(env.Sandbox.StateDirectory);
        var statePath = Path.Combine(env.Sandbox.StateDirectory, "state.json");
        await File.WriteAllTextAsync(statePath, content, TestContext.Current.CancellationToken);

        var agent = env.Sandbox.StartAgent();
        var status = await env.WaitForAsync(s => s.Targets is [{ Version: "1.0.0" }], StepTimeout, "1.0.0 adopted afresh");

        Assert.False(agent.HasExited, env.Sandbox.Output);
        Assert.Contains("state file was unreadable", status.LastError, StringComparison.Ordinal);
        Assert.Contains(reason, status.LastError, StringComparison.Ordinal);
        Assert.Equal(content, await File.ReadAllTextAsync(statePath + ".unreadable", TestContext.Current.CancellationToken));
        var state = env.Sandbox.ReadState();
        Assert.Equal(AgentState.CurrentSchema, state.Schema);
        Assert.Equal("a", state.Target("app").CommittedSlot);
        Assert.Equal(keySetVersion, state.KeySetVersion);
    }
}
