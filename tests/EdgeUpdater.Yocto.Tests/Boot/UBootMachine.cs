namespace EdgeUpdater.Yocto.Tests.Boot;

/// <summary>
/// U-Boot running a boot script (hush): <c>setenv</c>, <c>echo</c>, <c>test</c>, <c>saveenv</c>
/// (records the whole environment, as U-Boot writes all of it), <c>load</c> (from the slot images of
/// <see cref="BootMedia"/>, setting <c>filesize</c> in hex) and <c>booti</c> (checks that kernel and
/// initramfs were loaded from the same partition at the addresses it is given, then hands over).
/// Numbers in <c>test</c> are decimal unless prefixed 0x, as U-Boot's simple_strtol(…, 0) reads them.
/// </summary>
internal sealed class UBootMachine : BootScriptMachine
{
    private readonly BootMedia _media;
    private readonly Dictionary<string, (string Partition, string Path)> _memory = new(StringComparer.Ordinal);

    /// <param name="environment">The environment U-Boot loaded from storage plus what it sets itself
    /// (devtype, devnum, load addresses).</param>
    /// <param name="media">The disk.</param>
    public UBootMachine(IDictionary<string, string> environment, BootMedia media)
        : base(environment)
    {
        _media = media;
    }

    /// <summary>The whole environment at each <c>saveenv</c>, in order; the caller writes them to storage.</summary>
    public List<IReadOnlyDictionary<string, string>> Saves { get; } = [];

    protected override long ParseTestNumber(string text)
    {
        var negative = text.StartsWith('-');
        var digits = negative ? text[1..] : text;
        var value = digits.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? ParseDigits(digits[2..], 16) : ParseDigits(digits, 10);
        return negative ? -value : value;
    }

    protected override int RunCommand(string name, IReadOnlyList<string> arguments, int line)
    {
        switch (name)
        {
            case "setenv":
                if (arguments.Count == 0)
                {
                    throw new BootScriptException($"line {line}: setenv without a name");
                }

                if (arguments.Count == 1)
                {
                    Environment.Remove(arguments[0]);
                }
                else
                {
                    Environment[arguments[0]] = string.Join(' ', arguments.Skip(1));
                }

                return 0;
            case "echo":
                Output.Add(string.Join(' ', arguments));
                return 0;
            case "test":
                return Test(arguments, line);
            case "saveenv":
                Saves.Add(new Dictionary<string, string>(Environment, StringComparer.Ordinal));
                return 0;
            case "load":
                return Load(arguments, line);
            case "booti":
                return BootImage(arguments, line);
            default:
                throw new BootScriptException($"line {line}: U-Boot command '{name}' is not simulated");
        }
    }

    private int Load(IReadOnlyList<string> arguments, int line)
    {
        // load <interface> <dev[:part]> <addr> <filename>
        if (arguments.Count != 4)
        {
            throw new BootScriptException($"line {line}: load expects interface, dev:part, address and file, got '{string.Join(' ', arguments)}'");
        }

        var partition = $"{arguments[0]} {arguments[1]}";
        var size = _media.SizeOf(partition, arguments[3]);
        if (size is null)
        {
            Output.Add($"** File not found {arguments[3]} on {partition} **");
            return 1;
        }

        _memory[arguments[2]] = (partition, arguments[3]);
        Environment["filesize"] = Hex(size.Value);
        return 0;
    }

    private int BootImage(IReadOnlyList<string> arguments, int line)
    {
        // booti <kernel addr> <initrd addr>:<size> <fdt addr>
        if (arguments.Count != 3 || !arguments[1].Contains(':', StringComparison.Ordinal))
        {
            throw new BootScriptException($"line {line}: booti expects kernel address, initrd address:size and fdt address");
        }

        var initrdAddress = arguments[1][..arguments[1].IndexOf(':', StringComparison.Ordinal)];
        if (!_memory.TryGetValue(arguments[0], out var kernel) || !_memory.TryGetValue(initrdAddress, out var initrd))
        {
            Output.Add("booti: nothing loaded at the kernel or initrd address");
            return 1;
        }

        if (kernel.Partition != initrd.Partition)
        {
            throw new BootScriptException($"line {line}: kernel from {kernel.Partition} but initramfs from {initrd.Partition}");
        }

        if (arguments[2].Length == 0)
        {
            throw new BootScriptException($"line {line}: booti without a device tree address");
        }

        StartKernel(new BootedKernel(kernel.Partition, kernel.Path, initrd.Path, Environment.GetValueOrDefault("bootargs", string.Empty)));
        return 0;
    }
}
