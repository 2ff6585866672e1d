using Xunit;

namespace EdgeUpdater.Testing;

/// <summary>Checks for tests that need root (loop devices, mounts, namespaces, device nodes).</summary>
public static class Privileges
{
    /// <summary>True when the test process runs with effective uid 0.</summary>
    public static bool IsRoot => Environment.UserName == "root" || GetEffectiveUserId() == 0;

    /// <summary>
    /// Skips the calling test with a message when not root. CI runs as root, so there these tests run;
    /// set EDGEUPDATER_REQUIRE_ROOT=1 to turn the skip into a failure.
    /// </summary>
    public static void RequireRoot(string why)
    {
        if (IsRoot)
        {
            return;
        }

        if (Environment.GetEnvironmentVariable("EDGEUPDATER_REQUIRE_ROOT") == "1")
        {
            Assert.Fail($"This test needs root ({why}) and EDGEUPDATER_REQUIRE_ROOT=1 forbids skipping it.");
        }

        Assert.Skip($"needs root: {why}");
    }

    private static uint GetEffectiveUserId()
    {
        // /proc/self/status "Uid:\treal\teffective\t..." avoids a P/Invoke for one number.
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("Uid:", StringComparison.Ordinal))
            {
                var fields = line.Split('\t', StringSplitOptions.RemoveEmptyEntries);
                return uint.Parse(fields[2], System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return uint.MaxValue;
    }
}
