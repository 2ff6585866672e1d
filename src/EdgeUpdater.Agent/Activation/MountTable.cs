namespace EdgeUpdater.Agent.Activation;

/// <summary>Reads <c>/proc/self/mountinfo</c>: what is mounted where, to clean up after a crash.</summary>
internal static class MountTable
{
    /// <summary>Mount points at or below <paramref name="directory"/>, deepest first.</summary>
    public static IReadOnlyList<string> MountsBelow(string directory)
    {
        var prefix = Path.GetFullPath(directory).TrimEnd('/');
        var found = new List<string>();
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            var fields = line.Split(' ');
            if (fields.Length < 5)
            {
                continue;
            }

            var mountPoint = Unescape(fields[4]);
            if (mountPoint == prefix || mountPoint.StartsWith(prefix + "/", StringComparison.Ordinal))
            {
                found.Add(mountPoint);
            }
        }

        return [.. found.Distinct().OrderByDescending(p => p.Length)];
    }

    public static bool IsMountPoint(string directory) => MountsBelow(directory).Contains(Path.GetFullPath(directory).TrimEnd('/'));

    // mountinfo escapes space, tab, newline and backslash as \ooo octal.
    private static string Unescape(string field)
    {
        if (!field.Contains('\\', StringComparison.Ordinal))
        {
            return field;
        }

        var builder = new System.Text.StringBuilder();
        for (var i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length)
            {
                builder.Append((char)Convert.ToInt32(field.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                builder.Append(field[i]);
            }
        }

        return builder.ToString();
    }
}
