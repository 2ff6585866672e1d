using EdgeUpdater.Agent.Slots;
using EdgeUpdater.Delta;
using EdgeUpdater.SquashFs.IO;

namespace EdgeUpdater.Agent.Install;

/// <summary>
/// <see cref="IDeltaApplier"/> with EdgeUpdater.Delta: reads the active slot by random access (never
/// opened for writing), the delta front to back, writes the inactive slot front to back, checkpoints in
/// the state directory, and only returns once the rebuilt image's SHA-256 matched the delta's header.
/// </summary>
internal sealed class SlotDeltaApplier : IDeltaApplier
{
    private readonly Lazy<string> _codecs;

    /// <param name="codecs">Overrides the codec identities (tests); null asks the native libraries present.</param>
    public SlotDeltaApplier(string? codecs = null)
    {
        _codecs = new Lazy<string>(() => codecs ?? DeltaCodecs.LocalIdentitiesQuery());
    }

    public string Codecs => _codecs.Value;

    public int FormatVersion => DeltaFormatVersions.Newest;

    public async Task<DeltaApplyOutcome> ApplyAsync(DeltaApplyRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        // Not a refusal of the delta (those fall back to the full image, which would go into this same slot).
        if (FileDeltaTarget.IsBase(request.OutputPath, request.BaseImagePath))
        {
            throw new InvalidOperationException($"refusing to apply a delta onto its own base slot {request.BaseImagePath}");
        }

        try
        {
            using var baseImage = new FileImageSource(request.BaseImagePath);
            var delta = request.Delta ?? new FileStream(request.DeltaPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous);
            try
            {
                using var output = new FileDeltaTarget(request.OutputPath);
                var result = await DeltaApplier.ApplyAsync(baseImage, delta, output, new DeltaApplyOptions
                {
                    CheckpointPath = request.CheckpointPath,
                    Resume = true,
                    ExpectedTarget = request.ExpectedImage is { } expected ? new ExpectedImage(expected.Size, Convert.FromHexString(expected.Sha256)) : null,
                    CheckpointInterval = request.CheckpointIntervalBytes,
                    Progress = request.Progress is null ? null : new InlineProgress(request.Progress),
                }, cancellationToken).ConfigureAwait(false);
                return new DeltaApplyOutcome(Convert.ToHexStringLower(result.Header.TargetSha256), result.Header.TargetSize, result.ResumedFrom);
            }
            finally
            {
                if (request.Delta is null)
                {
                    await delta.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
        catch (DeltaException e)
        {
            if (e.Category == DeltaErrorCategory.CheckpointMismatch)
            {
                // A checkpoint of another delta (or a damaged one) must not block the next attempt.
                File.Delete(request.CheckpointPath);
            }

            if (e.Category == DeltaErrorCategory.OutputFull)
            {
                // Not the delta's fault: the full image would need the same room, so no fallback to it. The
                // checkpoint stays for the next attempt.
                throw new InsufficientSpaceException(e.Message, e);
            }

            throw new DeltaApplyException(Reason(e.Category), e.Message, e);
        }
    }

    /// <summary>The category as the kebab-case word used in status messages.</summary>
    public static string Reason(DeltaErrorCategory category) => category switch
    {
        DeltaErrorCategory.Corrupted => "corrupted",
        DeltaErrorCategory.Truncated => "truncated",
        DeltaErrorCategory.UnsupportedVersion => "unsupported-version",
        DeltaErrorCategory.WrongBase => "wrong-base",
        DeltaErrorCategory.OutOfBounds => "out-of-bounds",
        DeltaErrorCategory.Overflow => "overflow",
        DeltaErrorCategory.CodecMismatch => "codec-mismatch",
        DeltaErrorCategory.VerificationFailed => "verification-failed",
        DeltaErrorCategory.CheckpointMismatch => "checkpoint-mismatch",
        DeltaErrorCategory.Unsupported => "unsupported",
        DeltaErrorCategory.OutputFull => "output-full",
        DeltaErrorCategory.WrongTarget => "wrong-target",
        _ => "unusable",
    };

    /// <summary>Reports on the applying thread: <see cref="Progress{T}"/> would post to the thread pool and reorder reports.</summary>
    private sealed class InlineProgress(Action<long, long> report) : IProgress<DeltaApplyProgress>
    {
        public void Report(DeltaApplyProgress value) => report(value.BytesWritten, value.TotalBytes);
    }
}
