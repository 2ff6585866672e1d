using System.Text.RegularExpressions;

namespace EdgeUpdater.Yocto.Tests.Boot;

/// <summary>
/// GRUB running grub.cfg. GRUB script cannot run outside GRUB, so this follows its documented
/// behaviour step by step: <c>set</c>; <c>load_env</c> reads every variable of the environment block
/// and <c>save_env NAME...</c> writes just those back in place (both through grub-editenv on a real
/// grubenv file); <c>[ ]</c>/<c>test</c> with <c>-s</c> on that file and numbers read by
/// grub_strtosl (0x hex, leading 0 octal); <c>regexp --set=N:var</c>; <c>menuentry</c> only defines
/// an entry, and after the script GRUB runs entry number <c>${default}</c> (timeout 0) in the same
/// variable scope (normal entries open no new context), whose <c>linux</c> and <c>initrd</c> must
/// name files in a slot image of <see cref="BootMedia"/>; when an entry fails (a command failed or no
/// kernel is loaded) GRUB runs entry <c>${fallback}</c>, as grub_menu_execute_with_fallback does.
/// </summary>
/// <summary>The GRUB environment block as GRUB finds it at power-on.</summary>
/// <param name="GrubPath">Its name in GRUB, <c>${prefix}/grubenv</c>.</param>
/// <param name="Exists">False when the file is missing.</param>
/// <param name="Variables">Its variables.</param>
internal sealed record GrubEnvironmentBlock(string GrubPath, bool Exists, IReadOnlyDictionary<string, string> Variables);

internal sealed class GrubMachine : BootScriptMachine
{
    private readonly BootMedia _media;
    private readonly GrubEnvironmentBlock _block;
    private readonly List<MenuEntryStatement> _entries = [];
    private (string Partition, string Path, string CommandLine)? _kernel;
    private (string Partition, string Path)? _initrd;
    private bool _loaderFailed;

    /// <param name="environment">Variables GRUB sets itself before reading grub.cfg (root, prefix).</param>
    /// <param name="media">The disk.</param>
    /// <param name="block">The environment block as it is on disk when the machine starts.</param>
    public GrubMachine(IDictionary<string, string> environment, BootMedia media, GrubEnvironmentBlock block)
        : base(environment)
    {
        _media = media;
        _block = block;
    }

    /// <summary>The variables of each <c>save_env</c>, in order.</summary>
    public List<IReadOnlyDictionary<string, string>> Saves { get; } = [];

    protected override long ParseTestNumber(string text)
    {
        var negative = text.StartsWith('-');
        var digits = negative ? text[1..] : text;
        long value;
        if (digits.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            value = ParseDigits(digits[2..], 16);
        }
        else if (digits.StartsWith('0'))
        {
            value = ParseDigits(digits, 8);
        }
        else
        {
            value = ParseDigits(digits, 10);
        }

        return negative ? -value : value;
    }

    protected override int DefineMenuEntry(MenuEntryStatement entry)
    {
        _entries.Add(entry);
        return 0;
    }

    protected override void AfterScript()
    {
        var tried = new HashSet<int>();
        foreach (var variable in new[] { "default", "fallback" })
        {
            var text = Lookup(variable);
            if (text.Length == 0)
            {
                continue;
            }

            var index = (int)ParseTestNumber(text);
            if (index < 0 || index >= _entries.Count || !tried.Add(index))
            {
                Output.Add($"no menu entry {index}");
                continue;
            }

            _kernel = null;
            _initrd = null;
            _loaderFailed = false;
            Execute(_entries[index].Body);
            if (_loaderFailed || _kernel is null)
            {
                Output.Add($"entry {index} failed");
                continue;
            }

            if (_initrd is { } initrd && initrd.Partition != _kernel.Value.Partition)
            {
                throw new BootScriptException($"kernel from {_kernel.Value.Partition} but initrd from {initrd.Partition}");
            }

            StartKernel(new BootedKernel(_kernel.Value.Partition, _kernel.Value.Path, _initrd?.Path ?? string.Empty, _kernel.Value.CommandLine));
        }
    }

    protected override int RunCommand(string name, IReadOnlyList<string> arguments, int line)
    {
        switch (name)
        {
            case "set":
                foreach (var assignment in arguments)
                {
                    var equals = assignment.IndexOf('=', StringComparison.Ordinal);
                    if (equals <= 0)
                    {
                        throw new BootScriptException($"line {line}: set {assignment}: name=value expected");
                    }

                    Environment[assignment[..equals]] = assignment[(equals + 1)..];
                }

                return 0;
            case "echo":
                Output.Add(string.Join(' ', arguments));
                return 0;
            case "insmod":
                return 0;
            case "load_env":
                if (arguments.Count != 0)
                {
                    throw new BootScriptException($"line {line}: load_env with arguments is not simulated");
                }

                if (!_block.Exists)
                {
                    Output.Add($"error: file `{_block.GrubPath}' not found.");
                    return 1;
                }

                foreach (var (key, value) in _block.Variables)
                {
                    Environment[key] = value;
                }

                return 0;
            case "save_env":
                if (arguments.Count == 0 || arguments.Any(a => a.StartsWith('-')))
                {
                    throw new BootScriptException($"line {line}: save_env takes variable names");
                }

                if (!_block.Exists)
                {
                    Output.Add($"error: file `{_block.GrubPath}' not found.");
                    return 1;
                }

                Saves.Add(arguments.ToDictionary(a => a, a => Environment.GetValueOrDefault(a, string.Empty), StringComparer.Ordinal));
                return 0;
            case "[":
                if (arguments.Count == 0 || arguments[^1] != "]")
                {
                    throw new BootScriptException($"line {line}: [ without ]");
                }

                return Test(arguments.Take(arguments.Count - 1).ToList(), line, FileTest);
            case "test":
                return Test(arguments, line, FileTest);
            case "regexp":
                return RegularExpression(arguments, line);
            case "linux":
                return LoadKernel(arguments, line);
            case "initrd":
                return LoadInitrd(arguments, line);
            default:
                throw new BootScriptException($"line {line}: GRUB command '{name}' is not simulated");
        }
    }

    private bool? FileTest(string op, string path)
    {
        if (op is not ("-s" or "-e" or "-f"))
        {
            return null;
        }

        if (path != _block.GrubPath)
        {
            throw new BootScriptException($"test {op} {path}: only the environment block {_block.GrubPath} is simulated");
        }

        return _block.Exists;
    }

    private int RegularExpression(IReadOnlyList<string> arguments, int line)
    {
        // regexp --set=N:var REGEX STRING
        if (arguments.Count != 3 || !arguments[0].StartsWith("--set=", StringComparison.Ordinal))
        {
            throw new BootScriptException($"line {line}: regexp --set=N:var REGEX STRING expected");
        }

        var target = arguments[0]["--set=".Length..];
        var colon = target.IndexOf(':', StringComparison.Ordinal);
        var group = colon < 0 ? 0 : int.Parse(target[..colon], System.Globalization.CultureInfo.InvariantCulture);
        var variable = colon < 0 ? target : target[(colon + 1)..];
        var match = Regex.Match(arguments[2], arguments[1], RegexOptions.None, TimeSpan.FromSeconds(1));
        if (!match.Success)
        {
            return 1;
        }

        Environment[variable] = match.Groups[group].Value;
        return 0;
    }

    private int LoadKernel(IReadOnlyList<string> arguments, int line)
    {
        if (arguments.Count == 0)
        {
            throw new BootScriptException($"line {line}: linux without a file");
        }

        var (partition, path) = SplitDevicePath(arguments[0], line);
        if (_media.SizeOf(partition, path) is null)
        {
            Output.Add($"error: file `{arguments[0]}' not found.");
            _loaderFailed = true;
            return 1;
        }

        _kernel = (partition, path, string.Join(' ', arguments.Skip(1)));
        return 0;
    }

    private int LoadInitrd(IReadOnlyList<string> arguments, int line)
    {
        if (arguments.Count != 1)
        {
            throw new BootScriptException($"line {line}: initrd with one file expected");
        }

        var (partition, path) = SplitDevicePath(arguments[0], line);
        if (_kernel is null)
        {
            Output.Add("error: you need to load the kernel first.");
            _loaderFailed = true;
            return 1;
        }

        if (_media.SizeOf(partition, path) is null)
        {
            Output.Add($"error: file `{arguments[0]}' not found.");
            _loaderFailed = true;
            return 1;
        }

        _initrd = (partition, path);
        return 0;
    }

    private static (string Partition, string Path) SplitDevicePath(string text, int line)
    {
        var match = Regex.Match(text, @"^\(([^)]+)\)(/.*)$", RegexOptions.None, TimeSpan.FromSeconds(1));
        if (!match.Success)
        {
            throw new BootScriptException($"line {line}: '{text}' is not a (device)/path name");
        }

        return (match.Groups[1].Value, match.Groups[2].Value);
    }
}
