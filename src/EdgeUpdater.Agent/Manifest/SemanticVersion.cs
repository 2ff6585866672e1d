namespace EdgeUpdater.Agent.Manifest;

/// <summary>Minimal SemVer 2.0 precedence (major.minor.patch[-prerelease][+build]) for the version-forward rule.</summary>
internal static class SemanticVersion
{
    public static bool TryCompare(string left, string right, out int comparison)
    {
        comparison = 0;
        if (!TryParse(left, out var a) || !TryParse(right, out var b))
        {
            return false;
        }

        for (var i = 0; i < 3; i++)
        {
            if (a.Core[i] != b.Core[i])
            {
                comparison = a.Core[i].CompareTo(b.Core[i]);
                return true;
            }
        }

        comparison = ComparePrerelease(a.Prerelease, b.Prerelease);
        return true;
    }

    private static bool TryParse(string text, out (long[] Core, string[] Prerelease) version)
    {
        version = default;
        var plus = text.IndexOf('+', StringComparison.Ordinal);
        var withoutBuild = plus >= 0 ? text[..plus] : text;
        var dash = withoutBuild.IndexOf('-', StringComparison.Ordinal);
        var core = (dash >= 0 ? withoutBuild[..dash] : withoutBuild).Split('.');
        if (core.Length != 3)
        {
            return false;
        }

        var numbers = new long[3];
        for (var i = 0; i < 3; i++)
        {
            if (!long.TryParse(core[i], System.Globalization.NumberStyles.None, null, out numbers[i]))
            {
                return false;
            }
        }

        version = (numbers, dash >= 0 ? withoutBuild[(dash + 1)..].Split('.') : []);
        return true;
    }

    private static int ComparePrerelease(string[] a, string[] b)
    {
        // A version without pre-release ranks above any with one.
        if (a.Length == 0 || b.Length == 0)
        {
            return b.Length.CompareTo(a.Length);
        }

        for (var i = 0; i < Math.Min(a.Length, b.Length); i++)
        {
            var aNumeric = long.TryParse(a[i], out var x);
            var bNumeric = long.TryParse(b[i], out var y);
            var c = (aNumeric, bNumeric) switch
            {
                (true, true) => x.CompareTo(y),
                (true, false) => -1,
                (false, true) => 1,
                _ => string.CompareOrdinal(a[i], b[i]),
            };
            if (c != 0)
            {
                return c;
            }
        }

        return a.Length.CompareTo(b.Length);
    }
}
