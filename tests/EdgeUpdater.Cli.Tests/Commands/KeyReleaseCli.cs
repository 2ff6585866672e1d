using System.CommandLine;
using EdgeUpdater.Cli.Commands;
using Xunit;

namespace EdgeUpdater.Cli.Tests.Commands;

/// <summary>Result of one in-process <c>edgeupdater keys|release ...</c> run.</summary>
internal sealed record KeyReleaseCliResult(int ExitCode, string Output, string Error)
{
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Output}\nstderr:\n{Error}";
}

/// <summary>Runs the <c>keys</c> and <c>release</c> commands in-process with captured output.</summary>
internal static class KeyReleaseCli
{
    public static async Task<KeyReleaseCliResult> RunAsync(params string[] args)
    {
        var root = new RootCommand("edgeupdater (test)");
        root.Subcommands.Add(KeyCommands.Create());
        root.Subcommands.Add(ReleaseCommands.Create());
        root.Subcommands.Add(ImageCommands.Create());
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await root.Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, TestContext.Current.CancellationToken);
        return new KeyReleaseCliResult(exit, output.ToString(), error.ToString());
    }

    public static async Task<KeyReleaseCliResult> SucceedAsync(params string[] args)
    {
        var result = await RunAsync(args);
        Assert.True(result.ExitCode == 0, $"edgeupdater {string.Join(' ', args)}\n{result}");
        return result;
    }

    public static async Task<KeyReleaseCliResult> FailAsync(int exitCode, string errorContains, params string[] args)
    {
        var result = await RunAsync(args);
        Assert.True(result.ExitCode == exitCode, $"expected exit {exitCode}: edgeupdater {string.Join(' ', args)}\n{result}");
        Assert.Contains(errorContains, result.Error, StringComparison.Ordinal);
        return result;
    }
}
