using EdgeUpdater.Protocol;

namespace EdgeUpdater.Agent.Gpio;

/// <summary>The status LED's blink pattern per state: alternating on/off durations in milliseconds, repeated.</summary>
internal static class LedPattern
{
    /// <summary>Steady on.</summary>
    public static readonly int[] Steady = [1000, 0];

    /// <summary>Slow blink (1 Hz): downloading, installing, verifying.</summary>
    public static readonly int[] Busy = [500, 500];

    /// <summary>Fast blink (4 Hz): trial, the health check decides.</summary>
    public static readonly int[] Trial = [125, 125];

    /// <summary>Two short flashes then a pause: rolled back or failed, look at the status.</summary>
    public static readonly int[] Attention = [150, 150, 150, 1050];

    public static int[] For(UpdateState state) => state switch
    {
        UpdateState.Verifying or UpdateState.Downloading or UpdateState.Installing or UpdateState.Installed => Busy,
        UpdateState.Trial => Trial,
        UpdateState.RolledBack or UpdateState.Failed => Attention,
        _ => Steady,
    };
}
