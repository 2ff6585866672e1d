using System.Globalization;
using EdgeUpdater.Agent.Coordinator;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;

namespace EdgeUpdater.Agent;

/// <summary>
/// Sends <c>WATCHDOG=1</c> at half the interval systemd asks for (<c>WATCHDOG_USEC</c>), once start-up
/// reconciliation is done. A hung process stops feeding it and systemd restarts the agent.
/// </summary>
internal sealed class SystemdWatchdog : BackgroundService
{
    private readonly ISystemdNotifier? _notifier;
    private readonly UpdateCoordinator _coordinator;

    public SystemdWatchdog(ISystemdNotifier? notifier, UpdateCoordinator coordinator)
    {
        _notifier = notifier;
        _coordinator = coordinator;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var text = Environment.GetEnvironmentVariable("WATCHDOG_USEC");
        if (_notifier is null || !_notifier.IsEnabled || !long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var microseconds) || microseconds <= 0)
        {
            return;
        }

        await _coordinator.Started.WaitAsync(stoppingToken).ConfigureAwait(false);
        using var timer = new PeriodicTimer(TimeSpan.FromMicroseconds(microseconds / 2));
        do
        {
            _notifier.Notify(new ServiceState("WATCHDOG=1"));
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }
}
