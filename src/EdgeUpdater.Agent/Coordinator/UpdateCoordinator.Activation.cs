using System.Diagnostics;
using EdgeUpdater.Agent.Activation;
using EdgeUpdater.Agent.Bootloader;
using EdgeUpdater.Agent.Health;
using EdgeUpdater.Agent.State;
using EdgeUpdater.Protocol;

namespace EdgeUpdater.Agent.Coordinator;

/// <summary>Activation, health check, commit and rollback, for app targets (overlay + workload) and system targets (trial boot).</summary>
internal sealed partial class UpdateCoordinator
{
    private Task ActivateAsync(TargetRuntime runtime, CancellationToken cancellationToken) =>
        runtime.IsApp ? StartAppTrialAsync(runtime, cancellationToken) : StartSystemTrialAsync(runtime, cancellationToken);

    private Task ResumeTrialAsync(TargetRuntime runtime, CancellationToken cancellationToken) =>
        runtime.IsApp ? StartAppTrialAsync(runtime, cancellationToken) : ResumeSystemTrialAsync(runtime, cancellationToken);

    private async Task StartAppTrialAsync(TargetRuntime runtime, CancellationToken cancellationToken)
    {
        var target = _state.Target(runtime.Name);
        var pending = target.Pending!;
        if (pending.TrialAttempts >= _config.Health.TrialLimit)
        {
            await RollBackAppAsync(runtime, $"the trial of {pending.Version} was interrupted {pending.TrialAttempts} time(s)", cancellationToken).ConfigureAwait(false);
            return;
        }

        target = Persist(
            target with
            {
                Phase = UpdateState.Trial,
                Pending = pending with { TrialAttempts = pending.TrialAttempts + 1, PreviousSlot = target.CommittedSlot },
            },
            "trial",
            $"trial of {pending.Version} in slot {pending.Slot}",
            UpdateState.Trial);
        pending = target.Pending!;
        var app = runtime.App!;
        HealthResult result;
        try
        {
            var config = await app.StartAsync(pending.Slot, runtime.Slot(pending.Slot).Path, supervise: false, cancellationToken).ConfigureAwait(false);
            PublishStatus();
            result = await RunTrialHealthAsync(
                runtime.Name,
                config.HealthCheck,
                app.RunInRootAsync,
                app.WorkloadExited,
                cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ImageConfigException)
        {
            result = HealthResult.Fail($"the new image did not start: {e.Message}");
        }

        if (result.Passed)
        {
            var current = _state.Target(runtime.Name);
            var committed = current.WithSlot(pending.Slot, current.Slot(pending.Slot) with { State = SlotState.Good, UpdatedAt = DateTimeOffset.UtcNow });
            Persist(committed with { Phase = UpdateState.Committed, CommittedSlot = pending.Slot, LastError = null, Pending = null }, "committed", result.Detail, UpdateState.Committed, pending);
            app.Supervise(true);
            LogTarget(runtime.Name, $"committed {pending.Version} in slot {pending.Slot}: {result.Detail}");
            return;
        }

        await RollBackAppAsync(runtime, result.Detail, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Rolls a failed app trial back: persist first, then stop the new workload and restart the previous slot's.</summary>
    private async Task RollBackAppAsync(TargetRuntime runtime, string reason, CancellationToken cancellationToken)
    {
        var target = _state.Target(runtime.Name);
        var pending = target.Pending!;
        LogTargetWarning(runtime.Name, $"rolling back {pending.Version}: {reason}");
        var rolledBack = target.WithSlot(pending.Slot, target.Slot(pending.Slot) with { State = SlotState.Bad, UpdatedAt = DateTimeOffset.UtcNow });
        if (pending.Origin == UpdateOrigin.Server)
        {
            rolledBack = rolledBack.Reject(pending.ManifestSha256);
        }

        Persist(rolledBack with { Phase = UpdateState.RolledBack, LastError = reason, Pending = null }, "rolled-back", reason, UpdateState.RolledBack, pending);
        await runtime.App!.StopAsync().ConfigureAwait(false);
        await StartCommittedAppAsync(runtime, cancellationToken).ConfigureAwait(false);
        PublishStatus();
    }

    /// <summary>Runs the health check; a technician's commit or rollback through the control socket ends it early.</summary>
    private async Task<HealthResult> RunTrialHealthAsync(
        string target,
        HealthCheckSpec? spec,
        Func<IReadOnlyList<string>, TimeSpan, CancellationToken, Task<int>> runCommand,
        Task<int>? workloadExited,
        CancellationToken cancellationToken)
    {
        var verdict = new TaskCompletionSource<(bool Commit, string Reason)>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_verdictGate)
        {
            _trialVerdict = verdict;
            _trialTarget = target;
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        try
        {
            var check = _health.RunAsync(
                spec,
                TimeSpan.FromSeconds(_config.Health.DefaultDeadlineSeconds),
                TimeSpan.FromSeconds(_config.Health.GraceSeconds),
                runCommand,
                workloadExited,
                stop.Token);
            if (await Task.WhenAny(check, verdict.Task).ConfigureAwait(false) == verdict.Task)
            {
                await stop.CancelAsync().ConfigureAwait(false);
                try
                {
                    await check.ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }

                var (commit, reason) = verdict.Task.Result;
                return commit ? HealthResult.Pass(reason) : HealthResult.Fail(reason);
            }

            return await check.ConfigureAwait(false);
        }
        finally
        {
            lock (_verdictGate)
            {
                _trialVerdict = null;
                _trialTarget = null;
            }
        }
    }

    /// <summary>System target: point the bootloader at the new slot for one trial boot, persist, reboot.</summary>
    private async Task StartSystemTrialAsync(TargetRuntime runtime, CancellationToken cancellationToken)
    {
        var target = _state.Target(runtime.Name);
        var pending = target.Pending!;

        // docs/bootloader.md: the written slot's overlay goes before it is marked bootable; the running
        // slot's is never touched.
        var overlay = Path.Combine(runtime.Config.OverlayDirectory, pending.Slot);
        if (pending.Slot != runtime.ReadBootedSlot() && Directory.Exists(overlay))
        {
            Directory.Delete(overlay, recursive: true);
        }

        await runtime.Bootloader!.WriteAsync(BootEnvironment.Trial(pending.Slot), cancellationToken).ConfigureAwait(false);
        Persist(
            target with { Phase = UpdateState.Trial, Pending = pending with { PreviousSlot = target.CommittedSlot } },
            "trial",
            $"trial boot of {pending.Version} in slot {pending.Slot}",
            UpdateState.Trial);
        await RebootAsync(runtime, $"trial boot of slot {pending.Slot}", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>After a (trial) boot: judge where we are from the persisted state, the booted slot and the bootloader environment.</summary>
    private async Task ResumeSystemTrialAsync(TargetRuntime runtime, CancellationToken cancellationToken)
    {
        var target = _state.Target(runtime.Name);
        var pending = target.Pending!;
        var bootloader = runtime.Bootloader!;
        var booted = runtime.ReadBootedSlot();
        var environment = await bootloader.ReadAsync(cancellationToken).ConfigureAwait(false);
        if (booted == pending.Slot)
        {
            if (target.Phase == UpdateState.Installed)
            {
                target = Persist(target with { Phase = UpdateState.Trial, Pending = pending with { PreviousSlot = target.CommittedSlot } }, "trial");
                pending = target.Pending!;
            }

            LogTarget(runtime.Name, $"booted slot {booted} on trial (boot {environment.BootCount} of {environment.BootLimit}); running the health check");
            HealthResult result;
            try
            {
                var config = ReadImageConfig(runtime, runtime.Slot(pending.Slot).Path);
                result = await RunTrialHealthAsync(runtime.Name, config.HealthCheck, RunHostCommandAsync, null, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or ImageConfigException)
            {
                result = HealthResult.Fail($"cannot read the health check of the new image: {e.Message}");
            }

            if (result.Passed)
            {
                // The bootloader first: a power cut between the two leaves the journal on trial, so the next
                // start judges the (now committed) slot again; the other order would leave a journal that says
                // committed over an environment whose boot counter still falls back to the old slot.
                await bootloader.WriteAsync(BootEnvironment.Committed(pending.Slot), cancellationToken).ConfigureAwait(false);
                var committed = target.WithSlot(pending.Slot, target.Slot(pending.Slot) with { State = SlotState.Good, UpdatedAt = DateTimeOffset.UtcNow });
                Persist(committed with { Phase = UpdateState.Committed, CommittedSlot = pending.Slot, LastError = null, Pending = null }, "committed", result.Detail, UpdateState.Committed, pending);
                LogTarget(runtime.Name, $"committed {pending.Version} in slot {pending.Slot}");
                return;
            }

            await RollBackSystemAsync(runtime, result.Detail, reboot: true, cancellationToken).ConfigureAwait(false);
            return;
        }

        if (environment.Slot == pending.Slot && environment.UpgradeAvailable)
        {
            // The trial is armed but this boot is still the old slot: the reboot never happened.
            if (pending.TrialReboots >= 3)
            {
                await RollBackSystemAsync(runtime, $"slot {pending.Slot} was armed for a trial boot but {pending.TrialReboots} reboots did not reach it", reboot: false, cancellationToken).ConfigureAwait(false);
                return;
            }

            Persist(target with { Phase = UpdateState.Trial, Pending = pending with { TrialReboots = pending.TrialReboots + 1 } }, "trial-reboot");
            await RebootAsync(runtime, $"trial boot of slot {pending.Slot} (again)", cancellationToken).ConfigureAwait(false);
            return;
        }

        if (target.Phase == UpdateState.Installed)
        {
            // Installed but never armed: arm it now.
            await StartSystemTrialAsync(runtime, cancellationToken).ConfigureAwait(false);
            return;
        }

        await RollBackSystemAsync(
            runtime,
            $"boot counter exhausted: the bootloader fell back to slot {environment.Slot} after {environment.BootLimit} failed trial boot(s) of slot {pending.Slot}",
            reboot: false,
            cancellationToken).ConfigureAwait(false);
    }

    private async Task RollBackSystemAsync(TargetRuntime runtime, string reason, bool reboot, CancellationToken cancellationToken)
    {
        var target = _state.Target(runtime.Name);
        var pending = target.Pending!;
        var previous = pending.PreviousSlot ?? target.CommittedSlot;
        LogTargetWarning(runtime.Name, $"rolling back {pending.Version}: {reason}");
        var rolledBack = target.WithSlot(pending.Slot, target.Slot(pending.Slot) with { State = SlotState.Bad, UpdatedAt = DateTimeOffset.UtcNow });
        if (pending.Origin == UpdateOrigin.Server)
        {
            rolledBack = rolledBack.Reject(pending.ManifestSha256);
        }

        // Same order as the commit: the environment the bootloader acts on, then the journal and the report.
        await runtime.Bootloader!.WriteAsync(BootEnvironment.Committed(previous), cancellationToken).ConfigureAwait(false);
        Persist(rolledBack with { Phase = UpdateState.RolledBack, CommittedSlot = previous, LastError = reason, Pending = null, RollbackFinishReboots = 0, RollbackBootId = runtime.ReadBootId() }, "rolled-back", reason, UpdateState.RolledBack, pending);
        if (reboot)
        {
            await RebootAsync(runtime, $"rollback to slot {previous}", cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Technician, operator or button: make the other slot the default, if it holds a good image.</summary>
    private async Task HandleRollbackAsync(RollbackRequest request, CancellationToken cancellationToken)
    {
        var name = ResolveTarget(request.Target, out var error);
        if (name is null)
        {
            request.Done?.TrySetResult(error);
            return;
        }

        var runtime = _targets[name];
        var target = _state.Target(name);
        if (request.CommandId is not null && target.HandledCommands.Contains(request.CommandId))
        {
            // A redelivery (QoS 1, or a session resumed after the rollback's reboot): acting again would
            // roll back onto the version this command left.
            LogTarget(name, $"rollback command {request.CommandId} was already handled; ignored");
            request.Done?.TrySetResult(null);
            return;
        }

        if (target.Pending is not null && target.Phase is UpdateState.Trial)
        {
            request.Done?.TrySetResult("a trial is running; its verdict decides (use commit or wait)");
            return;
        }

        var other = TargetState.Other(target.CommittedSlot);
        if (target.Slot(other).State != SlotState.Good)
        {
            var message = $"slot {other} holds no good image ({target.Slot(other).State.ToString().ToLowerInvariant()}); nothing to roll back to";
            request.Done?.TrySetResult(message);
            return;
        }

        var reason = $"rollback to slot {other} ({target.Slot(other).Version}) requested by {request.Origin}";
        LogTargetWarning(name, reason);
        var rolledBack = target with { Phase = UpdateState.RolledBack, CommittedSlot = other, Pending = null, CommandId = request.CommandId, LastError = reason, RollbackFinishReboots = 0, RollbackBootId = runtime.IsApp ? null : runtime.ReadBootId() };

        // Like an automatic rollback: the release left is refused from now on, or its retained group
        // notice would install it again at the next reconnect.
        if (target.Slot(target.CommittedSlot).ManifestSha256 is { } left)
        {
            rolledBack = rolledBack.Reject(left);
        }

        if (request.CommandId is not null)
        {
            rolledBack = rolledBack.WithHandledCommand(request.CommandId);
        }

        Persist(rolledBack, "rolled-back", reason, UpdateState.RolledBack);
        request.Done?.TrySetResult(null);
        if (runtime.IsApp)
        {
            await runtime.App!.StopAsync().ConfigureAwait(false);
            await StartCommittedAppAsync(runtime, cancellationToken).ConfigureAwait(false);
            PublishStatus();
        }
        else
        {
            await runtime.Bootloader!.WriteAsync(BootEnvironment.Committed(other), cancellationToken).ConfigureAwait(false);
            await RebootAsync(runtime, reason, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task RebootAsync(TargetRuntime runtime, string why, CancellationToken cancellationToken)
    {
        var command = runtime.Config.RebootCommand;
        LogTarget(runtime.Name, $"rebooting for {why}: {string.Join(' ', command)}");
        var info = new ProcessStartInfo(command[0]) { UseShellExecute = false };
        foreach (var argument in command.Skip(1))
        {
            info.ArgumentList.Add(argument);
        }

        try
        {
            using var process = Process.Start(info);
            if (process is not null)
            {
                await process.WaitForExitAsync(cancellationToken).WaitAsync(TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
                if (process.ExitCode == 0)
                {
                    runtime.RebootRequestedAt = Environment.TickCount64;
                }
                else
                {
                    LogTargetError(runtime.Name, $"reboot command exited with {process.ExitCode}", null);
                }
            }
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or TimeoutException)
        {
            LogTargetError(runtime.Name, $"reboot command failed: {e.Message}", e);
        }
    }

    /// <summary>System targets: the health command runs in the booted root itself.</summary>
    private static async Task<int> RunHostCommandAsync(IReadOnlyList<string> command, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(command[0]) { UseShellExecute = false };
        foreach (var argument in command.Skip(1))
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info) ?? throw new IOException($"could not start {command[0]}");
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(limit.Token).ConfigureAwait(false);
            return process.ExitCode;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"health command did not finish within {timeout.TotalSeconds:0} s");
        }
    }
}
