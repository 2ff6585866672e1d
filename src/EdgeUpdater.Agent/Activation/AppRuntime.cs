using EdgeUpdater.Agent.Interop.Linux;
using Microsoft.Extensions.Logging;

namespace EdgeUpdater.Agent.Activation;

/// <summary>
/// Runs one app target: mounts a slot (image + the slot's overlay upper), starts the workload from the
/// image's config.json chrooted into the merged root, restarts it when it crashes (once committed), and
/// runs health commands inside the same root.
/// </summary>
internal sealed partial class AppRuntime : IAsyncDisposable
{
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(10);
    private readonly string _targetName;
    private readonly string _volumesDirectory;
    private readonly IReadOnlyList<string> _agentCommand;
    private readonly ILogger _logger;
    private readonly ImageMount _mount;
    private readonly string _pidFile;
    private readonly Lock _gate = new();
    private WorkloadProcess? _process;
    private WorkloadSpec? _spec;
    private bool _supervise;
    private int _restarts;
    private CancellationTokenSource _lifetime = new();

    public AppRuntime(string targetName, string targetDirectory, string volumesDirectory, IReadOnlyList<string> agentCommand, ILogger logger)
    {
        _targetName = targetName;
        _volumesDirectory = volumesDirectory;
        _agentCommand = agentCommand;
        _logger = logger;
        _mount = new ImageMount(targetDirectory);
        _pidFile = Path.Combine(targetDirectory, "workload.pid");
        Directory.CreateDirectory(targetDirectory);
    }

    public ImageMount Mount => _mount;

    /// <summary>The slot mounted now, or null.</summary>
    public string? MountedSlot { get; private set; }

    public ImageConfig? Config { get; private set; }

    /// <summary>Completes when the current workload exits (a trial fails on this).</summary>
    public Task<int> WorkloadExited => _process?.Exited ?? Task.FromResult(-1);

    /// <summary>Kills a workload left by a crashed agent and unmounts what it left mounted.</summary>
    public void CleanUpAfterCrash()
    {
        if (WorkloadProcess.KillOrphan(_pidFile))
        {
            LogOrphanKilled(_targetName);
        }

        _mount.UnmountAll();
    }

    /// <summary>Mounts <paramref name="imagePath"/> as <paramref name="slot"/> and starts its workload.</summary>
    public async Task<ImageConfig> StartAsync(string slot, string imagePath, bool supervise, CancellationToken cancellationToken = default)
    {
        await StopAsync().ConfigureAwait(false);
        _mount.MountImage(imagePath);
        try
        {
            var config = ImageConfigParser.Parse(_mount.ReadConfigBytes(), $"{imagePath}:config.json");
            _mount.MountRoot(slot);
            var (uid, gid, groups) = UserResolver.Resolve(config.User, _mount.RootDirectory);
            if (config.Command.Count == 0)
            {
                throw new ImageConfigException($"{imagePath}:config.json: entrypoint and cmd are both empty: nothing to run");
            }

            var environment = config.Env.Select(e => $"{e.Key}={e.Value}").ToList();
            if (!config.Env.ContainsKey("PATH"))
            {
                environment.Add("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
            }

            var binds = config.Volumes.Select(v => new BindMount(Path.Combine(_volumesDirectory, v.Name), v.Path)).ToList();
            foreach (var bind in binds.Where(b => !Directory.Exists(b.Source)))
            {
                // A new volume belongs to the workload's user, so that it can write its data there.
                Directory.CreateDirectory(bind.Source);
                Libc.Chown(bind.Source, uid, gid);
            }

            _spec = new WorkloadSpec
            {
                Root = _mount.RootDirectory,
                Arguments = config.Command,
                Environment = environment,
                WorkingDirectory = config.WorkingDir,
                UserId = uid,
                GroupId = gid,
                SupplementaryGroups = groups,
                Binds = binds,
            };
            Config = config;
            MountedSlot = slot;
            _lifetime = new CancellationTokenSource();
            lock (_gate)
            {
                _supervise = supervise;
                _restarts = 0;
            }

            Launch();
            return config;
        }
        catch
        {
            _mount.UnmountAll();
            MountedSlot = null;
            throw;
        }
    }

    /// <summary>Turns crash restarts on (committed) or off (on trial: a crash fails the trial).</summary>
    public void Supervise(bool enabled)
    {
        lock (_gate)
        {
            _supervise = enabled;
        }
    }

    /// <summary>Stops the workload and unmounts the slot.</summary>
    public async Task StopAsync()
    {
        await _lifetime.CancelAsync().ConfigureAwait(false);
        WorkloadProcess? process;
        lock (_gate)
        {
            process = _process;
            _process = null;
            _supervise = false;
        }

        if (process is not null)
        {
            await process.StopAsync(StopGrace).ConfigureAwait(false);
            process.Dispose();
        }

        if (File.Exists(_pidFile))
        {
            File.Delete(_pidFile);
        }

        _mount.UnmountAll();
        MountedSlot = null;
        Config = null;
        _spec = null;
    }

    /// <summary>Runs <paramref name="command"/> in the workload's root (its own namespace, same user, same volumes); returns its exit code.</summary>
    public async Task<int> RunInRootAsync(IReadOnlyList<string> command, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var spec = (_spec ?? throw new InvalidOperationException("no slot is mounted")) with { Arguments = command };
        using var process = WorkloadProcess.Start(_agentCommand, spec, line => LogHealthOutput(_targetName, line));
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            return await process.Exited.WaitAsync(limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await process.StopAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            if (cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            throw new TimeoutException($"health command did not finish within {timeout.TotalSeconds:0} s");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _lifetime.Dispose();
    }

    private void Launch()
    {
        var spec = _spec!;
        var process = WorkloadProcess.Start(_agentCommand, spec, line => LogWorkloadOutput(_targetName, line));
        process.WritePidFile(_pidFile);
        lock (_gate)
        {
            _process = process;
        }

        LogWorkloadStarted(_targetName, MountedSlot ?? "?", process.ProcessId, string.Join(' ', spec.Arguments));
        var lifetime = _lifetime.Token;
        _ = process.Exited.ContinueWith(t => OnExitedAsync(process, t.Result, lifetime), TaskScheduler.Default).Unwrap();
    }

    private async Task OnExitedAsync(WorkloadProcess process, int exitCode, CancellationToken lifetime)
    {
        if (lifetime.IsCancellationRequested)
        {
            return;
        }

        LogWorkloadExited(_targetName, exitCode);
        int delaySeconds;
        lock (_gate)
        {
            if (!_supervise || _process != process)
            {
                return;
            }

            _restarts++;
            delaySeconds = Math.Min(30, 1 << Math.Min(_restarts - 1, 5));
        }

        try
        {
            await Task.Delay(TimeSpan.FromSeconds(delaySeconds), lifetime).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        lock (_gate)
        {
            if (!_supervise || _process != process)
            {
                return;
            }
        }

        process.Dispose();
        Launch();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Target}: killed the workload a previous agent run left behind")]
    private partial void LogOrphanKilled(string target);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Target}: workload started from slot {Slot} (pid {Pid}): {Command}")]
    private partial void LogWorkloadStarted(string target, string slot, int pid, string command);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Target}: workload exited with code {ExitCode}")]
    private partial void LogWorkloadExited(string target, int exitCode);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Target} workload: {Line}")]
    private partial void LogWorkloadOutput(string target, string line);

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Target} health command: {Line}")]
    private partial void LogHealthOutput(string target, string line);
}
