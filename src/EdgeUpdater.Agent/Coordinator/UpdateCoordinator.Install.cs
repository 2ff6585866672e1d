using System.Security.Cryptography;
using EdgeUpdater.Agent.Download;
using EdgeUpdater.Agent.Install;
using EdgeUpdater.Agent.Manifest;
using EdgeUpdater.Agent.Slots;
using EdgeUpdater.Agent.State;
using EdgeUpdater.Protocol;

namespace EdgeUpdater.Agent.Coordinator;

/// <summary>Verify, download, write and check: everything up to a verified inactive slot.</summary>
internal sealed partial class UpdateCoordinator
{
    private async Task HandleNoticeAsync(UpdateNotice notice, CancellationToken cancellationToken)
    {
        if (!_targets.ContainsKey(notice.Target))
        {
            LogTargetWarning(notice.Target, "notice for a target this device does not have; ignored");
            return;
        }

        var target = _state.Target(notice.Target);
        if (target.RejectedManifests.Contains(notice.ManifestSha256))
        {
            LogTarget(target.Name, $"notice for manifest {notice.ManifestSha256} ignored: it was refused or rolled back here before");
            return;
        }

        if (target.Slot(target.CommittedSlot).ImageSha256 == notice.ImageSha256 && target.Pending is null)
        {
            LogTarget(target.Name, $"notice for {notice.Version} ignored: it is the image running now");
            return;
        }

        if (target.Pending is { } pending)
        {
            if (pending.ManifestSha256 == notice.ManifestSha256)
            {
                if (_targets[target.Name].RebootUnderWay)
                {
                    // The same release again (its device and group notices arrive together, or QoS 1 redelivers)
                    // while the reboot into its trial is under way: judging the trial now would find the old slot
                    // booted, count a reboot that did not fail and ask for another.
                    LogTarget(target.Name, $"notice for {notice.Version} ignored: the reboot to activate it is under way");
                    return;
                }

                await RunPipelineAsync(target.Name, cancellationToken).ConfigureAwait(false);
                return;
            }

            if (target.Phase is UpdateState.Trial or UpdateState.Installed)
            {
                LogTarget(target.Name, $"notice for {notice.Version} ignored while {pending.Version} is being activated");
                return;
            }

            LogTarget(target.Name, $"notice for {notice.Version} supersedes the unfinished update to {pending.Version}");
        }

        target = target with
        {
            Phase = UpdateState.Verifying,
            RolloutId = notice.RolloutId,
            CommandId = null,
            LastError = null,
            Pending = new PendingUpdate
            {
                Origin = UpdateOrigin.Server,
                RolloutId = notice.RolloutId,
                ManifestSha256 = notice.ManifestSha256,
                Name = notice.Name,
                Version = notice.Version,
                ImageSha256 = notice.ImageSha256,
                ImageSize = notice.ImageSize,
                Slot = TargetState.Other(target.CommittedSlot),
            },
        };
        Persist(target, "verifying", $"notice for {notice.Version}", UpdateState.Verifying);
        await RunPipelineAsync(target.Name, cancellationToken).ConfigureAwait(false);
    }

    private async Task HandleLocalInstallAsync(LocalInstallRequest request, CancellationToken cancellationToken)
    {
        var name = ResolveTarget(request.Target, out var error);
        if (name is null)
        {
            request.Accepted.TrySetResult(error);
            return;
        }

        var target = _state.Target(name);
        if (target.Phase is UpdateState.Trial or UpdateState.Installed)
        {
            request.Accepted.TrySetResult($"target '{name}' is activating {target.Pending?.Version}; try again when it is done");
            return;
        }

        if (!File.Exists(request.PayloadPath) || !File.Exists(request.ManifestPath))
        {
            request.Accepted.TrySetResult($"'{request.PayloadPath}' or '{request.ManifestPath}' does not exist on the device");
            return;
        }

        var manifestBytes = await File.ReadAllBytesAsync(request.ManifestPath, cancellationToken).ConfigureAwait(false);
        target = target with
        {
            Phase = UpdateState.Verifying,
            RolloutId = null,
            CommandId = null,
            LastError = null,
            Pending = new PendingUpdate
            {
                Origin = UpdateOrigin.Local,
                ManifestSha256 = Convert.ToHexStringLower(SHA256.HashData(manifestBytes)),
                Name = "(local)",
                Version = "(unverified)",
                ImageSha256 = string.Empty,
                Slot = TargetState.Other(target.CommittedSlot),
                LocalPayloadPath = request.PayloadPath,
                LocalManifestPath = request.ManifestPath,
            },
        };
        Persist(target, "verifying", $"local install from {request.PayloadPath}", UpdateState.Verifying);
        request.Accepted.TrySetResult(null);
        await RunPipelineAsync(name, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Drives a target's pending update from its persisted phase as far as it goes now.</summary>
    private async Task RunPipelineAsync(string name, CancellationToken cancellationToken)
    {
        var runtime = _targets[name];
        while (true)
        {
            var target = _state.Target(name);
            if (target.Pending is not { } pending)
            {
                return;
            }

            try
            {
                switch (target.Phase)
                {
                    case UpdateState.Verifying:
                        await VerifyAsync(runtime, target, pending, cancellationToken).ConfigureAwait(false);
                        break;
                    case UpdateState.Downloading:
                        await DownloadAsync(runtime, target, pending, cancellationToken).ConfigureAwait(false);
                        break;
                    case UpdateState.Installing:
                        await InstallAsync(runtime, target, pending, cancellationToken).ConfigureAwait(false);
                        break;
                    case UpdateState.Installed:
                        await ActivateAsync(runtime, cancellationToken).ConfigureAwait(false);
                        return;
                    case UpdateState.Trial:
                        await ResumeTrialAsync(runtime, cancellationToken).ConfigureAwait(false);
                        return;
                    default:
                        return;
                }
            }
            catch (ReleaseRejectedException e)
            {
                Abandon(target, $"manifest refused ({e.Reason}): {e.Message}", reject: true);
                return;
            }
            catch (InsufficientSpaceException e)
            {
                Abandon(target, $"not enough space: {e.Message}", reject: false);
                return;
            }
            catch (RunningSlotException e)
            {
                // Nothing wrong with the release: a later notice, once the device runs its committed slot again, may install it.
                Abandon(target, e.Message, reject: false);
                return;
            }
            catch (DeltaApplyException e) when (pending.DeltaBaseSha256 is not null)
            {
                var refused = $"delta refused ({e.Reason}): {e.Message}";
                if (pending.Origin == UpdateOrigin.Local)
                {
                    Abandon(target, refused, reject: false);
                    return;
                }

                LogTargetWarning(name, $"{refused}; downloading the full image");
                FallBackToFullImage(_state.Target(name), $"{refused}; downloading the full image");
            }
            catch (Exception e) when (e is DownloadException or HttpRequestException or IOException or RetryableUpdateException)
            {
                RetryOrAbandon(target, e.Message);
                return;
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested && target.Phase is UpdateState.Verifying or UpdateState.Downloading or UpdateState.Installing)
            {
                // Not the agent stopping: HttpClient.Timeout ends a request that way (a server that accepts
                // and never answers). A network failure like any other, so backoff and retry, not a target
                // left in its phase with nothing scheduled.
                RetryOrAbandon(target, e.Message);
                return;
            }
            catch (Exception e) when (e is InvalidDataException or NotSupportedException or Activation.ImageConfigException or UnauthorizedAccessException)
            {
                Abandon(target, e.Message, reject: pending.Origin == UpdateOrigin.Server);
                return;
            }
        }
    }

    private async Task VerifyAsync(TargetRuntime runtime, TargetState target, PendingUpdate pending, CancellationToken cancellationToken)
    {
        byte[] envelope;
        if (pending.Origin == UpdateOrigin.Local)
        {
            envelope = await File.ReadAllBytesAsync(pending.LocalManifestPath!, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            var url = new Uri(ServerBase, HttpRoutes.Manifest(pending.ManifestSha256));
            using var response = await _http.GetAsync(url, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw new DownloadException(
                    (int)response.StatusCode >= 500 ? DownloadFailure.Server : DownloadFailure.NotFound,
                    $"GET {url}: HTTP {(int)response.StatusCode}");
            }

            envelope = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
            var actual = Convert.ToHexStringLower(SHA256.HashData(envelope));
            if (actual != pending.ManifestSha256)
            {
                // Not the signed manifest at all (a captive portal's HTML, a broken proxy, a truncated body):
                // a transport failure, retried. Refusing it would blacklist a release that was never seen.
                throw new RetryableUpdateException($"the body served for manifest {pending.ManifestSha256} hashes to {actual}; not the manifest");
            }
        }

        var installed = target.Slot(target.CommittedSlot);
        var hasInstalled = installed.State is SlotState.Good or SlotState.Verified;
        var chain = _keySets is null ? null : await _keySets.GetAsync(_http, _config.Server?.Url is null ? null : ServerBase, cancellationToken).ConfigureAwait(false);
        var release = _verifier.Verify(envelope, new ReleaseVerificationContext
        {
            KeySetChain = chain,
            Hardware = _config.Hardware!,
            Architecture = _config.Architecture ?? AgentIdentity.Architecture,
            TargetName = runtime.Name,
            TargetKind = runtime.Config.Kind!,
            MinimumKeySetVersion = _state.KeySetVersion,
            InstalledVersion = hasInstalled ? installed.Version : null,
            InstalledManifestCreatedAt = hasInstalled ? installed.ManifestCreatedAt : null,
        });
        if (pending.Origin == UpdateOrigin.Server && release.ImageSha256 != pending.ImageSha256)
        {
            LogTargetWarning(runtime.Name, $"notice named image {pending.ImageSha256}, the signed manifest names {release.ImageSha256}; following the manifest");
        }

        if (hasInstalled && release.ImageSha256 == installed.ImageSha256)
        {
            LogTarget(runtime.Name, $"{release.Version} is already the running image");
            Persist(target with { Phase = UpdateState.Idle, Pending = null }, "idle");
            return;
        }

        var slotName = TargetState.Other(target.CommittedSlot);
        EnsureNotRunning(target, slotName);

        var slot = runtime.Slot(slotName);
        slot.EnsureRoomFor(release.ImageSize, slot.IsBlockDevice ? 0 : _config.Download.ReserveBytes);
        var committed = target.Slot(target.CommittedSlot);
        string? deltaBase = null;
        if (pending.Origin == UpdateOrigin.Local)
        {
            if (!LocalPayload.IsImage(pending.LocalPayloadPath!))
            {
                if (_deltaApplier is null)
                {
                    throw new NotSupportedException($"{pending.LocalPayloadPath} is not a SquashFS image, and this agent has no delta applier");
                }

                deltaBase = committed.ImageSha256;
            }
        }
        else if (_deltaApplier is not null && _config.Download.PreferDelta && committed.State == SlotState.Good && committed.ImageSha256 is not null)
        {
            deltaBase = committed.ImageSha256;
        }

        // A newly written image starts from its pristine root: the slot's old upper layer goes.
        runtime.App?.Mount.ResetUpper(slotName);
        runtime.DeleteDeltaFiles();

        var verified = pending with
        {
            Verified = true,
            Name = release.Name,
            Version = release.Version,
            ImageSha256 = release.ImageSha256,
            ImageSize = release.ImageSize,
            ManifestCreatedAt = release.CreatedAt,
            Slot = slotName,
            DeltaBaseSha256 = deltaBase,
            DownloadOffset = 0,
            ETag = null,
            BytesDownloaded = 0,
            ApplyOffset = 0,
        };
        var writing = new SlotRecord
        {
            State = SlotState.Writing,
            Name = release.Name,
            Version = release.Version,
            ImageSha256 = release.ImageSha256,
            ImageSize = release.ImageSize,
            ManifestSha256 = pending.ManifestSha256,
            ManifestCreatedAt = release.CreatedAt,
            UpdatedAt = DateTimeOffset.UtcNow,
        };
        _progress[runtime.Name] = 0;
        if (release.KeySetVersion > _state.KeySetVersion)
        {
            _state = _state with { KeySetVersion = release.KeySetVersion };
        }

        Persist(target.WithSlot(slotName, writing) with { Phase = UpdateState.Downloading, Pending = verified }, "downloading", $"manifest for {release.Version} verified; writing slot {slotName}", UpdateState.Downloading);
    }

    /// <summary>The running slot is never written (a system target that fell back to the other slot at boot runs there).</summary>
    private void EnsureNotRunning(TargetState target, string slot)
    {
        if (slot == RunningSlot(target))
        {
            throw new RunningSlotException($"refusing to write slot {slot}: it is the running slot (committed slot {target.CommittedSlot})");
        }
    }

    private Uri ServerBase => new(_config.Server?.Url?.TrimEnd('/') + "/" ?? throw new InvalidOperationException("server.url is not configured"));

    private async Task DownloadAsync(TargetRuntime runtime, TargetState target, PendingUpdate pending, CancellationToken cancellationToken)
    {
        // Checked again on resume: a reboot since the verify may have fallen back to the slot being written.
        EnsureNotRunning(target, pending.Slot);
        var slot = runtime.Slot(pending.Slot);
        if (pending.Origin == UpdateOrigin.Local)
        {
            if (pending.DeltaBaseSha256 is null)
            {
                await LocalPayload.CopyAsync(pending.LocalPayloadPath!, slot.Path, truncate: !slot.IsBlockDevice, cancellationToken).ConfigureAwait(false);
            }

            Persist(target with { Phase = UpdateState.Installing }, "installing");
            return;
        }

        var delta = pending.DeltaBaseSha256 is not null;
        GrowingFileStream? followed = null;
        var request = new DownloadRequest
        {
            Url = delta
                ? new Uri(ServerBase, HttpRoutes.DeltaForDevice(pending.DeltaBaseSha256!, pending.ImageSha256, _deltaApplier!.Codecs, _deltaApplier.FormatVersion, _config.Download.DeltaLevel == "any" ? null : _config.Download.DeltaLevel))
                : new Uri(ServerBase, HttpRoutes.Image(pending.ImageSha256)),
            Destination = delta ? runtime.DeltaPath : slot.Path,
            Offset = pending.DownloadOffset,
            ETag = pending.ETag,
            ExpectedLength = delta ? null : pending.ImageSize,

            // A delta's length is unknown (streamed while generated), but one larger than the image it
            // builds saves nothing; the cap stops a faulty or hostile server from filling the data partition.
            MaxLength = delta ? pending.ImageSize : null,
            Truncate = delta || !slot.IsBlockDevice,

            // A 200 to the range request: a body from byte 0 again, perhaps not the one the apply has been reading.
            Restarted = () => followed?.Stop(new IOException("the server sent the delta again from its start")),
        };
        var lastPercent = -1;
        var downloadedBefore = pending.BytesDownloaded;
        long received = 0;
        async Task<long> DownloadOnceAsync(CancellationToken token) => await _downloader.DownloadAsync(
            request,
            (offset, etag) =>
            {
                lock (_transferGate)
                {
                    var current = _state.Target(runtime.Name);
                    if (current.Pending is not null)
                    {
                        Persist(current with { Pending = current.Pending with { DownloadOffset = offset, ETag = etag, BytesDownloaded = downloadedBefore + received } }, "download-progress");
                    }
                }

                return Task.CompletedTask;
            },
            progress =>
            {
                received = progress.Received;
                followed?.Advance(progress.Offset);

                var total = delta ? progress.Total : pending.ImageSize;
                var percent = total > 0 ? (int)(progress.Offset * 100 / total.Value) : 0;
                if (percent != lastPercent && percent % 10 == 0)
                {
                    lastPercent = percent;
                    lock (_transferGate)
                    {
                        _progress[runtime.Name] = percent;
                        PublishStatus();
                    }
                }
            },
            token).ConfigureAwait(false);

        var applied = false;
        try
        {
            if (!delta)
            {
                await DownloadOnceAsync(cancellationToken).ConfigureAwait(false);
            }
            else
            {
                // The delta is applied as it arrives, so that on a slow link its recompression is done when the last
                // byte is: the apply reads the file up to what has arrived and waits for more.
                var resumeAt = ResumableDownloader.ResumeOffset(request);
                if (resumeAt < pending.DownloadOffset)
                {
                    // Fetched again from its start (no ETag to match the bytes): perhaps not the body the apply read.
                    File.Delete(runtime.ApplyCheckpointPath);
                }

                using var growing = new GrowingFileStream(runtime.DeltaPath, resumeAt);
                followed = growing;
                applied = await DownloadWhileApplyingAsync(
                    growing,
                    DownloadOnceAsync,
                    token => ApplyDeltaAsync(runtime, target, pending, growing, token),
                    runtime,
                    cancellationToken).ConfigureAwait(false);
            }
        }
        catch (DownloadException e) when (delta && e.Failure == DownloadFailure.NotFound)
        {
            LogTarget(runtime.Name, $"no delta from the running image ({e.Message}); downloading the full image");
            FallBackToFullImage(_state.Target(runtime.Name), null);
            return;
        }
        catch (DownloadException e) when (delta && e.Failure == DownloadFailure.TooLarge)
        {
            var refused = $"delta refused (too-large): {e.Message}, the size of the image it builds; downloading the full image";
            LogTargetWarning(runtime.Name, refused);
            FallBackToFullImage(_state.Target(runtime.Name), refused);
            return;
        }
        catch (DownloadException e) when (e.Failure == DownloadFailure.NoRoom)
        {
            if (!delta)
            {
                // The slot's room was checked before the download: something else filled it since.
                throw new InsufficientSpaceException(e.Message, e);
            }

            // The delta is staged in the state directory; the full image goes straight to the slot.
            var refused = $"delta refused (no-room): {e.Message}; downloading the full image";
            LogTargetWarning(runtime.Name, refused);
            FallBackToFullImage(_state.Target(runtime.Name), refused);
            return;
        }
        catch (DownloadException e) when (e.Failure == DownloadFailure.LengthMismatch)
        {
            var current = _state.Target(runtime.Name);
            Persist(current with { Pending = current.Pending! with { DownloadOffset = 0, ETag = null } }, "download-restart");
            throw;
        }

        _progress[runtime.Name] = 100;
        var done = _state.Target(runtime.Name);
        Persist(done with { Phase = UpdateState.Installing, Pending = done.Pending! with { DeltaApplied = applied } }, "installing");
    }

    /// <summary>
    /// Runs <paramref name="download"/> and <paramref name="apply"/> (which reads <paramref name="growing"/>) together.
    /// True when both ended well; false when the download started the delta over from its start, so that the apply
    /// read another body (its checkpoint is deleted, and the install applies the whole file). A failure of either
    /// stops the other: the apply's checkpoint stays for the next attempt, and the failure that came first is thrown.
    /// </summary>
    private async Task<bool> DownloadWhileApplyingAsync(GrowingFileStream growing, Func<CancellationToken, Task<long>> download, Func<CancellationToken, Task<long>> apply, TargetRuntime runtime, CancellationToken cancellationToken)
    {
        using var downloadCancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var applyStoppedDownload = false;
        var applying = Task.Run(
            async () =>
            {
                try
                {
                    return await apply(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not (DownloadStoppedException or OperationCanceledException))
                {
                    // A refused delta (or a full slot): no use downloading the rest.
                    applyStoppedDownload = true;
                    await downloadCancel.CancelAsync().ConfigureAwait(false);
                    throw;
                }
            },
            CancellationToken.None);
        long length;
        try
        {
            length = await download(downloadCancel.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            growing.Stop(e);
            try
            {
                await applying.ConfigureAwait(false);
            }
            catch (Exception) when (!(applyStoppedDownload && e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                // Observed; the download's failure is the one to act on (the apply resumes from its checkpoint). When
                // the apply failed first and stopped the download, its failure propagates instead.
            }

            throw;
        }

        growing.Complete(length);
        try
        {
            await applying.ConfigureAwait(false);
            return true;
        }
        catch (DownloadStoppedException e)
        {
            LogTarget(runtime.Name, $"the delta is applied once downloaded: {e.Message}");
            File.Delete(runtime.ApplyCheckpointPath);
            return false;
        }
    }

    private async Task InstallAsync(TargetRuntime runtime, TargetState target, PendingUpdate pending, CancellationToken cancellationToken)
    {
        var slot = runtime.Slot(pending.Slot);
        long resumedFrom = 0;
        if (pending.DeltaBaseSha256 is not null && !pending.DeltaApplied)
        {
            resumedFrom = await ApplyDeltaAsync(runtime, target, pending, null, cancellationToken).ConfigureAwait(false);
        }

        string actual;
        try
        {
            actual = await slot.HashAsync(pending.ImageSize, cancellationToken).ConfigureAwait(false);
        }
        catch (EndOfStreamException e)
        {
            actual = $"(short: {e.Message})";
        }

        target = _state.Target(runtime.Name);
        pending = target.Pending!;
        if (actual != pending.ImageSha256)
        {
            var message = $"image hash mismatch in slot {pending.Slot}: the manifest says {pending.ImageSha256}, the slot holds {actual}";
            LogTargetWarning(runtime.Name, message);
            var bad = target.WithSlot(pending.Slot, target.Slot(pending.Slot) with { State = SlotState.Bad, UpdatedAt = DateTimeOffset.UtcNow });
            if (pending.DeltaBaseSha256 is not null && pending.Origin == UpdateOrigin.Server)
            {
                FallBackToFullImage(bad, $"{message}; downloading the full image");
                return;
            }

            if (pending.Origin == UpdateOrigin.Local)
            {
                Abandon(bad, message, reject: false);
                return;
            }

            // Download again from the start; the slot stays unusable (writing) until a hash matches.
            var again = target.WithSlot(pending.Slot, target.Slot(pending.Slot) with { State = SlotState.Writing, UpdatedAt = DateTimeOffset.UtcNow });
            Persist(again with { Phase = UpdateState.Downloading, Pending = pending with { DownloadOffset = 0, ETag = null } }, "hash-mismatch");
            throw new RetryableUpdateException(message);
        }

        var verifiedSlot = target.Slot(pending.Slot) with { State = SlotState.Verified, UpdatedAt = DateTimeOffset.UtcNow };
        var summary = DescribeTransfer(pending, resumedFrom);
        LogTarget(runtime.Name, $"slot {pending.Slot} verified ({pending.ImageSha256}): {summary}");
        Persist(target.WithSlot(pending.Slot, verifiedSlot) with { Phase = UpdateState.Installed, LastError = null }, "installed", $"slot {pending.Slot} verified ({pending.ImageSha256}): {summary}", UpdateState.Installed);

        // Only now: a power cut before the persist restarts in installing, which applies the delta again
        // and needs it. One after it leaves a stale file, which start-up deletes.
        DeleteStaleDeltaFiles(runtime);
    }

    /// <summary>Deletes the delta and its apply checkpoint once no phase needs them; a failure only costs space until the next try.</summary>
    private void DeleteStaleDeltaFiles(TargetRuntime runtime)
    {
        try
        {
            runtime.DeleteDeltaFiles();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogTargetWarning(runtime.Name, $"could not delete the used delta files: {e.Message}");
        }
    }

    /// <summary>
    /// Rebuilds the pending image into the inactive slot from the committed slot and the delta. The
    /// library checkpoints into the state directory; each checkpoint is also persisted as
    /// <c>apply-progress</c>, so a power cut resumes the apply there. Returns where it resumed from.
    /// </summary>
    /// <param name="runtime">The target.</param>
    /// <param name="target">Its state when the apply starts.</param>
    /// <param name="pending">The update.</param>
    /// <param name="downloading">The delta while it still downloads (the status then shows the download's progress); null: the file.</param>
    /// <param name="cancellationToken">Stops the apply at its next read or section.</param>
    private async Task<long> ApplyDeltaAsync(TargetRuntime runtime, TargetState target, PendingUpdate pending, GrowingFileStream? downloading, CancellationToken cancellationToken)
    {
        var baseSlot = target.CommittedSlot;
        if (pending.Slot == baseSlot)
        {
            throw new RunningSlotException($"refusing to write slot {pending.Slot}: it is the committed slot, the delta's base");
        }

        EnsureNotRunning(target, pending.Slot);

        if (target.Slot(baseSlot).ImageSha256 != pending.DeltaBaseSha256)
        {
            throw new DeltaApplyException("wrong-base", $"the delta starts from image {pending.DeltaBaseSha256}; slot {baseSlot} now holds {target.Slot(baseSlot).ImageSha256}");
        }

        var interval = _config.Download.DeltaCheckpointBytes;
        long persistedAt = 0;
        var lastPercent = -10;
        var outcome = await _deltaApplier!.ApplyAsync(
            new DeltaApplyRequest
            {
                BaseImagePath = runtime.Slot(baseSlot).Path,
                DeltaPath = pending.Origin == UpdateOrigin.Local ? pending.LocalPayloadPath! : runtime.DeltaPath,
                Delta = downloading,
                OutputPath = runtime.Slot(pending.Slot).Path,
                CheckpointPath = runtime.ApplyCheckpointPath,
                ExpectedImage = (pending.ImageSha256, pending.ImageSize),
                CheckpointIntervalBytes = interval,
                Progress = (written, total) =>
                {
                    var percent = total > 0 ? (int)(written * 100 / total) : 0;
                    if (downloading is null && percent / 10 != lastPercent / 10)
                    {
                        lastPercent = percent;
                        _progress[runtime.Name] = percent;
                        PublishStatus();
                    }

                    // Persisted once the library's checkpoint is on disk, so that a power cut right after
                    // this write (the fault hook) finds a checkpoint to resume from.
                    if (written - persistedAt >= interval && File.Exists(runtime.ApplyCheckpointPath))
                    {
                        persistedAt = written;
                        lock (_transferGate)
                        {
                            var current = _state.Target(runtime.Name);
                            if (current.Pending is not null)
                            {
                                Persist(current with { Pending = current.Pending with { ApplyOffset = written } }, "apply-progress");
                            }
                        }
                    }
                },
            },
            cancellationToken).ConfigureAwait(false);
        if (outcome.ResumedFrom > 0)
        {
            LogTarget(runtime.Name, $"delta apply resumed from its checkpoint at byte {outcome.ResumedFrom} of {outcome.ImageSize}");
        }

        if (outcome.ImageSha256 != pending.ImageSha256 || outcome.ImageSize != pending.ImageSize)
        {
            throw new DeltaApplyException("wrong-target", $"the delta builds image {outcome.ImageSha256} ({outcome.ImageSize} bytes); the manifest names {pending.ImageSha256} ({pending.ImageSize} bytes)");
        }

        _progress[runtime.Name] = 100;
        return outcome.ResumedFrom;
    }

    /// <summary>How the image came: "from a delta: 41230 bytes downloaded for a 9437184-byte image (0.4 %)".</summary>
    private static string DescribeTransfer(PendingUpdate pending, long resumedFrom)
    {
        if (pending.Origin == UpdateOrigin.Local)
        {
            return pending.DeltaBaseSha256 is not null ? $"built from the local delta {pending.LocalPayloadPath}" : $"copied from {pending.LocalPayloadPath}";
        }

        var share = pending.ImageSize > 0 ? 100.0 * pending.BytesDownloaded / pending.ImageSize : 0;
        var how = pending.DeltaBaseSha256 is not null ? "from a delta" : "full image";
        var resumed = resumedFrom > 0 ? $", apply resumed at byte {resumedFrom}" : string.Empty;
        return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{how}: {pending.BytesDownloaded} bytes downloaded for a {pending.ImageSize}-byte image ({share:0.0} %){resumed}");
    }

    /// <summary>Drops the delta (missing or unusable) and downloads the full image into the same slot.</summary>
    private void FallBackToFullImage(TargetState target, string? reason)
    {
        var pending = target.Pending!;
        _targets[target.Name].DeleteDeltaFiles();
        var writing = target.Slot(pending.Slot) with { State = SlotState.Writing, UpdatedAt = DateTimeOffset.UtcNow };
        Persist(
            target.WithSlot(pending.Slot, writing) with
            {
                Phase = UpdateState.Downloading,
                LastError = reason,
                Pending = pending with { DeltaBaseSha256 = null, DownloadOffset = 0, ETag = null, ApplyOffset = 0, DeltaApplied = false },
            },
            "downloading-full",
            reason);
    }

    private void RetryOrAbandon(TargetState failed, string message)
    {
        var target = _state.Target(failed.Name);
        var pending = target.Pending!;
        var attempt = pending.Attempt + 1;
        if (attempt >= _config.Download.MaxAttempts || pending.Origin == UpdateOrigin.Local)
        {
            Abandon(target, $"abandoned after {attempt} attempt(s): {message}", reject: false);
            return;
        }

        var delay = Backoff(attempt);
        LogTargetWarning(target.Name, $"attempt {attempt} of {_config.Download.MaxAttempts} failed: {message}; retrying in {delay.TotalSeconds:0} s");
        Persist(target with { Pending = pending with { Attempt = attempt }, LastError = $"attempt {attempt} failed, retrying in {delay.TotalSeconds:0} s: {message}" }, "retry");
        ScheduleResume(target.Name, delay);
    }

    /// <summary>Gives the update up before activation: the running slot was never touched; the written slot is marked bad.</summary>
    private void Abandon(TargetState failed, string reason, bool reject)
    {
        var target = _state.Target(failed.Name);
        var pending = target.Pending;
        LogTargetError(target.Name, $"update to {pending?.Version} failed: {reason}", null);
        if (pending is not null && target.Slot(pending.Slot).State == SlotState.Writing)
        {
            target = target.WithSlot(pending.Slot, target.Slot(pending.Slot) with { State = SlotState.Bad, UpdatedAt = DateTimeOffset.UtcNow });
        }

        if (reject && pending is not null && pending.Origin == UpdateOrigin.Server)
        {
            target = target.Reject(pending.ManifestSha256);
        }

        _progress.Remove(target.Name);
        Persist(target with { Phase = UpdateState.Failed, LastError = reason, Pending = null }, "failed", reason, UpdateState.Failed, pending);
    }
}

/// <summary>A failure worth another attempt after a backoff (corrupt download).</summary>
internal sealed class RetryableUpdateException : Exception
{
    public RetryableUpdateException(string message)
        : base(message)
    {
    }

    public RetryableUpdateException()
    {
    }

    public RetryableUpdateException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The slot an update would write is the one the device runs now (a boot fallback); the update is given up.</summary>
internal sealed class RunningSlotException : Exception
{
    public RunningSlotException(string message)
        : base(message)
    {
    }

    public RunningSlotException()
    {
    }

    public RunningSlotException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
