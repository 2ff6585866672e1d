using System.Threading.Channels;
using EdgeUpdater.Agent.Config;
using EdgeUpdater.Agent.Download;
using EdgeUpdater.Agent.Health;
using EdgeUpdater.Agent.Install;
using EdgeUpdater.Agent.Manifest;
using EdgeUpdater.Agent.State;
using EdgeUpdater.Protocol;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeUpdater.Agent.Coordinator;

/// <summary>
/// The update state machine. One loop handles one request at a time (notices, resumes, local
/// installs, rollbacks); every transition is persisted through the <see cref="StateJournal"/> before it
/// is acted upon, and reported through the <see cref="StatusHub"/>.
/// </summary>
internal sealed partial class UpdateCoordinator : BackgroundService
{
    /// <summary>Reboots start-up makes to finish one rollback before it takes a boot elsewhere as the boot fallback.</summary>
    private const int MaxRollbackFinishReboots = 2;

    private readonly AgentConfig _config;
    private readonly StateJournal _journal;
    private readonly IReleaseVerifier _verifier;
    private readonly KeySetChainSource? _keySets;
    private readonly IDeltaApplier? _deltaApplier;
    private readonly HttpClient _http;
    private readonly ResumableDownloader _downloader;
    private readonly HealthChecker _health;
    private readonly StatusHub _hub;
    private readonly ILogger<UpdateCoordinator> _logger;
    private readonly Dictionary<string, TargetRuntime> _targets;
    private readonly Channel<AgentRequest> _requests = Channel.CreateUnbounded<AgentRequest>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<string, int> _progress = [];
    private readonly Lock _verdictGate = new();

    // A delta downloads and applies at once: their progress callbacks update the state and the status from two threads.
    private readonly Lock _transferGate = new();
    private AgentState _state = new();
    private string? _lastChangedTarget;
    private TaskCompletionSource<(bool Commit, string Reason)>? _trialVerdict;
    private string? _trialTarget;
    private CancellationToken _stopping;

    public UpdateCoordinator(
        AgentConfig config,
        StateJournal journal,
        IReleaseVerifier verifier,
        IDeltaApplier? deltaApplier,
        HttpClient http,
        HealthChecker health,
        StatusHub hub,
        IEnumerable<TargetRuntime> targets,
        ILogger<UpdateCoordinator> logger,
        KeySetChainSource? keySets = null)
    {
        _keySets = keySets;
        _config = config;
        _journal = journal;
        _verifier = verifier;
        _deltaApplier = deltaApplier;
        _http = http;
        _downloader = new ResumableDownloader(http, new ResumableDownloaderOptions
        {
            MaxBytesPerSecond = config.Download.MaxBytesPerSecond,
            IdleTimeout = TimeSpan.FromSeconds(config.Download.IdleTimeoutSeconds),
        });
        _health = health;
        _hub = hub;
        _targets = targets.ToDictionary(t => t.Name);
        _logger = logger;
    }

    /// <summary>Raised on check-now so that the MQTT client re-subscribes (retained group notices arrive again).</summary>
    public event EventHandler? CheckNowRequested;

    /// <summary>Completes once start-up reconciliation is done and requests are being handled.</summary>
    public Task Started => _started.Task;

    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public bool Post(AgentRequest request) => _requests.Writer.TryWrite(request);

    /// <summary>True while a request waits in the queue (tests of the request sources).</summary>
    internal bool HasPendingRequest => _requests.Reader.TryPeek(out _);

    /// <summary>Check for updates now: re-subscribe and resume pending downloads without waiting for their backoff.</summary>
    public void CheckNow()
    {
        CheckNowRequested?.Invoke(this, EventArgs.Empty);
        foreach (var target in _state.Targets.Where(t => t.Pending is not null && t.Phase is UpdateState.Verifying or UpdateState.Downloading or UpdateState.Installing))
        {
            Post(new ResumeRequest(target.Name));
        }
    }

    /// <summary>Ends a running trial now (technician commit or rollback). Returns an error, or null.</summary>
    public string? SetTrialVerdict(string? target, bool commit, string reason)
    {
        lock (_verdictGate)
        {
            if (_trialVerdict is null || (target is not null && target != _trialTarget))
            {
                return target is null ? "no trial is running" : $"no trial is running for target '{target}'";
            }

            _trialVerdict.TrySetResult((commit, reason));
            return null;
        }
    }

    /// <summary>True when a trial is running for <paramref name="target"/> (or any target when null).</summary>
    public bool IsTrialRunning(string? target)
    {
        lock (_verdictGate)
        {
            return _trialVerdict is not null && (target is null || target == _trialTarget);
        }
    }

    /// <summary>The target a request without a name means: the only one, or an error.</summary>
    public string? ResolveTarget(string? name, out string? error)
    {
        error = null;
        if (name is not null)
        {
            if (_targets.ContainsKey(name))
            {
                return name;
            }

            error = $"no target named '{name}' (configured: {string.Join(", ", _targets.Keys)})";
            return null;
        }

        if (_targets.Count == 1)
        {
            return _targets.Keys.First();
        }

        error = $"several targets are configured ({string.Join(", ", _targets.Keys)}); name one";
        return null;
    }

    /// <summary>
    /// Reconciles the state (and judges a trial boot) before the host counts as started: under systemd
    /// that is when READY=1 goes out, and boot-complete.target (systemd's boot assessment) must carry
    /// the trial's verdict, not just a running agent (docs/yocto.md).
    /// </summary>
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        _stopping = cancellationToken;
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        _started.TrySetResult();
        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _stopping = stoppingToken;
        await Task.Yield();
        await foreach (var request in _requests.Reader.ReadAllAsync(stoppingToken).ConfigureAwait(false))
        {
            try
            {
                await HandleAsync(request, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
#pragma warning disable CA1031 // The loop must survive any single request's failure; it is logged and reported.
            catch (Exception e)
#pragma warning restore CA1031
            {
                LogRequestFailed(request.GetType().Name, e);
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        foreach (var target in _targets.Values)
        {
            if (target.App is not null)
            {
                await target.App.StopAsync().ConfigureAwait(false);
            }
        }
    }

    private async Task HandleAsync(AgentRequest request, CancellationToken cancellationToken)
    {
        switch (request)
        {
            case NoticeRequest notice:
                await HandleNoticeAsync(notice.Notice, cancellationToken).ConfigureAwait(false);
                break;
            case ResumeRequest resume:
                await RunPipelineAsync(resume.Target, cancellationToken).ConfigureAwait(false);
                break;
            case LocalInstallRequest install:
                await HandleLocalInstallAsync(install, cancellationToken).ConfigureAwait(false);
                break;
            case RollbackRequest rollback:
                await HandleRollbackAsync(rollback, cancellationToken).ConfigureAwait(false);
                break;
        }
    }

    /// <summary>Persists <paramref name="target"/> (and a history line) and reports the new status.</summary>
    /// <param name="target">The new state of the target.</param>
    /// <param name="checkpoint">Name of the transition (the fault-injection hook matches it).</param>
    /// <param name="historyMessage">When given, a history line is written with the state.</param>
    /// <param name="historyEvent">The history line's event; the target's phase by default.</param>
    /// <param name="about">The update the history line is about, when the new state no longer holds it.</param>
    private TargetState Persist(TargetState target, string checkpoint, string? historyMessage = null, UpdateState? historyEvent = null, PendingUpdate? about = null)
    {
        var next = _state.WithTarget(target);
        if (historyMessage is not null || historyEvent is not null)
        {
            var pending = about ?? target.Pending;
            var slot = pending?.Slot ?? target.CommittedSlot;
            next = next.WithHistory(new HistoryRecord
            {
                Timestamp = DateTimeOffset.UtcNow,
                Target = target.Name,
                Event = historyEvent ?? target.Phase,
                Version = pending?.Version ?? target.Slot(target.CommittedSlot).Version,
                ImageSha256 = pending?.ImageSha256 ?? target.Slot(target.CommittedSlot).ImageSha256,
                Slot = slot,
                Message = historyMessage,
            });
        }

        _state = _journal.Save(next, checkpoint);
        _lastChangedTarget = target.Name;
        PublishStatus();
        return _state.Target(target.Name);
    }

    private void PublishStatus()
    {
        _hub.Publish(BuildStatus(), _state);
    }

    private DeviceStatus BuildStatus()
    {
        var focus = _lastChangedTarget is not null ? _state.Target(_lastChangedTarget) : _state.Targets.Count > 0 ? _state.Targets[0] : null;
        return new DeviceStatus
        {
            DeviceId = _config.DeviceId!,
            Group = _config.Group,
            Hardware = _config.Hardware,
            Architecture = _config.Architecture ?? AgentIdentity.Architecture,
            AgentVersion = AgentIdentity.Version,
            State = focus?.Phase ?? UpdateState.Idle,
            RolloutId = focus?.RolloutId,
            CommandId = focus?.CommandId,
            LastError = focus?.LastError,
            Codecs = _deltaApplier?.Codecs,
            Timestamp = DateTimeOffset.UtcNow,
            Targets = [.. _state.Targets.Select(t =>
            {
                var running = RunningSlot(t);
                var record = t.Slot(running);
                return new TargetStatus
                {
                    Name = t.Name,
                    Kind = t.Kind,
                    State = t.Phase,
                    ActiveSlot = running,
                    Version = record.Version,
                    ImageSha256 = record.ImageSha256,
                    PendingVersion = t.Pending?.Version,
                    Progress = _progress.TryGetValue(t.Name, out var p) && t.Pending is not null ? p : null,
                };
            })],
        };
    }

    /// <summary>The slot running now: the trial slot during an app trial, the booted slot of a system target, else the committed one.</summary>
    private string RunningSlot(TargetState target)
    {
        if (_targets.TryGetValue(target.Name, out var runtime))
        {
            if (runtime.App?.MountedSlot is { } mounted)
            {
                return mounted;
            }

            if (!runtime.IsApp && runtime.ReadBootedSlot() is { } booted)
            {
                return booted;
            }
        }

        return target.CommittedSlot;
    }

    private TimeSpan Backoff(int attempt)
    {
        var seconds = _config.Download.InitialBackoffSeconds * Math.Pow(2, Math.Max(0, attempt - 1));
        return TimeSpan.FromSeconds(Math.Min(seconds, _config.Download.MaxBackoffSeconds));
    }

    private void ScheduleResume(string target, TimeSpan delay)
    {
        var stopping = _stopping;
        _ = Task.Run(
            async () =>
            {
                try
                {
                    await Task.Delay(delay, stopping).ConfigureAwait(false);
                    Post(new ResumeRequest(target));
                }
                catch (OperationCanceledException)
                {
                }
            },
            CancellationToken.None);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Handling {Request} failed")]
    private partial void LogRequestFailed(string request, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Target}: {Message}")]
    private partial void LogTarget(string target, string message);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Message}")]
    private partial void LogStateUnreadable(string message, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Target}: {Message}")]
    private partial void LogTargetWarning(string target, string message);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Target}: {Message}")]
    private partial void LogTargetError(string target, string message, Exception? exception);
}
