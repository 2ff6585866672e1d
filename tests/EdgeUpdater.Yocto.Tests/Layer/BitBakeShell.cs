using System.Text;
using EdgeUpdater.Testing;

namespace EdgeUpdater.Yocto.Tests.Layer;

/// <summary>
/// Runs a shell function of a recipe or class outside BitBake: the function's text exactly as in the
/// layer, under /bin/sh (BitBake runs shell tasks with /bin/sh too), with the BitBake variables it
/// uses set as shell variables (what BitBake's expansion of <c>${VAR}</c> would insert) and
/// <c>bbfatal</c>/<c>bbwarn</c>/<c>bbnote</c> defined as BitBake's shell logging does.
/// </summary>
internal static class BitBakeShell
{
    public static async Task<ToolResult> RunAsync(
        string file,
        string function,
        IReadOnlyDictionary<string, string> variables,
        IReadOnlyList<string> arguments,
        string workingDirectory,
        CancellationToken cancellationToken = default)
    {
        var parsed = BitBakeFile.Load(file);
        var body = parsed.Function(function)?.Body
            ?? throw new InvalidOperationException($"{file} has no shell function {function}");
        var script = new StringBuilder();
        script.Append("set -e\n");
        script.Append("bbfatal() { echo \"ERROR: $*\" >&2; exit 1; }\n");
        script.Append("bbwarn() { echo \"WARNING: $*\" >&2; }\n");
        script.Append("bbnote() { echo \"NOTE: $*\"; }\n");
        foreach (var (name, value) in variables)
        {
            script.Append(name).Append('=').Append(ShellQuote(value)).Append('\n');
        }

        script.Append(function).Append("() {\n").Append(body).Append("}\n");
        script.Append(function);
        foreach (var argument in arguments)
        {
            script.Append(' ').Append(ShellQuote(argument));
        }

        script.Append('\n');
        return await ExternalTool.RunAsync("sh", ["-c", script.ToString()], TimeSpan.FromMinutes(2), workingDirectory, cancellationToken: cancellationToken);
    }

    public static string ShellQuote(string value) => "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
