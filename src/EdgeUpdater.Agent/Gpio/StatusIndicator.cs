using System.Device.Gpio;
using EdgeUpdater.Agent.Config;
using EdgeUpdater.Agent.Coordinator;
using EdgeUpdater.Agent.State;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeUpdater.Agent.Gpio;

/// <summary>
/// The status LED (a pattern per state) and the service button (a long press rolls back to the other
/// slot). Without a GPIO chip it says so once and carries on: the rest of the agent never depends on it.
/// </summary>
internal sealed partial class StatusIndicator : BackgroundService
{
    private readonly GpioConfig _config;
    private readonly UpdateCoordinator _coordinator;
    private readonly StatusHub _hub;
    private readonly Func<GpioController> _controllerFactory;
    private readonly ILogger<StatusIndicator> _logger;
    private readonly TimeProvider _time;
    private volatile int[] _pattern = LedPattern.Steady;
    private readonly SemaphoreSlim _changed = new(0);
    private long _pressedAt = -1;

    public StatusIndicator(GpioConfig config, UpdateCoordinator coordinator, StatusHub hub, Func<GpioController> controllerFactory, ILogger<StatusIndicator> logger, TimeProvider? time = null)
    {
        _config = config;
        _coordinator = coordinator;
        _hub = hub;
        _controllerFactory = controllerFactory;
        _logger = logger;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>The pattern shown now (for tests and the log).</summary>
    public IReadOnlyList<int> Pattern => _pattern;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        GpioController controller;
        try
        {
            controller = _controllerFactory();
            if (_config.LedPin is { } led)
            {
                controller.OpenPin(led, PinMode.Output);
            }

            if (_config.ButtonPin is { } button)
            {
                controller.OpenPin(button, controller.IsPinModeSupported(button, PinMode.InputPullUp) && _config.ButtonActiveLow ? PinMode.InputPullUp : PinMode.Input);
                controller.RegisterCallbackForPinValueChangedEvent(button, PinEventTypes.Falling | PinEventTypes.Rising, OnButton);
            }
        }
#pragma warning disable CA1031 // Any failure to reach the GPIO chip (missing, busy, no libgpiod) only disables the LED and button.
        catch (Exception e)
#pragma warning restore CA1031
        {
            LogNoGpio(_config.Chip, e.Message);
            return;
        }

        using (controller)
        {
            _hub.Subscribe(status =>
            {
                _pattern = LedPattern.For(status.State);
                _changed.Release();
            });
            if (_config.LedPin is not { } ledPin)
            {
                await Task.Delay(Timeout.Infinite, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
                return;
            }

            try
            {
                while (!stoppingToken.IsCancellationRequested)
                {
                    var pattern = _pattern;
                    for (var i = 0; i < pattern.Length && pattern == _pattern; i++)
                    {
                        var on = i % 2 == 0;
                        if (pattern[i] == 0)
                        {
                            continue;
                        }

                        controller.Write(ledPin, on != _config.LedActiveLow ? PinValue.High : PinValue.Low);
                        await _changed.WaitAsync(pattern[i], stoppingToken).ConfigureAwait(false);
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    private void OnButton(object sender, PinValueChangedEventArgs e)
    {
        var pressed = (e.ChangeType == PinEventTypes.Falling) == _config.ButtonActiveLow;
        var now = _time.GetTimestamp();
        if (pressed)
        {
            Interlocked.Exchange(ref _pressedAt, now);
            return;
        }

        var since = Interlocked.Exchange(ref _pressedAt, -1);
        if (since >= 0 && _time.GetElapsedTime(since, now) >= TimeSpan.FromSeconds(_config.LongPressSeconds))
        {
            LogLongPress(_config.LongPressSeconds);
            _coordinator.Post(new RollbackRequest(null, "the service button", null, null));
        }
    }

    public override void Dispose()
    {
        _changed.Dispose();
        base.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "No usable GPIO chip {Chip} ({Reason}): status LED and service button are off")]
    private partial void LogNoGpio(int chip, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Service button held for {Seconds} s or more: rolling back to the other slot")]
    private partial void LogLongPress(int seconds);
}
