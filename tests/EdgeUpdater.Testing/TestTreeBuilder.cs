namespace EdgeUpdater.Testing;

/// <summary>
/// Builds a directory tree on disk for image tests: files (incl. sparse), directories, symlinks, hard
/// links, fifos, device nodes, owners, xattrs and fixed mtimes. Entries are created in the order given
/// (tests use this to create the same tree in different orders); mtimes are applied last.
/// </summary>
public sealed class TestTreeBuilder
{
    private readonly List<(int Phase, int Depth, Func<Task> Run)> _actions = [];
    private readonly List<(string Path, long Time)> _times = [];
    private readonly List<string> _owners = [];

    /// <summary>Creates a builder for the (existing) directory <paramref name="root"/>.</summary>
    public TestTreeBuilder(string root)
    {
        Root = root;
    }

    /// <summary>The tree root.</summary>
    public string Root { get; }

    /// <summary>True when something needs root (devices, owners, security xattrs).</summary>
    public bool NeedsRoot { get; private set; }

    /// <summary>A regular file with the given content.</summary>
    public TestTreeBuilder File(string path, byte[] content, int mode = 420, long mtime = 1_600_000_000)
    {
        Add(1, path, async () =>
        {
            var full = Full(path);
            await System.IO.File.WriteAllBytesAsync(full, content);
            Chmod(full, mode);
        });
        _times.Add((path, mtime));
        return this;
    }

    /// <summary>A regular file of <paramref name="size"/> pseudo-random (seeded) and partly repetitive bytes.</summary>
    public TestTreeBuilder File(string path, int size, int seed, int mode = 420, long mtime = 1_600_000_000) =>
        File(path, Content(size, seed), mode, mtime);

    /// <summary>A sparse file: <paramref name="size"/> bytes with data only in the given (offset, length) ranges.</summary>
    public TestTreeBuilder Sparse(string path, long size, IEnumerable<(long Offset, int Length)> data, long mtime = 1_600_000_000)
    {
        var ranges = data.ToList();
        Add(1, path, async () =>
        {
            await using (var stream = new FileStream(Full(path), FileMode.Create))
            {
                stream.SetLength(size);
                foreach (var (offset, length) in ranges)
                {
                    stream.Position = offset;
                    await stream.WriteAsync(Content(length, (int)offset));
                }
            }

            Chmod(Full(path), 420);
        });
        _times.Add((path, mtime));
        return this;
    }

    /// <summary>A directory.</summary>
    public TestTreeBuilder Directory(string path, int mode = 493, long mtime = 1_600_000_000)
    {
        Add(0, path, () =>
        {
            System.IO.Directory.CreateDirectory(Full(path));
            Chmod(Full(path), mode);
            return Task.CompletedTask;
        });
        _times.Add((path, mtime));
        return this;
    }

    /// <summary>A symbolic link.</summary>
    public TestTreeBuilder Symlink(string path, string target, long mtime = 1_600_000_000)
    {
        _times.Add((path, mtime));
        Add(1, path, () =>
        {
            System.IO.File.CreateSymbolicLink(Full(path), target);
            return Task.CompletedTask;
        });
        return this;
    }

    /// <summary>A hard link to an existing file.</summary>
    public TestTreeBuilder HardLink(string path, string existing)
    {
        Add(2, path, () => ExternalTool.RunCheckedAsync("ln", [Full(existing), Full(path)]));
        return this;
    }

    /// <summary>A FIFO.</summary>
    public TestTreeBuilder Fifo(string path, long mtime = 1_600_000_000)
    {
        Add(1, path, () => ExternalTool.RunCheckedAsync("mkfifo", ["-m", "0640", Full(path)]));
        _times.Add((path, mtime));
        return this;
    }

    /// <summary>A device node (needs root).</summary>
    public TestTreeBuilder Device(string path, char type, int major, int minor, long mtime = 1_600_000_000)
    {
        NeedsRoot = true;
        Add(1, path, () => ExternalTool.RunCheckedAsync("mknod", ["-m", "0660", Full(path), type.ToString(), major.ToString(System.Globalization.CultureInfo.InvariantCulture), minor.ToString(System.Globalization.CultureInfo.InvariantCulture)]));
        _times.Add((path, mtime));
        return this;
    }

    /// <summary>Sets an xattr (security.* needs root).</summary>
    public TestTreeBuilder Xattr(string path, string name, byte[] value)
    {
        NeedsRoot |= !name.StartsWith("user.", StringComparison.Ordinal);
        Add(3, path, () => ExternalTool.RunCheckedAsync("setfattr", ["-h", "-n", name, "-v", "0x" + Convert.ToHexString(value), Full(path)]));
        return this;
    }

    /// <summary>Sets the owner (needs root).</summary>
    public TestTreeBuilder Owner(string path, uint uid, uint gid)
    {
        NeedsRoot = true;
        _owners.Add($"{uid}:{gid}\0{Full(path)}");
        return this;
    }

    /// <summary>Time given to the root directory.</summary>
    public long RootTime { get; set; } = 1_600_000_000;

    /// <summary>
    /// Creates everything (in the order given, or when <paramref name="shuffleSeed"/> is set in a
    /// shuffled order that still creates parents before children), then applies owners and mtimes.
    /// </summary>
    public async Task BuildAsync(int? shuffleSeed = null)
    {
        IEnumerable<(int Phase, int Depth, Func<Task> Run)> actions = _actions;
        if (shuffleSeed is { } seed)
        {
            var random = new Random(seed);
            actions = _actions.Select(a => (Action: a, Key: random.Next()))
                .OrderBy(a => a.Action.Phase).ThenBy(a => a.Action.Phase == 0 ? a.Action.Depth : 0).ThenBy(a => a.Key)
                .Select(a => a.Action).ToList();
        }

        foreach (var action in actions)
        {
            await action.Run();
        }

        foreach (var owner in _owners)
        {
            var parts = owner.Split('\0');
            await ExternalTool.RunCheckedAsync("chown", ["-h", parts[0], parts[1]]);
        }

        System.IO.Directory.SetLastWriteTimeUtc(Root, DateTimeOffset.FromUnixTimeSeconds(RootTime).UtcDateTime);

        // Deepest first so that setting a child's time does not disturb its parent's afterwards.
        foreach (var (path, time) in _times.OrderByDescending(t => t.Path.Length))
        {
            var full = Full(path);
            var when = DateTimeOffset.FromUnixTimeSeconds(time).UtcDateTime;
            if (System.IO.Directory.Exists(full) && new DirectoryInfo(full).LinkTarget is null)
            {
                System.IO.Directory.SetLastWriteTimeUtc(full, when);
            }
            else
            {
                await ExternalTool.RunCheckedAsync("touch", ["-h", "-m", "-d", "@" + time.ToString(System.Globalization.CultureInfo.InvariantCulture), full]);
            }
        }
    }

    /// <summary>Deterministic content: a mix of random and repetitive runs so that it compresses somewhat.</summary>
    public static byte[] Content(int size, int seed)
    {
        var random = new Random(seed);
        var data = new byte[size];
        var i = 0;
        while (i < size)
        {
            var run = Math.Min(size - i, random.Next(1, 300));
            if (random.Next(3) == 0)
            {
                random.NextBytes(data.AsSpan(i, run));
            }
            else
            {
                data.AsSpan(i, run).Fill((byte)('a' + random.Next(26)));
            }

            i += run;
        }

        return data;
    }

    /// <summary>
    /// The standard rich tree: every node kind, sizes around block boundaries, sparse files, hard links,
    /// xattrs (user.* always; security.capability, owners and devices when <paramref name="privileged"/>).
    /// </summary>
    public static TestTreeBuilder Rich(string root, bool privileged, int blockSize = 131072)
    {
        var b = new TestTreeBuilder(root);
        b.Directory("etc", mtime: 1_500_000_000)
            .File("etc/hostname", "edge\n"u8.ToArray(), mtime: 1_500_000_001)
            .File("etc/empty", [], mtime: 1_500_000_002)
            .File("etc/config.json", 3000, 1)
            .Directory("usr", mode: 0x1ED)
            .Directory("usr/bin")
            .File("usr/bin/tool", blockSize * 3 + 1234, 2, mode: 0x1ED)
            .File("usr/bin/exact", blockSize * 2, 3, mode: 0x1ED)
            .File("usr/bin/setuid", 500, 4, mode: 0x9ED)
            .HardLink("usr/bin/tool-link", "usr/bin/tool")
            .File("usr/share.txt", 70000, 5)
            .HardLink("usr/share-link.txt", "usr/share.txt")
            .Symlink("usr/bin/tool-alias", "tool")
            .Symlink("usr/dangling", "../nowhere/at/all")
            .Directory("var")
            .Directory("var/empty", mode: 0x3FF)
            .Directory("var/lib")
            .Sparse("var/lib/sparse.img", (blockSize * 6L) + 77, [(0, 100), (blockSize * 3L, 5000)])
            .Sparse("var/lib/hole.img", blockSize * 4L, [])
            .Fifo("var/fifo")
            .File("var/lib/dup-a", 20000, 9)
            .File("var/lib/dup-b", 20000, 9)
            .File("var/lib/big", blockSize * 9, 10)
            .Xattr("etc/hostname", "user.comment", "hello"u8.ToArray())
            .Xattr("usr/bin", "user.dir", [1, 2, 3]);
        for (var i = 0; i < 300; i++)
        {
            b.File($"var/lib/many-{i:D3}", i * 37 % 5000, 100 + i);
        }

        b.File("var/lib/" + new string('n', 255), 10, 11);
        if (privileged)
        {
            b.Device("var/null", 'c', 1, 3)
                .Device("var/sda", 'b', 8, 0)
                .Device("var/bigminor", 'c', 300, 70000)
                .Xattr("usr/bin/tool", "security.capability", Convert.FromHexString("0100000200200000000000000000000000000000"))
                .Xattr("usr/bin/tool", "user.mime", "application/x-executable"u8.ToArray())
                .Owner("etc/hostname", 1000, 1000)
                .Owner("usr/bin/setuid", 0, 5)
                .Owner("var/lib", 33, 33)
                .Owner("usr/dangling", 1234, 4321);
        }

        return b;
    }

    /// <summary>Sets permission bits (Unix only; the tests run on Linux).</summary>
    public static void Chmod(string path, int mode)
    {
        if (!OperatingSystem.IsWindows())
        {
            System.IO.File.SetUnixFileMode(path, (UnixFileMode)mode);
        }
    }

    private void Add(int phase, string path, Func<Task> run) => _actions.Add((phase, path.Count(c => c == '/'), run));

    private string Full(string path) => System.IO.Path.Combine(Root, path);
}
