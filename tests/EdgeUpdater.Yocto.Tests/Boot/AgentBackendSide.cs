using System.Reflection;

namespace EdgeUpdater.Yocto.Tests.Boot;

/// <summary>
/// The agent's own bootloader backends (src/EdgeUpdater.Agent/Bootloader: UBootBootloader,
/// GrubBootloader, and BootEnvironment's Trial/Committed value sets), writing and reading the same
/// environment files the simulated bootloaders use. The types are internal to the agent, so they are
/// reached by name; a rename there fails these tests, which is the point: both sides of the boot
/// contract are exercised together.
/// </summary>
internal sealed class AgentBackendSide : IAgentBootSide
{
    private const string Namespace = "EdgeUpdater.Agent.Bootloader.";
    private static readonly Assembly AgentAssembly = Assembly.Load(new AssemblyName("edgeupdater-agent"));
    private static readonly Type EnvironmentType = AgentType("BootEnvironment");

    private readonly object _backend;

    private AgentBackendSide(string name, object backend)
    {
        Name = name;
        _backend = backend;
    }

    public string Name { get; }

    /// <summary>The agent's U-Boot backend on an fw_env.config (fw_printenv / fw_setenv -s).</summary>
    public static AgentBackendSide ForUBoot(string fwEnvConfig, string scratchDirectory) =>
        new("agent UBootBootloader", Activator.CreateInstance(AgentType("UBootBootloader"), fwEnvConfig, scratchDirectory, null)!);

    /// <summary>The agent's GRUB backend on a grubenv file (grub-editenv).</summary>
    public static AgentBackendSide ForGrub(string environmentFile) =>
        new("agent GrubBootloader", Activator.CreateInstance(AgentType("GrubBootloader"), environmentFile, null)!);

    public Task ActivateAsync(string slot, CancellationToken cancellationToken = default) =>
        WriteAsync(ValueSet("Trial", slot), cancellationToken);

    public Task CommitAsync(string slot, CancellationToken cancellationToken = default) =>
        WriteAsync(ValueSet("Committed", slot), cancellationToken);

    public Task RollbackAsync(string toSlot, CancellationToken cancellationToken = default) =>
        WriteAsync(ValueSet("Committed", toSlot), cancellationToken);

    /// <summary>The environment as the agent understands it: slot, trial flag, boot count and limit.</summary>
    public async Task<(string? Slot, bool UpgradeAvailable, int BootCount, int BootLimit)> ReadAsync(CancellationToken cancellationToken = default)
    {
        var task = (Task)_backend.GetType().GetMethod("ReadAsync")!.Invoke(_backend, [cancellationToken])!;
        await task;
        var environment = task.GetType().GetProperty("Result")!.GetValue(task)!;
        object? Property(string name) => EnvironmentType.GetProperty(name)!.GetValue(environment);
        return ((string?)Property("Slot"), (bool)Property("UpgradeAvailable")!, (int)Property("BootCount")!, (int)Property("BootLimit")!);
    }

    private static Type AgentType(string name) =>
        AgentAssembly.GetType(Namespace + name, throwOnError: true)!;

    private static IReadOnlyDictionary<string, string> ValueSet(string method, string slot) =>
        (IReadOnlyDictionary<string, string>)EnvironmentType.GetMethod(method, BindingFlags.Public | BindingFlags.Static)!.Invoke(null, [slot])!;

    private Task WriteAsync(IReadOnlyDictionary<string, string> values, CancellationToken cancellationToken) =>
        (Task)_backend.GetType().GetMethod("WriteAsync")!.Invoke(_backend, [values, cancellationToken])!;
}
