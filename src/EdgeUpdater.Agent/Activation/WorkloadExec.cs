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

            Libc.Chroot(spec.Root);
            Libc.Chdir(spec.WorkingDirectory);
            Libc.SetGroups([.. spec.SupplementaryGroups]);
            Libc.SetGid(spec.GroupId);
            Libc.SetUid(spec.UserId);
            var program = ResolveProgram(spec.Arguments[0], spec.Environment);
            throw Libc.Execve(program, spec.Arguments, spec.Environment);
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"exec-workload: {e.Message}");
            return StartFailure;
        }
    }

    // Runs after chroot, so File.Exists looks inside the image.
    private static string ResolveProgram(string name, IReadOnlyList<string> environment)
    {
        if (name.Contains('/', StringComparison.Ordinal))
        {
            return name;
        }

        var path = environment.FirstOrDefault(e => e.StartsWith("PATH=", StringComparison.Ordinal))?[5..] ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        foreach (var directory in path.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new IOException($"'{name}' is not found on PATH ({path}) inside the image");
    }
}
