using System.Globalization;

namespace EdgeUpdater.Agent.Activation;

/// <summary>Resolves config.json's <c>user</c> against the image root's /etc/passwd and /etc/group (never the host's).</summary>
internal static class UserResolver
{
    public static (uint Uid, uint Gid, IReadOnlyList<uint> Groups) Resolve(string user, string root)
    {
        var parts = user.Split(':', 2);
        uint uid;
        uint? gid = null;
        string? userName = null;
        if (uint.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var numericUid))
        {
            uid = numericUid;
            var entry = ReadDatabase(Path.Combine(root, "etc/passwd")).FirstOrDefault(f => f.Length > 3 && f[2] == parts[0]);
            if (entry is not null)
            {
                userName = entry[0];
                gid = uint.Parse(entry[3], CultureInfo.InvariantCulture);
            }
        }
        else
        {
            var entry = ReadDatabase(Path.Combine(root, "etc/passwd")).FirstOrDefault(f => f.Length > 3 && f[0] == parts[0])
                ?? throw new ImageConfigException($"user: '{parts[0]}' is not in the image's /etc/passwd");
            userName = entry[0];
            uid = uint.Parse(entry[2], CultureInfo.InvariantCulture);
            gid = uint.Parse(entry[3], CultureInfo.InvariantCulture);
        }

        if (parts.Length == 2)
        {
            if (uint.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var numericGid))
            {
                gid = numericGid;
            }
            else
            {
                var group = ReadDatabase(Path.Combine(root, "etc/group")).FirstOrDefault(f => f.Length > 2 && f[0] == parts[1])
                    ?? throw new ImageConfigException($"user: group '{parts[1]}' is not in the image's /etc/group");
                gid = uint.Parse(group[2], CultureInfo.InvariantCulture);
            }
        }

        var groups = new List<uint>();
        if (userName is not null)
        {
            foreach (var group in ReadDatabase(Path.Combine(root, "etc/group")))
            {
                if (group.Length > 3 && group[3].Split(',').Contains(userName) && uint.TryParse(group[2], CultureInfo.InvariantCulture, out var member))
                {
                    groups.Add(member);
                }
            }
        }

        var primary = gid ?? uid;
        return (uid, primary, [primary, .. groups.Where(g => g != primary).Distinct()]);
    }

    private static IEnumerable<string[]> ReadDatabase(string path) =>
        File.Exists(path) ? File.ReadLines(path).Where(l => l.Length > 0 && !l.StartsWith('#')).Select(l => l.Split(':')) : [];
}
