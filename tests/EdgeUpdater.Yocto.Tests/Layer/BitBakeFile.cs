using System.Text;
using System.Text.RegularExpressions;

namespace EdgeUpdater.Yocto.Tests.Layer;

/// <summary>A variable assignment: <c>NAME[:override...][[flag]] op "value"</c>.</summary>
/// <param name="Variable">The variable name without overrides, e.g. <c>RDEPENDS</c>.</param>
/// <param name="Overrides">Overrides and operations after ':' in order, e.g. <c>${PN}</c> or <c>append</c>.</param>
/// <param name="Flag">The varflag in brackets, e.g. <c>arm64.sha256sum</c>, or null.</param>
/// <param name="Operator">=, ?=, ??=, :=, +=, =+, .= or =.</param>
/// <param name="Value">The value with its quotes removed and line continuations joined.</param>
/// <param name="Line">Line of the assignment's start.</param>
internal sealed record BitBakeAssignment(string Variable, IReadOnlyList<string> Overrides, string? Flag, string Operator, string Value, int Line)
{
    /// <summary>The name as written before the flag, e.g. <c>RDEPENDS:${PN}</c>.</summary>
    public string FullName => Overrides.Count == 0 ? Variable : Variable + ":" + string.Join(':', Overrides);
}

/// <summary>A shell or python function (task or helper): <c>name() { ... }</c> or <c>python name() { ... }</c>.</summary>
internal sealed record BitBakeFunction(string Name, bool IsPython, string Body, int Line);

/// <summary>inherit, require, include, addtask, addhandler, EXPORT_FUNCTIONS, deltask, unset.</summary>
internal sealed record BitBakeDirective(string Keyword, string Argument, int Line);

/// <summary>
/// A line-level parser for the BitBake metadata of this layer (.bb, .bbappend, .bbclass, .inc, .conf).
/// It is not BitBake: it expands nothing and evaluates no python. It splits a file into assignments,
/// functions and directives so that the layer lint can check them, and reports every line it does
/// not understand, which keeps the layer to syntax a reviewer (and this lint) can follow.
/// </summary>
internal sealed partial class BitBakeFile
{
    private BitBakeFile(string path)
    {
        Path = path;
    }

    public string Path { get; }

    public List<BitBakeAssignment> Assignments { get; } = [];

    public List<BitBakeFunction> Functions { get; } = [];

    public List<BitBakeDirective> Directives { get; } = [];

    /// <summary>Lines that are none of the above, as "line N: text".</summary>
    public List<string> Unparsed { get; } = [];

    /// <summary>Names inherited by this file (not following requires).</summary>
    public IEnumerable<string> Inherits =>
        Directives.Where(d => d.Keyword == "inherit").SelectMany(d => d.Argument.Split(' ', StringSplitOptions.RemoveEmptyEntries));

    public static BitBakeFile Load(string path) => Parse(path, File.ReadAllText(path));

    public static BitBakeFile Parse(string path, string text)
    {
        var file = new BitBakeFile(path);
        var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            var lineNumber = i + 1;
            var trimmed = line.Trim();
            if (trimmed.Length == 0 || trimmed.StartsWith('#'))
            {
                continue;
            }

            var function = FunctionStart().Match(line);
            if (function.Success)
            {
                var body = new StringBuilder();
                i++;
                while (i < lines.Length && lines[i] != "}")
                {
                    body.Append(lines[i]).Append('\n');
                    i++;
                }

                if (i >= lines.Length)
                {
                    file.Unparsed.Add($"line {lineNumber}: function {function.Groups["name"].Value} has no closing '}}' at the start of a line");
                }

                file.Functions.Add(new BitBakeFunction(function.Groups["name"].Value, function.Groups["python"].Success, body.ToString(), lineNumber));
                continue;
            }

            if (line.StartsWith("def ", StringComparison.Ordinal))
            {
                var body = new StringBuilder(line).Append('\n');
                while (i + 1 < lines.Length && (lines[i + 1].Length == 0 || char.IsWhiteSpace(lines[i + 1][0])))
                {
                    i++;
                    body.Append(lines[i]).Append('\n');
                }

                var name = line[4..line.IndexOf('(', StringComparison.Ordinal)].Trim();
                file.Functions.Add(new BitBakeFunction(name, IsPython: true, body.ToString(), lineNumber));
                continue;
            }

            // Join continuation lines.
            var logical = new StringBuilder(line);
            while (logical.Length > 0 && logical[^1] == '\\' && i + 1 < lines.Length)
            {
                logical.Length--;
                i++;
                logical.Append(' ').Append(lines[i].Trim());
            }

            var statement = logical.ToString().Trim();
            var directive = Directive().Match(statement);
            if (directive.Success)
            {
                file.Directives.Add(new BitBakeDirective(directive.Groups["keyword"].Value, directive.Groups["argument"].Value.Trim(), lineNumber));
                continue;
            }

            var assignment = Assignment().Match(statement);
            if (assignment.Success)
            {
                var fullName = assignment.Groups["name"].Value;
                var parts = fullName.Split(':');
                file.Assignments.Add(new BitBakeAssignment(
                    parts[0],
                    parts.Skip(1).ToList(),
                    assignment.Groups["flag"].Success ? assignment.Groups["flag"].Value : null,
                    assignment.Groups["op"].Value,
                    Unquote(assignment.Groups["value"].Value.Trim()),
                    lineNumber));
                continue;
            }

            file.Unparsed.Add($"line {lineNumber}: {trimmed}");
        }

        return file;
    }

    /// <summary>Values of every assignment to <paramref name="variable"/> with exactly these overrides (none by default).</summary>
    public IEnumerable<BitBakeAssignment> AssignmentsTo(string variable, params string[] overrides) =>
        Assignments.Where(a => a.Variable == variable && a.Flag is null && a.Overrides.SequenceEqual(overrides));

    /// <summary>The value of the last plain assignment to <paramref name="variable"/>, or null.</summary>
    public string? ValueOf(string variable, params string[] overrides) => AssignmentsTo(variable, overrides).LastOrDefault()?.Value;

    /// <summary>The function named <paramref name="name"/>, or null.</summary>
    public BitBakeFunction? Function(string name) => Functions.LastOrDefault(f => f.Name == name);

    private static string Unquote(string value)
    {
        if (value.Length >= 2 && (value[0] == '"' || value[0] == '\'') && value[^1] == value[0])
        {
            return value[1..^1];
        }

        return value;
    }

    [GeneratedRegex(@"^(?<python>python\s+)?(fakeroot\s+)?(?<name>[A-Za-z0-9_\-${}.:]*)\s*\(\)\s*\{\s*$")]
    private static partial Regex FunctionStart();

    [GeneratedRegex(@"^(?<keyword>inherit|require|include|addtask|addhandler|EXPORT_FUNCTIONS|deltask|unset)\s+(?<argument>.*)$")]
    private static partial Regex Directive();

    [GeneratedRegex(@"^(export\s+)?(?<name>[A-Za-z0-9_${}\-/.+~:@]+?)(\[(?<flag>[^\]]+)\])?\s*(?<op>\?\?=|\?=|:=|\+=|=\+|\.=|=\.|=)\s*(?<value>.*)$")]
    private static partial Regex Assignment();
}
