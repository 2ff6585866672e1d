using System.Collections.Concurrent;
using System.Device.Gpio;

namespace EdgeUpdater.Agent.Tests.Gpio;

/// <summary>A time source the test moves by hand (timestamps in ticks of 100 ns).</summary>
internal sealed class ManualTimeProvider : TimeProvider
{
    private long _ticks;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => Interlocked.Read(ref _ticks);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}

/// <summary>
/// A GPIO chip in memory, behind the library's own <see cref="GpioDriver"/> abstraction: records what
/// is written to output pins and raises edges on input pins when the test "presses" them.
/// </summary>
internal sealed class SimulatedGpioDriver : GpioDriver
{
    private readonly ConcurrentDictionary<int, PinMode> _modes = new();
    private readonly ConcurrentDictionary<int, PinValue> _values = new();
    private readonly ConcurrentDictionary<int, PinChangeEventHandler> _callbacks = new();
    private readonly SemaphoreSlim _written = new(0);

    protected override int PinCount => 64;

    /// <summary>Waits until <paramref name="pin"/> holds <paramref name="value"/> (the LED task writes it).</summary>
    public async Task WaitForWriteAsync(int pin, PinValue value)
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (!(_values.TryGetValue(pin, out var current) && current == value))
        {
            await _written.WaitAsync(limit.Token);
        }
    }

    /// <summary>Presses an active-low button for <paramref name="duration"/>: falling edge, time passes, rising edge.</summary>
    public void Press(int pin, ManualTimeProvider time, TimeSpan duration)
    {
        var handler = _callbacks[pin];
        _values[pin] = PinValue.Low;
        handler(this, new PinValueChangedEventArgs(PinEventTypes.Falling, pin));
        time.Advance(duration);
        _values[pin] = PinValue.High;
        handler(this, new PinValueChangedEventArgs(PinEventTypes.Rising, pin));
    }

    protected override void OpenPin(int pinNumber) => _values.TryAdd(pinNumber, PinValue.High);

    protected override void ClosePin(int pinNumber) => _values.TryRemove(pinNumber, out _);

    protected override void SetPinMode(int pinNumber, PinMode mode) => _modes[pinNumber] = mode;

    protected override PinMode GetPinMode(int pinNumber) => _modes.GetValueOrDefault(pinNumber, PinMode.Input);

    protected override bool IsPinModeSupported(int pinNumber, PinMode mode) => true;

    protected override PinValue Read(int pinNumber) => _values.GetValueOrDefault(pinNumber, PinValue.High);

    protected override void Write(int pinNumber, PinValue value)
    {
        _values[pinNumber] = value;
        _written.Release();
    }

    protected override WaitForEventResult WaitForEvent(int pinNumber, PinEventTypes eventTypes, CancellationToken cancellationToken) =>
        throw new NotSupportedException("the agent uses callbacks");

    protected override void AddCallbackForPinValueChangedEvent(int pinNumber, PinEventTypes eventTypes, PinChangeEventHandler callback) => _callbacks[pinNumber] = callback;

    protected override void RemoveCallbackForPinValueChangedEvent(int pinNumber, PinChangeEventHandler callback) => _callbacks.TryRemove(pinNumber, out _);

    protected override void Dispose(bool disposing)
    {
        _written.Dispose();
        base.Dispose(disposing);
    }
}
