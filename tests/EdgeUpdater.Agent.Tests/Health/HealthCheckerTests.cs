using System.Net;
using System.Net.Sockets;
using EdgeUpdater.Agent.Activation;
using EdgeUpdater.Agent.Health;
using Xunit;

namespace EdgeUpdater.Agent.Tests.Health;

/// <summary>Probe sequencing: successes and failures in a row, the workload dying, TCP probes.</summary>
public sealed class HealthCheckerTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private readonly HttpClient _http = new();

    [Fact]
    public async Task Success_threshold_needs_passes_in_a_row()
    {
        var exits = new Queue<int>([0, 1, 0, 0]);
        var spec = new HealthCheckSpec { Command = ["probe"], IntervalSeconds = 1, SuccessThreshold = 2, Retries = 5 };
        var result = await new HealthChecker(_http).RunAsync(spec, Deadline, TimeSpan.Zero, (_, _, _) => Task.FromResult(exits.Dequeue()), null, TestContext.Current.CancellationToken);
        Assert.True(result.Passed, result.Detail);
        Assert.Equal("health command 'probe' passed after 4 probe(s)", result.Detail);
    }

    [Fact]
    public async Task Retries_failures_in_a_row_fail_before_the_deadline()
    {
        var spec = new HealthCheckSpec { Command = ["probe"], IntervalSeconds = 1, Retries = 2 };
        var result = await new HealthChecker(_http).RunAsync(spec, Deadline, TimeSpan.Zero, (_, _, _) => Task.FromResult(7), null, TestContext.Current.CancellationToken);
        Assert.False(result.Passed);
        Assert.Equal("health command 'probe' failed 2 time(s) in a row (last: exit code 7)", result.Detail);
    }

    [Fact]
    public async Task Command_that_cannot_be_started_is_a_failed_probe()
    {
        var spec = new HealthCheckSpec { Command = ["/nonexistent/probe"], IntervalSeconds = 1, Retries = 2 };
        var result = await new HealthChecker(_http).RunAsync(
            spec,
            Deadline,
            TimeSpan.Zero,
            (_, _, _) => throw new System.ComponentModel.Win32Exception(2, "No such file or directory"),
            null,
            TestContext.Current.CancellationToken);
        Assert.False(result.Passed);
        Assert.Equal("health command '/nonexistent/probe' failed 2 time(s) in a row (last: health command could not be started: No such file or directory)", result.Detail);
    }

    [Fact]
    public async Task Workload_exiting_fails_at_once()
    {
        var spec = new HealthCheckSpec { Command = ["probe"], IntervalSeconds = 1, Retries = 100 };
        var result = await new HealthChecker(_http).RunAsync(spec, Deadline, TimeSpan.Zero, (_, _, _) => Task.FromResult(1), Task.FromResult(3), TestContext.Current.CancellationToken);
        Assert.Equal((false, "workload exited with code 3 during the health check"), (result.Passed, result.Detail));
    }

    [Fact]
    public async Task Tcp_probe_passes_when_something_accepts()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var spec = new HealthCheckSpec { Tcp = $"127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}", IntervalSeconds = 1 };
        var result = await new HealthChecker(_http).RunAsync(spec, Deadline, TimeSpan.Zero, (_, _, _) => throw new InvalidOperationException(), null, TestContext.Current.CancellationToken);
        Assert.True(result.Passed, result.Detail);
    }

    public void Dispose() => _http.Dispose();
}
