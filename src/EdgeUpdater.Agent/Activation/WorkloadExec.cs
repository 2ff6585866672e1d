using EdgeUpdater.Agent.Interop.Linux;

namespace EdgeUpdater.Agent.Activation;

/// <summary>
/// The child side of <c>edgeupdater-agent exec-workload</c>: runs before the host starts, single
/// purpose. Own mount namespace (private, so nothing propagates back), volume binds, /proc and /dev,
/// chroot into the merged root, drop to the image's user, execve the workload.
/// </summary>
internal static class WorkloadExec
{
    public const string Verb = "exec-workload";

    /// <summary>Exit code when the workload could not be started (like a shell's "command not found").</summary>
    public const int StartFailure = 127;

    public static int Run(string[] args)
    {
        // Warmed now: reporting a failure after chroot must not need anything from the old root.
        Libc.WriteStandardError(string.Empty);
        WorkloadSpec spec;
        try
        {
            spec = WorkloadSpec.FromCommandLine(args);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
        {
            Console.Error.WriteLine($"exec-workload: {e.Message}");
            return 2;
        }

        try
        {
            // unshare(CLONE_NEWNS) gives this thread its own namespace and fs root; execve below keeps
            // exactly this thread, so the other runtime threads' view does not matter.
            Libc.Unshare(Libc.CloneNewNs);
            Libc.Mount(null, "/", null, Libc.MsRec | Libc.MsPrivate, null);
            foreach (var bind in spec.Binds)
            {
                var destination = Path.Combine(spec.Root, bind.Destination.TrimStart('/'));
                Directory.CreateDirectory(bind.Source);
                Directory.CreateDirectory(destination);
                Libc.Mount(bind.Source, destination, null, Libc.MsBind | Libc.MsRec, null);
            }

            var proc = Path.Combine(spec.Root, "proc");
            if (Directory.Exists(proc))
            {
                Libc.Mount("proc", proc, "proc", Libc.MsNoSuid | Libc.MsNoDev, null);
            }

            var dev = Path.Combine(spec.Root, "dev");
            if (Directory.Exists(dev))
            {
                Libc.Mount("/dev", dev, null, Libc.MsBind | Libc.MsRec, null);
            }

            // Under the JIT (development, tests) code first run after chroot could not load the
            // assemblies it needs from the old root, so everything runs once before: the program path
            // is resolved inside the image, groups and gid are set (harmless while still uid 0), and the
            // setuid and execve stubs are warmed by calls that change nothing.
            var program = ResolveProgram(spec.Root, spec.Arguments[0], spec.Environment);
            Libc.SetGroups([.. spec.SupplementaryGroups]);
            Libc.SetGid(spec.GroupId);
            Libc.SetUid(Libc.GetEffectiveUserId());
            _ = Libc.Execve("/nonexistent/edgeupdater-warm-up", spec.Arguments, spec.Environment);
            Libc.Chroot(spec.Root);
            Libc.Chdir(spec.WorkingDirectory);
            Libc.SetUid(spec.UserId);
            throw Libc.Execve(program, spec.Arguments, spec.Environment);
        }
        catch (IOException e)
        {
            Libc.WriteStandardError("exec-workload: " + e.Message + "\n");
            return StartFailure;
        }
    }

    // Looks inside the image root; returns the path as seen after chroot.
    private static string ResolveProgram(string root, string name, IReadOnlyList<string> environment)
    {
        if (name.Contains('/', StringComparison.Ordinal))
        {
            return name;
        }

        var path = environment.FirstOrDefault(e => e.StartsWith("PATH=", StringComparison.Ordinal))?[5..] ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        foreach (var directory in path.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, name);
            if (File.Exists(Path.Combine(root, candidate.TrimStart('/'))))
            {
                return candidate;
            }
        }

        throw new IOException($"'{name}' is not found on PATH ({path}) inside the image");
    }
}
