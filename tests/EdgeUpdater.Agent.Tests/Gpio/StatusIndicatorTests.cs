using System.Device.Gpio;
using EdgeUpdater.Agent.Config;
using EdgeUpdater.Agent.Coordinator;
using EdgeUpdater.Agent.Gpio;
using EdgeUpdater.Agent.Health;
using EdgeUpdater.Agent.Manifest;
using EdgeUpdater.Agent.State;
using EdgeUpdater.Protocol;
using EdgeUpdater.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace EdgeUpdater.Agent.Tests.Gpio;

/// <summary>The LED and the service button through a simulated driver behind System.Device.Gpio's own <see cref="GpioDriver"/>.</summary>
public sealed class StatusIndicatorTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    [Fact]
    public async Task Led_follows_the_state_and_a_long_press_asks_for_a_rollback()
    {
        var driver = new SimulatedGpioDriver();
        var hub = new StatusHub();
        var time = new ManualTimeProvider();
        var coordinator = CreateCoordinator(hub);
        var config = new GpioConfig { LedPin = 17, ButtonPin = 27, LongPressSeconds = 3 };
        using var indicator = new StatusIndicator(config, coordinator, hub, () => new GpioController(driver), NullLogger<StatusIndicator>.Instance, time);
        await indicator.StartAsync(TestContext.Current.CancellationToken);

        hub.Publish(Status(UpdateState.Idle), new AgentState());
        await driver.WaitForWriteAsync(17, PinValue.High);
        Assert.Equal(LedPattern.Steady, indicator.Pattern);

        hub.Publish(Status(UpdateState.Trial), new AgentState());
        await driver.WaitForWriteAsync(17, PinValue.Low);
        Assert.Equal(LedPattern.Trial, indicator.Pattern);

        // Short press: nothing. Long press: a rollback request reaches the coordinator.
        driver.Press(27, time, TimeSpan.FromSeconds(1));
        Assert.False(coordinator.HasPendingRequest);
        driver.Press(27, time, TimeSpan.FromSeconds(4));
        Assert.True(coordinator.HasPendingRequest);

        await indicator.StopAsync(TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task Without_a_gpio_chip_it_logs_once_and_stops_quietly()
    {
        var hub = new StatusHub();
        var logger = new FakeLogger();
        using var indicator = new StatusIndicator(new GpioConfig { LedPin = 17 }, CreateCoordinator(hub), hub, () => throw new IOException("/dev/gpiochip0: No such file or directory"), logger);
        await indicator.StartAsync(TestContext.Current.CancellationToken);
        await indicator.ExecuteTask!;
        Assert.Single(logger.Messages);
        Assert.Contains("No usable GPIO chip 0", logger.Messages[0], StringComparison.Ordinal);
    }

    private UpdateCoordinator CreateCoordinator(StatusHub hub) => new(
        new AgentConfig { DeviceId = "dev", Hardware = "hw" },
        new StateJournal(_directory.Path),
        new NoVerifier(),
        null,
        new HttpClient(),
        new HealthChecker(new HttpClient()),
        hub,
        [],
        NullLogger<UpdateCoordinator>.Instance);

    private static DeviceStatus Status(UpdateState state) => new() { DeviceId = "dev", State = state };

    public void Dispose() => _directory.Dispose();

    private sealed class NoVerifier : IReleaseVerifier
    {
        public VerifiedRelease Verify(ReadOnlySpan<byte> manifestEnvelope, ReleaseVerificationContext context) => throw new NotSupportedException();
    }

    private sealed class FakeLogger : Microsoft.Extensions.Logging.ILogger<StatusIndicator>
    {
        public List<string> Messages { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Messages.Add(formatter(state, exception));
    }
}
