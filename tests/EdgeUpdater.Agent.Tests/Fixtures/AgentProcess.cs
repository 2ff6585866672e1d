using System.Diagnostics;
using System.Text;
using EdgeUpdater.Agent.Interop.Linux;

namespace EdgeUpdater.Agent.Tests.Fixtures;

/// <summary>The agent run as its own process (<c>dotnet exec edgeupdater-agent.dll</c>), so that tests can SIGKILL it.</summary>
internal sealed class AgentProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private AgentProcess(Process process)
    {
        _process = process;
    }

    public int ProcessId => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>
    /// The agent from its own build output (bin/CONFIG/net10.0 of src/EdgeUpdater.Agent): the copy in this
    /// test project's output lacks the hosting assemblies, which ASP.NET Core's shared framework provides here.
    /// </summary>
    public static string AssemblyPath
    {
        get
        {
            var testOutput = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
            var framework = testOutput.Name;
            var configuration = testOutput.Parent!.Name;
            var repository = testOutput.Parent.Parent!.Parent!.Parent!.Parent!.FullName;
            return Path.Combine(repository, "src", "EdgeUpdater.Agent", "bin", configuration, framework, "edgeupdater-agent.dll");
        }
    }

    /// <summary>
    /// The agent command line: the managed build by default, or the binary named by
    /// EDGEUPDATER_TEST_AGENT_BINARY (the Native AOT build, to run the end-to-end tests against it).
    /// </summary>
    public static IReadOnlyList<string> Command(params string[] arguments) =>
        Environment.GetEnvironmentVariable("EDGEUPDATER_TEST_AGENT_BINARY") is { Length: > 0 } binary
            ? [binary, .. arguments]
            : [Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet", "exec", AssemblyPath, .. arguments];

    public static AgentProcess Start(string configPath, IReadOnlyDictionary<string, string>? environment = null)
    {
        var command = Command("run", "--config", configPath);
        var info = new ProcessStartInfo(command[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in command.Skip(1))
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment.Remove("EDGEUPDATER_FAULT_KILL_AFTER");
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start the agent");
        var agent = new AgentProcess(process);
        process.OutputDataReceived += (_, e) => agent.Append(e.Data);
        process.ErrorDataReceived += (_, e) => agent.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return agent;
    }

    /// <summary>Waits for the process to end by itself (for example the fault hook's SIGKILL).</summary>
    public async Task WaitForExitAsync(TimeSpan timeout)
    {
        using var limit = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"the agent did not exit within {timeout.TotalSeconds} s; output:\n{Output}");
        }
    }

    /// <summary>Power cut: SIGKILL.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            Libc.Kill(_process.Id, Libc.SigKill);
            await _process.WaitForExitAsync();
        }
    }

    /// <summary>Clean stop: SIGTERM, as systemd does.</summary>
    public async Task StopAsync()
    {
        if (!_process.HasExited)
        {
            Libc.Kill(_process.Id, Libc.SigTerm);
            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await _process.WaitForExitAsync(limit.Token);
            }
            catch (OperationCanceledException)
            {
                await KillAsync();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }
}
