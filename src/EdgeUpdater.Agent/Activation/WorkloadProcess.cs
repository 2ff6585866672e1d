using System.Diagnostics;
using System.Globalization;
using EdgeUpdater.Agent.Interop.Linux;

namespace EdgeUpdater.Agent.Activation;

/// <summary>One running workload (the re-executed agent that became the image's entrypoint).</summary>
internal sealed class WorkloadProcess : IDisposable
{
    private readonly Process _process;

    private WorkloadProcess(Process process, Task<int> exited)
    {
        _process = process;
        Exited = exited;
    }

    public int ProcessId => _process.Id;

    /// <summary>Completes with the exit code when the workload ends, for whatever reason.</summary>
    public Task<int> Exited { get; }

    public static WorkloadProcess Start(IReadOnlyList<string> agentCommand, WorkloadSpec spec, Action<string> output)
    {
        var info = new ProcessStartInfo(agentCommand[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in agentCommand.Skip(1).Concat(spec.ToCommandLine()))
        {
            info.ArgumentList.Add(argument);
        }

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var exited = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, e) => Forward(e.Data);
        process.ErrorDataReceived += (_, e) => Forward(e.Data);
        process.Exited += (_, _) =>
        {
            // Exited may fire before the output pipes drained; WaitForExit() waits for them.
            process.WaitForExit();
            exited.TrySetResult(process.ExitCode);
        };
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new WorkloadProcess(process, exited.Task);

        void Forward(string? line)
        {
            if (line is not null)
            {
                output(line);
            }
        }
    }

    /// <summary>SIGTERM, then SIGKILL after <paramref name="grace"/>.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        if (Exited.IsCompleted)
        {
            return;
        }

        Libc.Kill(_process.Id, Libc.SigTerm);
        if (await Task.WhenAny(Exited, Task.Delay(grace)).ConfigureAwait(false) != Exited)
        {
            Libc.Kill(_process.Id, Libc.SigKill);
            await Exited.ConfigureAwait(false);
        }
    }

    /// <summary>Start time of <paramref name="pid"/> in clock ticks since boot (field 22 of /proc/PID/stat), or null.</summary>
    public static string? ReadStartTime(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var afterName = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return afterName[19];
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Records this workload so that an agent restarted after a crash can stop the orphan.</summary>
    public void WritePidFile(string path)
    {
        File.WriteAllText(path, string.Create(CultureInfo.InvariantCulture, $"{ProcessId} {ReadStartTime(ProcessId)}\n"));
    }

    /// <summary>Kills the workload named by a pid file if that very process (same start time) still runs.</summary>
    public static bool KillOrphan(string pidFile)
    {
        if (!File.Exists(pidFile))
        {
            return false;
        }

        var fields = File.ReadAllText(pidFile).Trim().Split(' ');
        File.Delete(pidFile);
        if (fields.Length != 2 || !int.TryParse(fields[0], CultureInfo.InvariantCulture, out var pid) || ReadStartTime(pid) != fields[1])
        {
            return false;
        }

        Libc.Kill(pid, Libc.SigKill);
        for (var i = 0; i < 100 && ReadStartTime(pid) == fields[1] && !IsZombie(pid); i++)
        {
            Thread.Sleep(20);
        }

        return true;
    }

    private static bool IsZombie(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z');
        }
        catch (IOException)
        {
            return true;
        }
    }

    public void Dispose() => _process.Dispose();
}
