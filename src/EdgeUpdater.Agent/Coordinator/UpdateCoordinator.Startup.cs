using EdgeUpdater.Agent.Activation;
using EdgeUpdater.Agent.Bootloader;
using EdgeUpdater.Agent.State;
using EdgeUpdater.Protocol;

namespace EdgeUpdater.Agent.Coordinator;

/// <summary>Start-up: load or create the state, adopt factory images, and resume or roll back whatever a crash or reboot interrupted.</summary>
internal sealed partial class UpdateCoordinator
{
    private async Task InitializeAsync(CancellationToken cancellationToken)
    {
        AgentState? loaded;
        string? unreadable = null;
        long keptKeySetVersion = 0;
        try
        {
            loaded = _journal.Load();
        }
        catch (InvalidDataException e)
        {
            // A damaged file, or the state of a newer agent that this one cannot read (its trial failed and the
            // device rolled back to this agent's slot). Refusing to start would leave the device unmanaged on
            // every restart; starting afresh adopts the booted image as committed, and the file is kept.
            (var kept, keptKeySetVersion) = _journal.SetAside();
            unreadable = $"start-up: the state file was unreadable ({e.Message}); kept as {kept}, started afresh";
            LogStateUnreadable(unreadable, e);
            loaded = null;
        }

        var state = loaded ?? new AgentState { KeySetVersion = keptKeySetVersion };
        foreach (var target in _targets.Values)
        {
            if (state.Targets.All(t => t.Name != target.Name))
            {
                state = state with { Targets = [.. state.Targets, new TargetState { Name = target.Name, Kind = target.Config.Kind!, LastError = unreadable }] };
            }
        }

        _state = state;
        foreach (var runtime in _targets.Values)
        {
            runtime.App?.CleanUpAfterCrash();
            if (!runtime.IsApp)
            {
                runtime.Mount.UnmountAll();
            }

            var target = _state.Target(runtime.Name);
            if (target.Phase is not (UpdateState.Downloading or UpdateState.Installing))
            {
                // Left by a power cut after the install was persisted (or after a rollback or failure).
                DeleteStaleDeltaFiles(runtime);
            }

            if (target.A.State == SlotState.Empty && target.B.State == SlotState.Empty && target.Pending is null)
            {
                target = await AdoptFactoryImageAsync(runtime, target, cancellationToken).ConfigureAwait(false);
            }

            try
            {
                if (runtime.IsApp)
                {
                    await ReconcileAppAsync(runtime, target, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await ReconcileSystemAsync(runtime, target, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is IOException or BootloaderException or ImageConfigException or InvalidDataException)
            {
                LogTargetError(runtime.Name, $"start-up reconciliation failed: {e.Message}", e);
                Persist(_state.Target(runtime.Name) with { LastError = $"start-up: {e.Message}" }, "start-up-error");
            }
        }

        PublishStatus();
    }

    /// <summary>
    /// First start on a device: the committed slot (a for apps, the booted slot for systems) holds the
    /// image the device shipped with. Record its hash and config as the good, committed image.
    /// </summary>
    private async Task<TargetState> AdoptFactoryImageAsync(TargetRuntime runtime, TargetState target, CancellationToken cancellationToken)
    {
        var committed = runtime.IsApp ? "a" : runtime.ReadBootedSlot() ?? "a";
        var slot = runtime.Slot(committed);
        target = target with { CommittedSlot = committed };
        if (!File.Exists(slot.Path))
        {
            LogTarget(runtime.Name, $"slot {committed} ({slot.Path}) does not exist yet: nothing installed");
            return Persist(target, "adopted");
        }

        try
        {
            var length = slot.DetectImageLength();
            var sha = await slot.HashAsync(length, cancellationToken).ConfigureAwait(false);
            var config = ReadImageConfig(runtime, slot.Path);
            LogTarget(runtime.Name, $"adopting the factory image in slot {committed}: {config.Name} {config.Version} ({sha})");
            target = target.WithSlot(committed, new SlotRecord
            {
                State = SlotState.Good,
                Name = config.Name,
                Version = config.Version,
                ImageSha256 = sha,
                ImageSize = length,
                UpdatedAt = DateTimeOffset.UtcNow,
            });
            return Persist(target with { Phase = UpdateState.Idle }, "adopted", $"factory image {config.Version} adopted", UpdateState.Committed);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ImageConfigException)
        {
            LogTargetError(runtime.Name, $"slot {committed} ({slot.Path}) holds no usable image: {e.Message}", null);
            return Persist(target with { LastError = $"factory image in slot {committed} unusable: {e.Message}" }, "adopted");
        }
    }

    /// <summary>Reads config.json of the image at <paramref name="imagePath"/> by mounting it read-only for a moment.</summary>
    private static ImageConfig ReadImageConfig(TargetRuntime runtime, string imagePath)
    {
        runtime.Mount.UnmountAll();
        runtime.Mount.MountImage(imagePath);
        try
        {
            return ImageConfigParser.Parse(runtime.Mount.ReadConfigBytes(), $"{imagePath}:config.json");
        }
        finally
        {
            runtime.Mount.UnmountAll();
        }
    }

    private async Task ReconcileAppAsync(TargetRuntime runtime, TargetState target, CancellationToken cancellationToken)
    {
        switch (target.Phase)
        {
            case UpdateState.Trial when target.Pending is not null:
                LogTargetWarning(runtime.Name, $"the agent stopped during the trial of slot {target.Pending.Slot}; trying again");
                Post(new ResumeRequest(runtime.Name));
                return;
            case UpdateState.Installed when target.Pending is not null:
                Post(new ResumeRequest(runtime.Name));
                return;
        }

        await StartCommittedAppAsync(runtime, cancellationToken).ConfigureAwait(false);
        if (target.Pending is not null && target.Phase is UpdateState.Verifying or UpdateState.Downloading or UpdateState.Installing)
        {
            LogTarget(runtime.Name, $"resuming the update to {target.Pending.Version} at '{target.Phase}'");
            Post(new ResumeRequest(runtime.Name));
        }
    }

    /// <summary>Starts the committed slot's workload when it holds a usable image.</summary>
    private async Task StartCommittedAppAsync(TargetRuntime runtime, CancellationToken cancellationToken)
    {
        var target = _state.Target(runtime.Name);
        var slot = target.CommittedSlot;
        var record = target.Slot(slot);
        if (record.State is not (SlotState.Good or SlotState.Verified) || !File.Exists(runtime.Slot(slot).Path))
        {
            LogTarget(runtime.Name, $"slot {slot} holds no good image; no workload to start");
            return;
        }

        try
        {
            await runtime.App!.StartAsync(slot, runtime.Slot(slot).Path, supervise: true, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ImageConfigException)
        {
            LogTargetError(runtime.Name, $"could not start the workload of slot {slot}: {e.Message}", e);
            Persist(_state.Target(runtime.Name) with { LastError = $"workload of slot {slot} did not start: {e.Message}" }, "start-failed");
        }
    }

    private async Task ReconcileSystemAsync(TargetRuntime runtime, TargetState target, CancellationToken cancellationToken)
    {
        var bootloader = runtime.Bootloader!;
        var booted = runtime.ReadBootedSlot();
        switch (target.Phase)
        {
            case UpdateState.Trial when target.Pending is not null:
            case UpdateState.Installed when target.Pending is not null && booted == target.Pending.Slot:
                await ResumeSystemTrialAsync(runtime, cancellationToken).ConfigureAwait(false);
                return;
            case UpdateState.Installed when target.Pending is not null:
                Post(new ResumeRequest(runtime.Name));
                return;
            case UpdateState.RolledBack when booted is not null && booted != target.CommittedSlot && target.RollbackFinishReboots < MaxRollbackFinishReboots:
                // Persisted the rollback, then lost power or the agent before the reboot took: finish it. Unless
                // the device has rebooted since with the environment already naming the committed slot: then the
                // boot script fell back because that slot does not load (docs/bootloader.md step 6), which is
                // reported below with the device kept up. Without a boot id to tell, a few reboots at most.
                var bootId = runtime.ReadBootId();
                var rolledBackEnvironment = await bootloader.ReadAsync(cancellationToken).ConfigureAwait(false);
                var rebootedSince = bootId is not null && target.RollbackBootId is not null && bootId != target.RollbackBootId;
                if (!(rebootedSince && rolledBackEnvironment.Slot == target.CommittedSlot && !rolledBackEnvironment.UpgradeAvailable))
                {
                    Persist(target with { RollbackFinishReboots = target.RollbackFinishReboots + 1, RollbackBootId = bootId }, "finishing-rollback");
                    await bootloader.WriteAsync(BootEnvironment.Committed(target.CommittedSlot), cancellationToken).ConfigureAwait(false);
                    await RebootAsync(runtime, "finishing a rollback", cancellationToken).ConfigureAwait(false);
                    return;
                }

                break;
        }

        // Committed with the environment still showing the trial: the power went between persisting the
        // commit and writing the environment.
        var environment = await bootloader.ReadAsync(cancellationToken).ConfigureAwait(false);
        if (target.Phase == UpdateState.Committed && environment.Slot == target.CommittedSlot && environment.UpgradeAvailable)
        {
            await bootloader.WriteAsync(BootEnvironment.Committed(target.CommittedSlot), cancellationToken).ConfigureAwait(false);
        }

        // docs/bootloader.md step 6: the committed slot could not be loaded and the boot script booted the
        // other one for this boot only. That is damage to report, not a trial to judge.
        if (booted is not null && booted != environment.Slot && !environment.UpgradeAvailable)
        {
            var message = $"booted slot {booted} although the bootloader's committed slot is {environment.Slot}: slot {environment.Slot} could not be loaded";
            LogTargetError(runtime.Name, message, null);
            Persist(_state.Target(runtime.Name) with { LastError = message }, "boot-fallback");
        }

        if (target.Pending is not null && target.Phase is UpdateState.Verifying or UpdateState.Downloading or UpdateState.Installing)
        {
            Post(new ResumeRequest(runtime.Name));
        }
    }
}
