using System.Diagnostics;

namespace EdgeUpdater.Agent.Bootloader;

/// <summary>Runs a bootloader tool to completion and captures its output.</summary>
internal static class ToolRunner
{
    public static async Task<string> RunAsync(string tool, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(tool)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = Process.Start(info) ?? throw new BootloaderException($"could not start {tool}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new BootloaderException($"could not start {tool}: {e.Message}", e);
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            limit.CancelAfter(TimeSpan.FromSeconds(30));
            try
            {
                await process.WaitForExitAsync(limit.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                process.Kill();
                throw new BootloaderException($"{tool} {string.Join(' ', arguments)} did not finish within 30 s");
            }

            var output = await stdout.ConfigureAwait(false);
            var error = await stderr.ConfigureAwait(false);
            if (process.ExitCode != 0)
            {
                throw new BootloaderException($"{tool} {string.Join(' ', arguments)} exited with {process.ExitCode}: {error.Trim()}");
            }

            return output;
        }
    }

    public static string Locate(string? directory, string name)
    {
        if (directory is not null)
        {
            return Path.Combine(directory, name);
        }

        foreach (var dir in new[] { "/usr/bin", "/usr/sbin", "/bin", "/sbin" })
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return name;
    }
}
