using System.Globalization;

namespace EdgeUpdater.Agent.Activation;

/// <summary>A bind mount into the workload's root: <paramref name="Source"/> on the host, <paramref name="Destination"/> inside the root.</summary>
internal sealed record BindMount(string Source, string Destination);

/// <summary>Everything <c>edgeupdater-agent exec-workload</c> needs to start a program inside an image root.</summary>
internal sealed record WorkloadSpec
{
    public required string Root { get; init; }

    public required IReadOnlyList<string> Arguments { get; init; }

    public IReadOnlyList<string> Environment { get; init; } = [];

    public string WorkingDirectory { get; init; } = "/";

    public uint UserId { get; init; }

    public uint GroupId { get; init; }

    public IReadOnlyList<uint> SupplementaryGroups { get; init; } = [];

    public IReadOnlyList<BindMount> Binds { get; init; } = [];

    /// <summary>The command line of the re-executed agent: <c>exec-workload --root R ... -- argv</c>.</summary>
    public IReadOnlyList<string> ToCommandLine()
    {
        var args = new List<string> { WorkloadExec.Verb, "--root", Root, "--workdir", WorkingDirectory, "--uid", UserId.ToString(CultureInfo.InvariantCulture), "--gid", GroupId.ToString(CultureInfo.InvariantCulture) };
        if (SupplementaryGroups.Count > 0)
        {
            args.Add("--groups");
            args.Add(string.Join(',', SupplementaryGroups));
        }

        foreach (var variable in Environment)
        {
            args.Add("--env");
            args.Add(variable);
        }

        foreach (var bind in Binds)
        {
            args.Add("--bind");
            args.Add(bind.Source + "\n" + bind.Destination);
        }

        args.Add("--");
        args.AddRange(Arguments);
        return args;
    }

    public static WorkloadSpec FromCommandLine(IReadOnlyList<string> args)
    {
        string? root = null;
        var workdir = "/";
        uint uid = 0, gid = 0;
        var groups = new List<uint>();
        var env = new List<string>();
        var binds = new List<BindMount>();
        var i = 1;
        for (; i < args.Count; i++)
        {
            string Next() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--root": root = Next(); break;
                case "--workdir": workdir = Next(); break;
                case "--uid": uid = uint.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--gid": gid = uint.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--groups": groups.AddRange(Next().Split(',').Select(g => uint.Parse(g, CultureInfo.InvariantCulture))); break;
                case "--env": env.Add(Next()); break;
                case "--bind":
                    var parts = Next().Split('\n', 2);
                    binds.Add(new BindMount(parts[0], parts[1]));
                    break;
                case "--": i++; goto done;
                default: throw new ArgumentException($"unknown exec-workload option '{args[i]}'");
            }
        }

    done:
        if (root is null || i >= args.Count)
        {
            throw new ArgumentException("exec-workload needs --root and a command after --");
        }

        return new WorkloadSpec
        {
            Root = root,
            Arguments = [.. args.Skip(i)],
            Environment = env,
            WorkingDirectory = workdir,
            UserId = uid,
            GroupId = gid,
            SupplementaryGroups = groups,
            Binds = binds,
        };
    }
}
