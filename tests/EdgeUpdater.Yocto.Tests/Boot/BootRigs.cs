using System.Buffers.Binary;
using EdgeUpdater.Testing;
using EdgeUpdater.Yocto.Tests.Layer;

namespace EdgeUpdater.Yocto.Tests.Boot;

/// <summary>One power-on: what was booted (null: nothing), what the script printed, how often it saved.</summary>
internal sealed record BootAttempt(BootedKernel? Kernel, IReadOnlyList<string> Output, int Saves)
{
    public string Describe() => $"booted {Kernel?.Partition ?? "nothing"} ({Kernel?.CommandLine}), saves {Saves}:\n  " + string.Join("\n  ", Output);
}

/// <summary>The agent's side of docs/bootloader.md: the writes it makes on activation, commit and rollback.</summary>
internal interface IAgentBootSide
{
    string Name { get; }

    Task ActivateAsync(string slot, CancellationToken cancellationToken = default);

    Task CommitAsync(string slot, CancellationToken cancellationToken = default);

    Task RollbackAsync(string toSlot, CancellationToken cancellationToken = default);
}

/// <summary>A device with one bootloader, its real environment storage and two slot partitions.</summary>
internal interface IBootRig
{
    string Bootloader { get; }

    /// <summary>Writes the environment as the agent would (selected per test).</summary>
    IAgentBootSide Agent { get; set; }

    /// <summary>Sets a variable directly in storage (integrator defaults, corrupt values).</summary>
    Task SetVariablesAsync(IReadOnlyDictionary<string, string> values, CancellationToken cancellationToken = default);

    Task<Dictionary<string, string>> ReadEnvironmentAsync(CancellationToken cancellationToken = default);

    /// <summary>Puts <paramref name="image"/> (or nothing) into the partition of <paramref name="slot"/>.</summary>
    void SetSlotImage(string slot, SquashFsListing? image);

    Task<BootAttempt> PowerOnAsync(CancellationToken cancellationToken = default);
}

/// <summary>The writes docs/bootloader.md specifies for the agent, made with a <paramref name="set"/> function.</summary>
internal sealed class ContractAgentSide(string name, Func<IReadOnlyDictionary<string, string>, CancellationToken, Task> set) : IAgentBootSide
{
    public string Name { get; } = name;

    public Task ActivateAsync(string slot, CancellationToken cancellationToken = default) =>
        set(new Dictionary<string, string> { ["eu_slot"] = slot, ["upgrade_available"] = "1", ["bootcount"] = "0" }, cancellationToken);

    public Task CommitAsync(string slot, CancellationToken cancellationToken = default) =>
        set(new Dictionary<string, string> { ["eu_slot"] = slot, ["upgrade_available"] = "0", ["bootcount"] = "0" }, cancellationToken);

    public Task RollbackAsync(string toSlot, CancellationToken cancellationToken = default) =>
        set(new Dictionary<string, string> { ["eu_slot"] = toSlot, ["upgrade_available"] = "0", ["bootcount"] = "0" }, cancellationToken);
}

/// <summary>
/// U-Boot: boot.cmd compiled with <c>mkimage -T script</c> (the script simulated is the one read
/// back from boot.scr), the environment in a real redundant env pair, slots on <c>mmc 0:2</c> and
/// <c>mmc 0:3</c> as in wic/edgeupdater-ab-uboot.wks.in.
/// </summary>
internal sealed class UBootRig : IBootRig
{
    /// <summary>What U-Boot's default environment provides on a typical arm64 board (load addresses).</summary>
    public static readonly IReadOnlyDictionary<string, string> BoardDefaults = new Dictionary<string, string>
    {
        ["kernel_addr_r"] = "0x40400000",
        ["ramdisk_addr_r"] = "0x44000000",
        ["fdt_addr_r"] = "0x40000000",
        ["fdtcontroladdr"] = "7ff2a000",
        ["eu_cmdline"] = "console=ttyAMA0",
    };

    private readonly IReadOnlyList<Statement> _script;
    private readonly BootMedia _media = new();

    private UBootRig(IReadOnlyList<Statement> script, UBootEnvironmentFile environment)
    {
        _script = script;
        Environment = environment;
        Agent = new ContractAgentSide("documented contract (fw_setenv -s)", environment.SetAsync);
    }

    public string Bootloader => "uboot";

    public UBootEnvironmentFile Environment { get; }

    public IAgentBootSide Agent { get; set; }

    public static async Task<UBootRig> CreateAsync(
        string directory, IReadOnlyDictionary<string, string> stored, SlotImagesFixture slots, CancellationToken cancellationToken = default)
    {
        var script = await CompileBootScriptAsync(directory, cancellationToken);
        var environment = await UBootEnvironmentFile.CreateAsync(directory, stored, cancellationToken);
        var rig = new UBootRig(BootScript.Parse(script, BootScriptDialect.UBootHush), environment);
        rig.SetSlotImage("a", slots.SlotA);
        rig.SetSlotImage("b", slots.SlotB);
        return rig;
    }

    /// <summary>Compiles the layer's boot.cmd as the recipe does and returns the script stored in boot.scr.</summary>
    public static async Task<string> CompileBootScriptAsync(string directory, CancellationToken cancellationToken = default)
    {
        var source = LayerPaths.InLayer("recipes-bsp", "edgeupdater-boot", "files", "boot.cmd");
        var image = Path.Combine(directory, "boot.scr");
        await ExternalTool.RunCheckedAsync("mkimage", ["-A", "arm64", "-O", "linux", "-T", "script", "-C", "none", "-n", "EdgeUpdater A/B boot", "-d", source, image], cancellationToken: cancellationToken);
        return ReadLegacyScriptImage(await File.ReadAllBytesAsync(image, cancellationToken));
    }

    /// <summary>The script inside a legacy U-Boot script image: 64-byte header, length table, text.</summary>
    public static string ReadLegacyScriptImage(byte[] image)
    {
        const uint LegacyMagic = 0x27051956;
        const byte ScriptType = 6;
        if (image.Length < 72 || BinaryPrimitives.ReadUInt32BigEndian(image) != LegacyMagic)
        {
            throw new InvalidDataException("not a legacy U-Boot image (magic 0x27051956 expected)");
        }

        if (image[30] != ScriptType)
        {
            throw new InvalidDataException($"image type {image[30]}, expected {ScriptType} (script)");
        }

        var dataSize = BinaryPrimitives.ReadUInt32BigEndian(image.AsSpan(12));
        var firstLength = BinaryPrimitives.ReadUInt32BigEndian(image.AsSpan(64));
        var terminator = BinaryPrimitives.ReadUInt32BigEndian(image.AsSpan(68));
        if (terminator != 0 || 72 + firstLength > image.Length || firstLength + 8 != dataSize)
        {
            throw new InvalidDataException("script image length table is not one entry followed by 0");
        }

        return System.Text.Encoding.UTF8.GetString(image, 72, (int)firstLength);
    }

    public Task SetVariablesAsync(IReadOnlyDictionary<string, string> values, CancellationToken cancellationToken = default) =>
        Environment.SetAsync(values, cancellationToken);

    public Task<Dictionary<string, string>> ReadEnvironmentAsync(CancellationToken cancellationToken = default) =>
        Environment.ReadAsync(cancellationToken);

    public void SetSlotImage(string slot, SquashFsListing? image) => _media.SetPartition(slot == "a" ? "mmc 0:2" : "mmc 0:3", image);

    public async Task<BootAttempt> PowerOnAsync(CancellationToken cancellationToken = default)
    {
        // U-Boot loads the stored environment; distro/standard boot then sets the device it found
        // boot.scr on before sourcing it.
        var environment = await Environment.ReadAsync(cancellationToken);
        environment["devtype"] = "mmc";
        environment["devnum"] = "0";
        environment["distro_bootpart"] = "1";
        var machine = new UBootMachine(environment, _media);
        machine.Run(_script);
        foreach (var saved in machine.Saves)
        {
            await Environment.SaveWholeAsync(saved, cancellationToken);
        }

        return new BootAttempt(machine.Booted, machine.Output, machine.Saves.Count);
    }
}

/// <summary>
/// GRUB: wic/edgeupdater-grub.cfg read from the EFI partition <c>hd0,gpt1</c> (prefix
/// /EFI/BOOT), the environment block a real grubenv file, slots on <c>hd0,gpt2</c> and <c>hd0,gpt3</c>.
/// </summary>
internal sealed class GrubRig : IBootRig
{
    private const string Prefix = "(hd0,gpt1)/EFI/BOOT";

    private readonly IReadOnlyList<Statement> _script;
    private readonly BootMedia _media = new();

    private GrubRig(IReadOnlyList<Statement> script, GrubEnvironmentFile environment)
    {
        _script = script;
        Environment = environment;
        Agent = new ContractAgentSide("documented contract (grub-editenv set)", environment.SetAsync);
    }

    public string Bootloader => "grub";

    public GrubEnvironmentFile Environment { get; }

    public IAgentBootSide Agent { get; set; }

    public static string ConfigPath => LayerPaths.InLayer("wic", "edgeupdater-grub.cfg");

    public static async Task<GrubRig> CreateAsync(
        string directory, IReadOnlyDictionary<string, string>? stored, SlotImagesFixture slots, CancellationToken cancellationToken = default)
    {
        var environment = stored is null
            ? await GrubEnvironmentFile.CreateFromRecipeAsync(directory, cancellationToken)
            : await GrubEnvironmentFile.CreateWithToolAsync(directory, stored, cancellationToken);
        var script = BootScript.Parse(await File.ReadAllTextAsync(ConfigPath, cancellationToken), BootScriptDialect.Grub);
        var rig = new GrubRig(script, environment);
        rig.SetSlotImage("a", slots.SlotA);
        rig.SetSlotImage("b", slots.SlotB);
        return rig;
    }

    public Task SetVariablesAsync(IReadOnlyDictionary<string, string> values, CancellationToken cancellationToken = default) =>
        Environment.SetAsync(values, cancellationToken);

    public Task<Dictionary<string, string>> ReadEnvironmentAsync(CancellationToken cancellationToken = default) =>
        Environment.ReadAsync(cancellationToken);

    public void SetSlotImage(string slot, SquashFsListing? image) => _media.SetPartition(slot == "a" ? "hd0,gpt2" : "hd0,gpt3", image);

    public async Task<BootAttempt> PowerOnAsync(CancellationToken cancellationToken = default)
    {
        var exists = File.Exists(Environment.Path);
        var block = new GrubEnvironmentBlock(Prefix + "/grubenv", exists, exists ? await Environment.ReadAsync(cancellationToken) : new Dictionary<string, string>());
        var machine = new GrubMachine(new Dictionary<string, string> { ["root"] = "hd0,gpt1", ["prefix"] = Prefix }, _media, block);
        machine.Run(_script);
        foreach (var saved in machine.Saves)
        {
            await Environment.SetAsync(saved, cancellationToken);
        }

        return new BootAttempt(machine.Booted, machine.Output, machine.Saves.Count);
    }
}
