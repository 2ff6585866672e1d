using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Xunit;

namespace EdgeUpdater.Testing;

/// <summary>What a tree comparison looks at.</summary>
public sealed record TreeCompareOptions
{
    /// <summary>Compare uid/gid.</summary>
    public bool Owners { get; init; } = true;

    /// <summary>Compare modification times (seconds) of everything but the root and symlinks.</summary>
    public bool ModifiedTimes { get; init; } = true;

    /// <summary>Compare xattrs (user.*, trusted.*, security.*).</summary>
    public bool Xattrs { get; init; } = true;

    /// <summary>Compare hard link groups.</summary>
    public bool HardLinks { get; init; } = true;

    /// <summary>Compare the mtime of the root directory too.</summary>
    public bool RootTime { get; init; }
}

/// <summary>One node of a tree, in a form both a disk tree and an image reader can produce.</summary>
/// <param name="Path">Path relative to the tree root, "" for the root, '/'-separated.</param>
/// <param name="Type">'f' file, 'd' dir, 'l' symlink, 'b' block device, 'c' char device, 'p' fifo, 's' socket.</param>
/// <param name="Permissions">Permission bits including setuid/setgid/sticky.</param>
/// <param name="Uid">Owner.</param>
/// <param name="Gid">Group.</param>
/// <param name="ModifiedTime">Seconds since the epoch.</param>
/// <param name="Size">File size (files only, else 0).</param>
/// <param name="ContentHash">SHA-256 hex of file content (files only).</param>
/// <param name="LinkTarget">Symlink target or null.</param>
/// <param name="Device">"major:minor" for devices, else null.</param>
/// <param name="Xattrs">Sorted "name=hexvalue" lines.</param>
/// <param name="LinkKey">Identity shared by hard links (inode number), or null.</param>
public sealed record TreeNode(
    string Path, char Type, int Permissions, uint Uid, uint Gid, long ModifiedTime, long Size,
    string? ContentHash, string? LinkTarget, string? Device, string Xattrs, string? LinkKey);

/// <summary>Captures a directory tree with find/getfattr/stat and compares trees.</summary>
public static class TreeSnapshot
{
    /// <summary>Captures every node under <paramref name="root"/> (the root itself has path "").</summary>
    public static async Task<Dictionary<string, TreeNode>> CaptureAsync(string root, CancellationToken cancellationToken = default)
    {
        var find = await ExternalTool.RunCheckedAsync("find", [root, "-printf", "%P\\0%y\\0%m\\0%U\\0%G\\0%T@\\0%s\\0%i\\0%n\\0%l\\0"], cancellationToken: cancellationToken);
        var fields = find.StandardOutput.Split('\0');
        var xattrs = await CaptureXattrsAsync(root, cancellationToken);
        var nodes = new Dictionary<string, TreeNode>(StringComparer.Ordinal);
        for (var i = 0; i + 9 < fields.Length; i += 10)
        {
            var path = fields[i];
            var type = fields[i + 1][0];
            var full = path.Length == 0 ? root : System.IO.Path.Combine(root, path);
            string? hash = null;
            long size = 0;
            if (type == 'f')
            {
                size = long.Parse(fields[i + 6], CultureInfo.InvariantCulture);
                await using var stream = File.OpenRead(full);
                hash = Convert.ToHexString(await SHA256.HashDataAsync(stream, cancellationToken));
            }

            string? device = null;
            if (type is 'b' or 'c')
            {
                var stat = await ExternalTool.RunCheckedAsync("stat", ["-c", "%t:%T", full], cancellationToken: cancellationToken);
                var parts = stat.StandardOutput.Trim().Split(':');
                device = $"{Convert.ToUInt32(parts[0], 16)}:{Convert.ToUInt32(parts[1], 16)}";
            }

            var nlink = int.Parse(fields[i + 8], CultureInfo.InvariantCulture);
            nodes[path] = new TreeNode(
                path,
                type,
                Convert.ToInt32(fields[i + 2], 8),
                uint.Parse(fields[i + 3], CultureInfo.InvariantCulture),
                uint.Parse(fields[i + 4], CultureInfo.InvariantCulture),
                (long)Math.Floor(double.Parse(fields[i + 5], CultureInfo.InvariantCulture)),
                size,
                hash,
                type == 'l' ? fields[i + 9] : null,
                device,
                xattrs.GetValueOrDefault(path, string.Empty),
                type != 'd' && nlink > 1 ? fields[i + 7] : null);
        }

        return nodes;
    }

    /// <summary>Asserts that two snapshots describe the same tree, listing every difference.</summary>
    public static void AssertEqual(IReadOnlyDictionary<string, TreeNode> expected, IReadOnlyDictionary<string, TreeNode> actual, TreeCompareOptions? options = null)
    {
        options ??= new TreeCompareOptions();
        var problems = new List<string>();
        foreach (var path in expected.Keys.Except(actual.Keys).Order(StringComparer.Ordinal))
        {
            problems.Add($"missing: '{path}'");
        }

        foreach (var path in actual.Keys.Except(expected.Keys).Order(StringComparer.Ordinal))
        {
            problems.Add($"unexpected: '{path}'");
        }

        foreach (var (path, e) in expected.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (!actual.TryGetValue(path, out var a))
            {
                continue;
            }

            void Check<T>(string what, T x, T y)
            {
                if (!EqualityComparer<T>.Default.Equals(x, y))
                {
                    problems.Add($"'{path}' {what}: expected {x}, found {y}");
                }
            }

            Check("type", e.Type, a.Type);
            if (e.Type != 'l')
            {
                Check("permissions", Convert.ToString(e.Permissions, 8), Convert.ToString(a.Permissions, 8));
            }

            if (options.Owners)
            {
                Check("uid", e.Uid, a.Uid);
                Check("gid", e.Gid, a.Gid);
            }

            if (options.ModifiedTimes && e.Type != 'l' && (path.Length > 0 || options.RootTime))
            {
                Check("mtime", e.ModifiedTime, a.ModifiedTime);
            }

            Check("size", e.Size, a.Size);
            Check("content", e.ContentHash, a.ContentHash);
            Check("link target", e.LinkTarget, a.LinkTarget);
            Check("device", e.Device, a.Device);
            if (options.Xattrs)
            {
                Check("xattrs", e.Xattrs, a.Xattrs);
            }
        }

        if (options.HardLinks)
        {
            var expectedGroups = LinkGroups(expected);
            var actualGroups = LinkGroups(actual);
            foreach (var group in expectedGroups.Except(actualGroups))
            {
                problems.Add($"hard link group missing: {group}");
            }

            foreach (var group in actualGroups.Except(expectedGroups))
            {
                problems.Add($"unexpected hard link group: {group}");
            }
        }

        if (problems.Count > 0)
        {
            Assert.Fail($"{problems.Count} difference(s):\n" + string.Join('\n', problems.Take(60)));
        }
    }

    private static HashSet<string> LinkGroups(IReadOnlyDictionary<string, TreeNode> nodes) =>
        nodes.Values.Where(n => n.LinkKey is not null)
            .GroupBy(n => n.LinkKey)
            .Where(g => g.Count() > 1)
            .Select(g => string.Join(" = ", g.Select(n => n.Path).Order(StringComparer.Ordinal)))
            .ToHashSet(StringComparer.Ordinal);

    private static async Task<Dictionary<string, string>> CaptureXattrsAsync(string root, CancellationToken cancellationToken)
    {
        var result = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var dump = await ExternalTool.RunAsync("getfattr", ["-R", "-P", "-h", "-d", "-m", "-", "-e", "hex", "--absolute-names", root], cancellationToken: cancellationToken);
        string? current = null;
        foreach (var line in dump.StandardOutput.Split('\n'))
        {
            if (line.StartsWith("# file: ", StringComparison.Ordinal))
            {
                var path = line["# file: ".Length..];
                current = path == root ? string.Empty : System.IO.Path.GetRelativePath(root, path).Replace('\\', '/');
                continue;
            }

            if (current is null || line.Length == 0 || line.StartsWith("system.", StringComparison.Ordinal))
            {
                continue;
            }

            var eq = line.IndexOf('=', StringComparison.Ordinal);
            var name = eq < 0 ? line : line[..eq];
            var value = eq < 0 ? string.Empty : line[(eq + 1)..].Replace("0x", string.Empty, StringComparison.Ordinal).Replace("\"", string.Empty, StringComparison.Ordinal).ToUpperInvariant();
            if (!result.TryGetValue(current, out var list))
            {
                result[current] = list = [];
            }

            list.Add($"{name}={value}");
        }

        return result.ToDictionary(p => p.Key, p => string.Join(";", p.Value.Order(StringComparer.Ordinal)), StringComparer.Ordinal);
    }

    /// <summary>Formats xattrs the way <see cref="CaptureAsync"/> does.</summary>
    public static string FormatXattrs(IEnumerable<(string Name, byte[] Value)> xattrs) =>
        string.Join(";", xattrs.Where(x => !x.Name.StartsWith("system.", StringComparison.Ordinal)).Select(x => $"{x.Name}={Convert.ToHexString(x.Value)}").Order(StringComparer.Ordinal));

    /// <summary>SHA-256 hex of a stream's content.</summary>
    public static async Task<string> HashAsync(Stream stream, CancellationToken cancellationToken = default) =>
        Convert.ToHexString(await SHA256.HashDataAsync(stream, cancellationToken));

    /// <summary>A stable text rendering of a snapshot (for debugging output).</summary>
    public static string Render(IReadOnlyDictionary<string, TreeNode> nodes)
    {
        var sb = new StringBuilder();
        foreach (var node in nodes.Values.OrderBy(n => n.Path, StringComparer.Ordinal))
        {
            sb.AppendLine(node.ToString());
        }

        return sb.ToString();
    }
}
