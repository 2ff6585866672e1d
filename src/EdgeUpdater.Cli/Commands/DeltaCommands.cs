using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using EdgeUpdater.Delta;
using EdgeUpdater.SquashFs;

namespace EdgeUpdater.Cli.Commands;

/// <summary><c>edgeupdater delta</c>: Create, apply and inspect SquashFS-aware deltas.</summary>
internal static class DeltaCommands
{
    /// <summary>Builds the <c>delta</c> command group.</summary>
    public static Command Create()
    {
        var command = new Command("delta", "Create, apply and inspect SquashFS-aware deltas.");
        command.Subcommands.Add(CreateCreate());
        command.Subcommands.Add(CreateApply());
        command.Subcommands.Add(CreateInfo());
        command.Subcommands.Add(CreateProve());
        return command;
    }

    private static Command CreateCreate()
    {
        var old = new Argument<string>("old") { Description = "The image the device has (A)." };
        var @new = new Argument<string>("new") { Description = "The image to rebuild (B)." };
        var output = new Option<string>("--output", "-o") { Description = "Where to write the delta.", Required = true };
        var level = new Option<string>("--level") { Description = "fast (inline) or best (background).", DefaultValueFactory = _ => "best" };
        level.AcceptOnlyFromAmong("fast", "best");
        var codecs = new Option<string?>("--codecs") { Description = "Comma-separated codec identities the device has (default: this machine's)." };
        var generic = new Option<bool>("--generic") { Description = "Use the generic mode even for SquashFS images." };
        var format = new Option<int>("--format-version")
        {
            Description = $"Delta format version to write, for devices that read no newer ({DeltaFormatVersions.OldestWritten} to {DeltaFormatVersions.Newest}).",
            DefaultValueFactory = _ => DeltaFormatVersions.Newest,
        };
        format.AcceptOnlyFromAmong([.. Enumerable.Range(DeltaFormatVersions.OldestWritten, DeltaFormatVersions.Newest - DeltaFormatVersions.OldestWritten + 1).Select(v => v.ToString(CultureInfo.InvariantCulture))]);
        var record = new Option<string?>("--reproduction-record")
        {
            Description = "File that keeps which of <new>'s blocks recompress exactly (read when present, written after): deltas from further bases to the same <new> skip those proofs. A record of another image or codec is started afresh.",
        };
        var tables = new Option<long>("--max-metadata-tables")
        {
            Description = "Most bytes of an image's decompressed metadata tables for which the delta patches them (the device holds about 3 times that); larger ones go as patched stored bytes.",
            DefaultValueFactory = _ => new DeltaGeneratorOptions().MaxMetadataTableBytes,
        };
        tables.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<long>() < 0)
            {
                r.AddError("--max-metadata-tables must not be negative.");
            }
        });
        var command = new Command("create", "Create a delta that rebuilds <new> from <old> byte for byte.") { old, @new, output, level, codecs, generic, format, record, tables };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var recordPath = parse.GetValue(record);
            return await RunAsync(parse, async () =>
            {
                var reproduction = recordPath is null ? null : await ReadRecordAsync(recordPath, parse.InvocationConfiguration.Error, cancellationToken).ConfigureAwait(false);
                var options = new DeltaGeneratorOptions
                {
                    Level = parse.GetValue(level) == "fast" ? DeltaLevel.Fast : DeltaLevel.Best,
                    DeviceCodecs = parse.GetValue(codecs) is { } list ? DeltaCodecs.Parse(list) : null,
                    ForceGeneric = parse.GetValue(generic),
                    FormatVersion = parse.GetValue(format),
                    Reproduction = reproduction,
                    MaxMetadataTableBytes = parse.GetValue(tables),
                };
                var target = parse.GetRequiredValue(output);
                var temp = target + ".part";
                var watch = Stopwatch.StartNew();
                DeltaGenerationResult result;
                try
                {
                    await using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
                    {
                        result = await DeltaGenerator.GenerateAsync(parse.GetRequiredValue(old), parse.GetRequiredValue(@new), stream, options, cancellationToken).ConfigureAwait(false);
                    }

                    File.Move(temp, target, overwrite: true);
                }
                catch
                {
                    // A partial delta is of no use, and it may be what filled the disk.
                    File.Delete(temp);
                    throw;
                }

                if (recordPath is not null && reproduction!.Count > 0)
                {
                    await WriteRecordAsync(recordPath, reproduction).ConfigureAwait(false);
                }

                var s = result.Statistics;
                parse.InvocationConfiguration.Output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{target}: {s.DeltaBytes} bytes ({result.Header.Mode}, {result.Header.Level}) in {watch.Elapsed.TotalSeconds:F2} s; copied {s.CopiedBytes}, rebuilt {s.RebuiltBytes} ({s.RecompressedBlocks} blocks recompressed, {s.IrreproducibleBlocks} not reproducible, {s.PackedBlocks} packed), literal {s.LiteralBytes}, metadata {s.MetadataBytes} ({s.MetadataBlocksRecompressed} blocks recompressed, {(s.MetadataBlocksReplayed > 0 ? $"{s.MetadataBlocksReplayed} replayed, " : "")}{s.MetadataBlocksLiteral} literal{(s.MetadataTablesDerived > 0 ? $", {s.MetadataTablesDerived} tables derived" : "")}){(s.ProofsRecalled > 0 ? $"; {s.ProofsRecalled} proofs from the record" : "")}"));
                if (Environment.GetEnvironmentVariable("EDGEUPDATER_DELTA_PHASES") == "1")
                {
                    parse.InvocationConfiguration.Output.WriteLine(string.Join(", ", s.PhaseMilliseconds.Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Key} {p.Value:F0} ms"))));
                }
                return ExitCodes.Ok;
            }).ConfigureAwait(false);
        });
        return command;
    }

    private static Command CreateApply()
    {
        var old = new Argument<string>("old") { Description = "The image the delta was made from (file or block device)." };
        var delta = new Argument<string>("delta") { Description = "The delta file, - for standard input, or an http:// or https:// URL." };
        var output = new Option<string>("--output", "-o") { Description = "Where to write the new image (file or block device).", Required = true };
        var resume = new Option<bool>("--resume") { Description = "Continue an interrupted apply from its checkpoint (<output>.checkpoint)." };
        var verifyBase = new Option<string>("--verify-base")
        {
            Description = "When to hash <old>: when-failed (to name a wrong base), beside (while writing), before (before writing) or size-only. The result is always verified.",
            DefaultValueFactory = _ => "when-failed",
        };
        verifyBase.AcceptOnlyFromAmong("when-failed", "beside", "before", "size-only");
        var command = new Command("apply", "Rebuild the new image from <old> and <delta>, verified by SHA-256.") { old, delta, output, resume, verifyBase };
        command.SetAction(async (parse, cancellationToken) => await RunAsync(parse, async () =>
        {
            var target = parse.GetRequiredValue(output);
            var deltaPath = parse.GetRequiredValue(delta);
            var deltaUrl = IsUrl(deltaPath, out var parsed) ? parsed : null;
            var options = new DeltaApplyOptions
            {
                // Over HTTP every seek is a request, and the metadata section, which comes last, would come twice.
                ReadMetadataAhead = deltaUrl is null,
                CheckpointPath = target + ".checkpoint",
                Resume = parse.GetValue(resume),
                VerifyBase = parse.GetValue(verifyBase) switch
                {
                    "beside" => BaseVerification.Beside,
                    "before" => BaseVerification.BeforeWriting,
                    "size-only" => BaseVerification.SizeOnly,
                    _ => BaseVerification.WhenFailed,
                },
            };
            var basePath = parse.GetRequiredValue(old);
            using var baseSource = new SquashFs.IO.FileImageSource(basePath);
            using var http = deltaUrl is null ? null : new HttpClient(new SocketsHttpHandler { ConnectTimeout = HttpAnswerTimeout }) { Timeout = HttpAnswerTimeout };
            await using var input = deltaPath == "-" ? Console.OpenStandardInput()
                : deltaUrl is not null ? await HttpDeltaStream.OpenAsync(http!, deltaUrl, HttpIdleTimeout, parse.InvocationConfiguration.Error, cancellationToken).ConfigureAwait(false)
                : new FileStream(deltaPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
            using var sink = new FileDeltaTarget(target, basePath);
            var watch = Stopwatch.StartNew();
            var result = await DeltaApplier.ApplyAsync(baseSource, input, sink, options, cancellationToken).ConfigureAwait(false);
            parse.InvocationConfiguration.Output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{target}: {result.Header.TargetSize} bytes, SHA-256 {Convert.ToHexStringLower(result.Header.TargetSha256)} verified in {watch.Elapsed.TotalSeconds:F2} s{(result.ResumedFrom > 0 ? $" (resumed at {result.ResumedFrom})" : "")}"));
            return ExitCodes.Ok;
        }).ConfigureAwait(false));
        return command;
    }

    /// <summary>How long a request for the delta may wait for its answer's headers, and a connection for its setup.</summary>
    private static readonly TimeSpan HttpAnswerTimeout = TimeSpan.FromSeconds(60);

    /// <summary>How long the delta's body may stall before the connection counts as dropped and is made again.</summary>
    private static readonly TimeSpan HttpIdleTimeout = TimeSpan.FromSeconds(60);

    private static bool IsUrl(string argument, out Uri url) =>
        Uri.TryCreate(argument, UriKind.Absolute, out url!) && url.Scheme is "http" or "https";

    private static Command CreateProve()
    {
        var image = new Argument<string>("image") { Description = "The image deltas will be made to (B)." };
        var record = new Option<string>("--reproduction-record") { Description = "The record to fill (read when present, written after).", Required = true };
        var command = new Command("prove", "Try once which of an image's blocks recompress exactly, for every later 'delta create --reproduction-record' to it.") { image, record };
        command.SetAction(async (parse, cancellationToken) => await RunAsync(parse, async () =>
        {
            var path = parse.GetRequiredValue(record);
            var reproduction = await ReadRecordAsync(path, parse.InvocationConfiguration.Error, cancellationToken).ConfigureAwait(false);
            var watch = Stopwatch.StartNew();
            var tried = await ReproductionProver.ProveAsync(parse.GetRequiredValue(image), reproduction, Environment.ProcessorCount, null, cancellationToken).ConfigureAwait(false);
            if (reproduction.Count > 0)
            {
                await WriteRecordAsync(path, reproduction).ConfigureAwait(false);
            }

            var reproducing = reproduction.ReproducingCount;
            var share = reproduction.Count == 0 ? 0 : 100.0 * reproducing / reproduction.Count;
            parse.InvocationConfiguration.Output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{path}: {reproduction.Count} blocks recorded, {reproducing} recompress to their stored bytes ({share:F1} %), {tried} tried now, for {reproduction.CodecIdentity ?? "no codec"} in {watch.Elapsed.TotalSeconds:F2} s"));
            return ExitCodes.Ok;
        }).ConfigureAwait(false));
        return command;
    }

    private static Command CreateInfo()
    {
        var delta = new Argument<string>("delta") { Description = "The delta file." };
        var command = new Command("info", "Show what a delta is made of: sizes by operation kind and share copied, rebuilt, literal.") { delta };
        command.SetAction(async (parse, cancellationToken) => await RunAsync(parse, async () =>
        {
            await using var input = File.OpenRead(parse.GetRequiredValue(delta));
            var info = await DeltaInspector.InspectAsync(input, cancellationToken).ConfigureAwait(false);
            var h = info.Header;
            var total = Math.Max(1, h.TargetSize);
            var inv = CultureInfo.InvariantCulture;
            var stdout = parse.InvocationConfiguration.Output;
            stdout.WriteLine(string.Create(inv, $"format {h.Version}, mode {h.Mode.ToString().ToLowerInvariant()}, level {h.Level.ToString().ToLowerInvariant()}, codec {(h.CodecIdentity.Length > 0 ? h.CodecIdentity : "none")}"));
            stdout.WriteLine(string.Create(inv, $"base   {h.BaseSize} bytes sha256 {Convert.ToHexStringLower(h.BaseSha256)}"));
            stdout.WriteLine(string.Create(inv, $"target {h.TargetSize} bytes sha256 {Convert.ToHexStringLower(h.TargetSha256)}"));
            stdout.WriteLine(string.Create(inv, $"delta  {info.DeltaBytes} bytes: {string.Join(", ", info.DeltaBytesBySection.Select(p => $"{p.Key} {p.Value}"))}"));
            void Line(string name, long bytes) => stdout.WriteLine(string.Create(inv, $"  {name,-12} {bytes,14} bytes {100.0 * bytes / total,6:F2}%"));
            stdout.WriteLine("target bytes by origin:");
            Line("copied", info.CopiedBytes);
            Line("rebuilt", info.RebuiltBytes);
            Line("literal", info.LiteralBytes);
            Line("zeros", info.ZeroBytes);
            Line("metadata", info.MetadataBytes);
            stdout.WriteLine(string.Create(inv, $"  {info.RecompressedBlocks} data and fragment blocks recompressed on the device"));
            var m = info.MetadataBlocks;
            if (m.Total > 0)
            {
                var tables = string.Join(", ", info.MetadataTablesByEncoding.Select(p => $"{p.Value} {p.Key}"));
                stdout.WriteLine(string.Create(inv, $"  {m.Total} metadata blocks: {m.Recompressed} recompressed, {m.Replayed} replayed, {m.Uncompressed} uncompressed, {m.Literal} literal; tables: {tables}"));
            }

            return ExitCodes.Ok;
        }).ConfigureAwait(false));
        return command;
    }

    /// <summary>The record at <paramref name="path"/>; a damaged one is reported and started afresh (it only saves time).</summary>
    private static async Task<ReproductionRecord> ReadRecordAsync(string path, TextWriter error, CancellationToken cancellationToken)
    {
        if (!File.Exists(path))
        {
            return new ReproductionRecord();
        }

        try
        {
            return ReproductionRecord.Read(await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false));
        }
        catch (DeltaException e)
        {
            await error.WriteLineAsync($"warning: {path}: {e.Message} Starting a new record.").ConfigureAwait(false);
            return new ReproductionRecord();
        }
    }

    private static async Task WriteRecordAsync(string path, ReproductionRecord record)
    {
        var temp = path + ".part";
        try
        {
            await using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write))
            {
                record.Write(file);
            }

            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    private static async Task<int> RunAsync(ParseResult parse, Func<Task<int>> action)
    {
        var error = parse.InvocationConfiguration.Error;
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (DeltaException e)
        {
            await error.WriteLineAsync($"error ({e.Category}): {e.Message}").ConfigureAwait(false);
            return e.Category switch
            {
                DeltaErrorCategory.WrongBase or DeltaErrorCategory.VerificationFailed => ExitCodes.VerificationFailed,
                DeltaErrorCategory.OutputFull => ExitCodes.Failure,
                _ => ExitCodes.InvalidInput,
            };
        }
        catch (SquashFsException e)
        {
            await error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }
        catch (DeltaDownloadException e)
        {
            await error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
            return e.Status is { } status && (int)status is >= 400 and < 500 ? ExitCodes.Rejected : ExitCodes.Failure;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            await error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
            return ExitCodes.Failure;
        }
    }
}
