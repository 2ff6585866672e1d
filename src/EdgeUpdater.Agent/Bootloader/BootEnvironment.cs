namespace EdgeUpdater.Agent.Bootloader;

/// <summary>The bootloader variables of docs/bootloader.md, as read from one backend.</summary>
internal sealed record BootEnvironment(IReadOnlyDictionary<string, string> Values)
{
    public const string SlotVariable = "eu_slot";
    public const string UpgradeAvailableVariable = "upgrade_available";
    public const string BootCountVariable = "bootcount";
    public const string BootLimitVariable = "bootlimit";

    /// <summary>The slot the bootloader boots (<c>eu_slot</c>); missing or any value but <c>b</c> reads as <c>a</c>, as the boot scripts read it.</summary>
    public string Slot => Values.TryGetValue(SlotVariable, out var slot) && slot == "b" ? "b" : "a";

    /// <summary>True while <see cref="Slot"/> is on trial.</summary>
    public bool UpgradeAvailable => Values.TryGetValue(UpgradeAvailableVariable, out var value) && value == "1";

    public int BootCount => ReadNumber(BootCountVariable, 0);

    /// <summary><c>bootlimit</c>, 1..9; missing or out of range reads as the boot scripts' default 3.</summary>
    public int BootLimit => ReadNumber(BootLimitVariable, 3) is >= 1 and <= 9 and var limit ? limit : 3;

    /// <summary>Variables for one trial boot of <paramref name="slot"/>.</summary>
    public static IReadOnlyDictionary<string, string> Trial(string slot) => new Dictionary<string, string>
    {
        [SlotVariable] = slot,
        [UpgradeAvailableVariable] = "1",
        [BootCountVariable] = "0",
    };

    /// <summary>Variables that make <paramref name="slot"/> the default with no trial pending.</summary>
    public static IReadOnlyDictionary<string, string> Committed(string slot) => new Dictionary<string, string>
    {
        [SlotVariable] = slot,
        [UpgradeAvailableVariable] = "0",
        [BootCountVariable] = "0",
    };

    public static BootEnvironment Parse(string listing)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var raw in listing.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            var equals = line.IndexOf('=', StringComparison.Ordinal);
            if (equals > 0 && !line.StartsWith('#'))
            {
                values[line[..equals]] = line[(equals + 1)..];
            }
        }

        return new BootEnvironment(values);
    }

    private int ReadNumber(string name, int fallback) =>
        Values.TryGetValue(name, out var text) && int.TryParse(text, System.Globalization.NumberStyles.None, null, out var value) ? value : fallback;
}

/// <summary>A bootloader tool failed or its environment could not be read or written.</summary>
internal sealed class BootloaderException : Exception
{
    public BootloaderException(string message)
        : base(message)
    {
    }

    public BootloaderException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public BootloaderException()
    {
    }
}

/// <summary>Reads and writes the bootloader environment (docs/bootloader.md).</summary>
internal interface IBootloader
{
    /// <summary>Backend name for messages: grub, uboot, file.</summary>
    string Name { get; }

    Task<BootEnvironment> ReadAsync(CancellationToken cancellationToken = default);

    /// <summary>Writes all <paramref name="values"/> in one atomic update.</summary>
    Task WriteAsync(IReadOnlyDictionary<string, string> values, CancellationToken cancellationToken = default);
}
