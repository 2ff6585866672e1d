using System.Globalization;
using System.Text;

namespace EdgeUpdater.Yocto.Tests.Boot;

/// <summary>What a simulated bootloader ended up booting.</summary>
/// <param name="Partition">Where kernel and initramfs were read, e.g. <c>mmc 0:3</c> or <c>hd0,gpt3</c>.</param>
/// <param name="Kernel">Kernel path inside that partition's image.</param>
/// <param name="Initramfs">Initramfs path inside the same image.</param>
/// <param name="CommandLine">Kernel command line.</param>
internal sealed record BootedKernel(string Partition, string Kernel, string Initramfs, string CommandLine)
{
    /// <summary>The slot the kernel command line names (<c>edgeupdater.slot=</c>), or null.</summary>
    public string? Slot => CommandLine.Split(' ', StringSplitOptions.RemoveEmptyEntries)
        .Where(word => word.StartsWith("edgeupdater.slot=", StringComparison.Ordinal))
        .Select(word => word["edgeupdater.slot=".Length..])
        .LastOrDefault();
}

/// <summary>
/// Executes a parsed boot script the way its bootloader would: statements in order, variables from
/// the bootloader environment, each command implemented by the dialect's subclass with the
/// bootloader's own rules (number parsing, argument splitting). Unknown commands fail the run.
/// </summary>
internal abstract class BootScriptMachine
{
    private readonly Dictionary<string, string> _locals = new(StringComparer.Ordinal);

    protected BootScriptMachine(IDictionary<string, string> environment)
    {
        Environment = new Dictionary<string, string>(environment, StringComparer.Ordinal);
    }

    /// <summary>The bootloader's variables as the script left them.</summary>
    public Dictionary<string, string> Environment { get; }

    /// <summary>Everything the script printed.</summary>
    public List<string> Output { get; } = [];

    /// <summary>The kernel booted, or null when the script ended without booting.</summary>
    public BootedKernel? Booted { get; protected set; }

    /// <summary>Runs <paramref name="statements"/> until the end or until a kernel is booted.</summary>
    public void Run(IReadOnlyList<Statement> statements)
    {
        try
        {
            Execute(statements);
            AfterScript();
        }
        catch (KernelStarted)
        {
        }
    }

    /// <summary>Runs one command; returns its exit status (0 = success).</summary>
    protected abstract int RunCommand(string name, IReadOnlyList<string> arguments, int line);

    /// <summary>What the bootloader does once the script has run to its end.</summary>
    protected virtual void AfterScript()
    {
    }

    /// <summary>Parses a number the way the dialect's <c>test</c> does.</summary>
    protected abstract long ParseTestNumber(string text);

    /// <summary>Stops the run: the bootloader has handed over to <paramref name="kernel"/>.</summary>
    protected void StartKernel(BootedKernel kernel)
    {
        Booted = kernel;
        throw new KernelStarted();
    }

    protected string Lookup(string name) =>
        _locals.TryGetValue(name, out var local) ? local : Environment.GetValueOrDefault(name, string.Empty);

    protected int Execute(IReadOnlyList<Statement> statements)
    {
        var status = 0;
        foreach (var statement in statements)
        {
            status = statement switch
            {
                CommandStatement command => ExecuteCommand(command),
                IfStatement conditional => ExecuteIf(conditional),
                ForStatement loop => ExecuteFor(loop),
                MenuEntryStatement entry => DefineMenuEntry(entry),
                _ => throw new BootScriptException($"line {statement.Line}: unknown statement"),
            };
        }

        return status;
    }

    protected virtual int DefineMenuEntry(MenuEntryStatement entry) =>
        throw new BootScriptException($"line {entry.Line}: menuentry is not part of this dialect");

    protected List<string> Expand(IEnumerable<Word> words)
    {
        var fields = new List<string>();
        foreach (var word in words)
        {
            fields.AddRange(Expand(word));
        }

        return fields;
    }

    /// <summary>
    /// Expands one word into fields: quoted text stays one field, the value of an unquoted variable
    /// is split at blanks, and a word that expands to nothing unquoted disappears (hush and GRUB alike).
    /// </summary>
    protected List<string> Expand(Word word)
    {
        var fields = new List<string>();
        var current = new StringBuilder();
        var hasField = false;
        foreach (var part in word.Parts)
        {
            var text = part.IsVariable ? Lookup(part.Text) : part.Text;
            if (part.Quoted || !part.IsVariable)
            {
                current.Append(text);
                hasField |= part.Quoted || text.Length > 0;
                continue;
            }

            var pieces = text.Split([' ', '\t', '\n'], StringSplitOptions.None);
            for (var i = 0; i < pieces.Length; i++)
            {
                if (i > 0 && (hasField || current.Length > 0))
                {
                    fields.Add(current.ToString());
                    current.Clear();
                    hasField = false;
                }

                current.Append(pieces[i]);
                hasField |= pieces[i].Length > 0;
            }
        }

        if (hasField || current.Length > 0)
        {
            fields.Add(current.ToString());
        }

        return fields;
    }

    /// <summary>
    /// The <c>test</c> command shared by both dialects: <c>! -n -z = != -eq -ne -lt -le -gt -ge -a -o</c>,
    /// combined left to right as U-Boot's test.c does (the scripts use at most one -a or -o).
    /// </summary>
    protected int Test(IReadOnlyList<string> arguments, int line, Func<string, string, bool?>? unaryFileTest = null)
    {
        var result = true;
        var combine = "-a";
        var i = 0;
        if (arguments.Count == 0)
        {
            return 1;
        }

        while (i < arguments.Count)
        {
            var negate = false;
            while (i < arguments.Count && arguments[i] == "!")
            {
                negate = !negate;
                i++;
            }

            bool value;
            if (i + 2 < arguments.Count && IsBinary(arguments[i + 1]))
            {
                value = Binary(arguments[i], arguments[i + 1], arguments[i + 2], line);
                i += 3;
            }
            else if (i + 1 < arguments.Count && arguments[i] is "-n" or "-z")
            {
                value = arguments[i] == "-n" ? arguments[i + 1].Length > 0 : arguments[i + 1].Length == 0;
                i += 2;
            }
            else if (i + 1 < arguments.Count && unaryFileTest?.Invoke(arguments[i], arguments[i + 1]) is { } fileResult)
            {
                value = fileResult;
                i += 2;
            }
            else if (i < arguments.Count && arguments[i] is not ("-a" or "-o"))
            {
                // A lone string is true when it is not empty.
                value = arguments[i].Length > 0;
                i++;
            }
            else
            {
                throw new BootScriptException($"line {line}: test expression not understood: {string.Join(' ', arguments)}");
            }

            value ^= negate;
            result = combine == "-a" ? result && value : result || value;
            if (i < arguments.Count)
            {
                combine = arguments[i];
                if (combine is not ("-a" or "-o"))
                {
                    throw new BootScriptException($"line {line}: -a or -o expected in test, found '{combine}'");
                }

                i++;
            }
        }

        return result ? 0 : 1;
    }

    private static bool IsBinary(string op) => op is "=" or "!=" or "-eq" or "-ne" or "-lt" or "-le" or "-gt" or "-ge";

    private bool Binary(string left, string op, string right, int line) => op switch
    {
        "=" => left == right,
        "!=" => left != right,
        "-eq" => ParseTestNumber(left) == ParseTestNumber(right),
        "-ne" => ParseTestNumber(left) != ParseTestNumber(right),
        "-lt" => ParseTestNumber(left) < ParseTestNumber(right),
        "-le" => ParseTestNumber(left) <= ParseTestNumber(right),
        "-gt" => ParseTestNumber(left) > ParseTestNumber(right),
        "-ge" => ParseTestNumber(left) >= ParseTestNumber(right),
        _ => throw new BootScriptException($"line {line}: unknown test operator {op}"),
    };

    /// <summary>Parses the longest prefix of digits valid in <paramref name="radix"/>; 0 when there is none (C strtol).</summary>
    protected static long ParseDigits(string text, int radix)
    {
        long value = 0;
        foreach (var c in text)
        {
            var digit = char.IsAsciiDigit(c) ? c - '0' : char.IsAsciiLetter(c) ? char.ToLowerInvariant(c) - 'a' + 10 : 99;
            if (digit >= radix)
            {
                break;
            }

            value = (value * radix) + digit;
        }

        return value;
    }

    private int ExecuteCommand(CommandStatement command)
    {
        var fields = Expand(command.Words);
        if (fields.Count == 0)
        {
            return 0;
        }

        return RunCommand(fields[0], fields.Skip(1).ToList(), command.Line);
    }

    private int ExecuteIf(IfStatement conditional)
    {
        foreach (var (condition, body) in conditional.Branches)
        {
            if (Execute(condition) == 0)
            {
                return Execute(body);
            }
        }

        return conditional.Else is null ? 0 : Execute(conditional.Else);
    }

    private int ExecuteFor(ForStatement loop)
    {
        var status = 0;
        foreach (var item in Expand(loop.Items))
        {
            _locals[loop.Variable] = item;
            status = Execute(loop.Body);
        }

        return status;
    }

    /// <summary>Formats a byte count as U-Boot prints numbers into variables (hex, no prefix).</summary>
    protected static string Hex(long value) => value.ToString("x", CultureInfo.InvariantCulture);

    /// <summary>Unwinds the run once a kernel has been started.</summary>
    private sealed class KernelStarted : Exception
    {
    }
}
