using System.ComponentModel;
using System.Net.Sockets;
using EdgeUpdater.Agent.Activation;

namespace EdgeUpdater.Agent.Health;

/// <summary>Outcome of a health check: passed, or why not.</summary>
internal sealed record HealthResult(bool Passed, string Detail)
{
    public static HealthResult Pass(string detail) => new(true, detail);

    public static HealthResult Fail(string detail) => new(false, detail);
}

/// <summary>
/// Runs an image's health check until it passes once or its deadline passes: a command (exit 0), an
/// HTTP GET (2xx) or a TCP connect: <c>successThreshold</c> passes in a row make it healthy,
/// <c>retries</c> failures in a row or the deadline unhealthy. The workload exiting fails it at once. With no
/// health check, the workload must stay up for a grace period.
/// </summary>
internal sealed class HealthChecker
{
    private readonly HttpClient _http;

    public HealthChecker(HttpClient http)
    {
        _http = http;
    }

    /// <param name="spec">The image's health check, or null.</param>
    /// <param name="defaultDeadline">Deadline when the image names none.</param>
    /// <param name="grace">With no health check: how long the workload must stay up.</param>
    /// <param name="runCommand">Runs a probe command where the workload runs; returns its exit code (a <see cref="Win32Exception"/> when it cannot be started).</param>
    /// <param name="workloadExited">Completes if the workload dies; null when there is no workload (system targets).</param>
    /// <param name="cancellationToken">Stops the check.</param>
    public async Task<HealthResult> RunAsync(
        HealthCheckSpec? spec,
        TimeSpan defaultDeadline,
        TimeSpan grace,
        Func<IReadOnlyList<string>, TimeSpan, CancellationToken, Task<int>> runCommand,
        Task<int>? workloadExited,
        CancellationToken cancellationToken = default)
    {
        var died = workloadExited ?? Task.Delay(Timeout.Infinite, cancellationToken).ContinueWith(_ => -1, TaskScheduler.Default);
        if (spec is null)
        {
            var waited = Task.Delay(grace, cancellationToken);
            if (await Task.WhenAny(waited, died).ConfigureAwait(false) == died && !cancellationToken.IsCancellationRequested)
            {
                return HealthResult.Fail($"workload exited with code {died.Result} within the {grace.TotalSeconds:0} s grace period (the image declares no health check)");
            }

            await waited.ConfigureAwait(false);
            return HealthResult.Pass($"workload stayed up for {grace.TotalSeconds:0} s (no health check declared)");
        }

        var deadline = spec.DeadlineSeconds is { } seconds ? TimeSpan.FromSeconds(seconds) : defaultDeadline;
        var timeout = TimeSpan.FromSeconds(spec.TimeoutSeconds);
        var interval = TimeSpan.FromSeconds(spec.IntervalSeconds);
        using var overall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        overall.CancelAfter(deadline);
        var attempts = 0;
        var passes = 0;
        var failures = 0;
        var last = "no probe finished";
        while (true)
        {
            attempts++;
            var probe = ProbeAsync(spec, timeout, runCommand, overall.Token);
            await Task.WhenAny(probe, died).ConfigureAwait(false);

            // Checked whichever finished first: a dead workload's probes fail fast too.
            if (died.IsCompletedSuccessfully && !cancellationToken.IsCancellationRequested)
            {
                return HealthResult.Fail($"workload exited with code {died.Result} during the health check");
            }

            string? failure;
            try
            {
                failure = await probe.ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                failure = "probe still running at the deadline";
            }

            if (failure is null)
            {
                failures = 0;
                if (++passes >= spec.SuccessThreshold)
                {
                    return HealthResult.Pass($"{Describe(spec)} passed after {attempts} probe(s)");
                }
            }
            else
            {
                passes = 0;
                last = failure;
                if (++failures >= spec.Retries)
                {
                    return HealthResult.Fail($"{Describe(spec)} failed {failures} time(s) in a row (last: {last})");
                }
            }

            var pause = Task.Delay(interval, overall.Token);
            await Task.WhenAny(pause, died).ConfigureAwait(false);
            if (died.IsCompletedSuccessfully && !cancellationToken.IsCancellationRequested)
            {
                return HealthResult.Fail($"workload exited with code {died.Result} during the health check");
            }

            try
            {
                await pause.ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return HealthResult.Fail($"{Describe(spec)} did not pass within {deadline.TotalSeconds:0} s ({attempts} probes; last: {last})");
            }
        }
    }

    private static string Describe(HealthCheckSpec spec) =>
        spec.Http is not null ? $"HTTP probe {spec.Http}" : spec.Tcp is not null ? $"TCP probe {spec.Tcp}" : $"health command '{string.Join(' ', spec.Command!)}'";

    // Returns null on success, else what went wrong.
    private async Task<string?> ProbeAsync(HealthCheckSpec spec, TimeSpan timeout, Func<IReadOnlyList<string>, TimeSpan, CancellationToken, Task<int>> runCommand, CancellationToken cancellationToken)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            if (spec.Http is not null)
            {
                using var response = await _http.GetAsync(new Uri(spec.Http), HttpCompletionOption.ResponseHeadersRead, limit.Token).ConfigureAwait(false);
                return response.IsSuccessStatusCode ? null : $"HTTP {(int)response.StatusCode}";
            }

            if (spec.Tcp is not null)
            {
                var colon = spec.Tcp.LastIndexOf(':');
                using var client = new TcpClient();
                await client.ConnectAsync(spec.Tcp[..colon], int.Parse(spec.Tcp[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture), limit.Token).ConfigureAwait(false);
                return null;
            }

            var exitCode = await runCommand(spec.Command!, timeout, cancellationToken).ConfigureAwait(false);
            return exitCode == 0 ? null : $"exit code {exitCode}";
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return $"no answer within {timeout.TotalSeconds:0} s";
        }
        catch (Exception e) when (e is HttpRequestException or SocketException or TimeoutException or IOException)
        {
            return e.Message;
        }
        catch (Win32Exception e)
        {
            // Process.Start: the command is missing or not executable. That is the image's failing, not
            // the agent's: a failed probe, so the trial rolls back instead of the exception ending start-up.
            return $"health command could not be started: {e.Message}";
        }
    }
}
