using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using EdgeUpdater.Images;
using EdgeUpdater.SquashFs;
using EdgeUpdater.SquashFs.Compression;
using EdgeUpdater.SquashFs.Format;
using EdgeUpdater.SquashFs.Reader;
using EdgeUpdater.SquashFs.Writer;

namespace EdgeUpdater.Cli.Commands;

/// <summary><c>edgeupdater image</c>: Build, inspect, list, read and extract SquashFS images.</summary>
internal static class ImageCommands
{
    /// <summary>Builds the <c>image</c> command group.</summary>
    public static Command Create()
    {
        var command = new Command("image", "Build, inspect, list, read and extract SquashFS images.");
        command.Subcommands.Add(CreateBuild());
        command.Subcommands.Add(CreateInspect());
        command.Subcommands.Add(CreateList());
        command.Subcommands.Add(CreateCat());
        command.Subcommands.Add(CreateExtract());
        return command;
    }

    private static Command CreateBuild()
    {
        var rootDir = new Argument<DirectoryInfo>("rootdir") { Description = "Directory that becomes root/ in the image." };
        var config = new Option<FileInfo>("--config", "-c") { Description = "config.json to validate and store at the top of the image.", Required = true };
        var output = new Option<FileInfo>("--output", "-o") { Description = "Image file to write (replaced if it exists).", Required = true };
        var compressor = new Option<string>("--compressor") { Description = "Compressor: gzip, xz, lz4 or zstd.", DefaultValueFactory = _ => "gzip" };
        compressor.AcceptOnlyFromAmong("gzip", "xz", "lz4", "zstd");
        var level = new Option<int?>("--level") { Description = "Compression level: gzip 1-9 (default 9), zstd 1-22 (default 15), lz4 any value selects high compression; xz has no level." };
        var blockSize = new Option<string>("--block-size", "-b") { Description = "Data block size in bytes, a power of two from 4096 to 1048576 (K and M suffixes allowed).", DefaultValueFactory = _ => "131072" };
        var noFragments = new Option<bool>("--no-fragments") { Description = "Do not pack small files into shared fragment blocks." };
        var command = new Command("build", "Build an EdgeUpdater image (config.json + root/) from a directory.")
        {
            rootDir, config, output, compressor, level, blockSize, noFragments,
        };
        command.SetAction((parse, cancellationToken) => RunAsync(parse, async () =>
        {
            var compressorOptions = ParseCompressor(parse.GetValue(compressor)!, parse.GetValue(level));
            var options = new SquashFsWriterOptions
            {
                Compressor = compressorOptions,
                BlockSize = ParseBlockSize(parse.GetValue(blockSize)!),
                Fragments = !parse.GetValue(noFragments),
            };
            var result = await ImageBuilder.BuildAsync(parse.GetValue(rootDir)!.FullName, parse.GetValue(config)!.FullName, parse.GetValue(output)!.FullName, options, cancellationToken).ConfigureAwait(false);
            var stdout = parse.InvocationConfiguration.Output;
            await stdout.WriteLineAsync($"Built {result.Path}").ConfigureAwait(false);
            await stdout.WriteLineAsync($"  image    {result.Config.Name} {result.Config.Version} ({result.Config.Target.ToString().ToLowerInvariant()})").ConfigureAwait(false);
            await stdout.WriteLineAsync($"  size     {result.Write.ImageLength} bytes ({result.Write.InodeCount} inodes, {result.Write.DataBlocks} data blocks, {result.Write.FragmentBlocks} fragment blocks, {result.Write.DuplicateFiles} duplicate files)").ConfigureAwait(false);
            await stdout.WriteLineAsync($"  sha256   {result.Sha256}").ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command CreateInspect()
    {
        var image = ImageArgument();
        var json = new Option<bool>("--json") { Description = "Print JSON instead of text." };
        var command = new Command("inspect", "Show the superblock, compressor, sizes and config.json of an image.") { image, json };
        command.SetAction((parse, cancellationToken) => RunAsync(parse, async () =>
        {
            var path = parse.GetValue(image)!.FullName;
            using var sqfs = SquashFsImage.Open(path);
            var inspection = Inspect(path, sqfs);
            var stdout = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json))
            {
                await stdout.WriteLineAsync(JsonSerializer.Serialize(inspection, ImageInspectionJsonContext.Default.ImageInspection)).ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            var text = new StringBuilder();
            text.AppendLine($"image        {inspection.Path}");
            text.AppendLine($"format       SquashFS {inspection.Version}, block size {inspection.BlockSize}, created {inspection.Created:yyyy-MM-dd HH:mm:ss}Z");
            text.AppendLine($"compressor   {inspection.Compressor.Options} ({inspection.Compressor.Library})");
            text.AppendLine($"size         {inspection.BytesUsed} bytes used, file {inspection.FileBytes} bytes");
            text.AppendLine($"contents     {inspection.Inodes} inodes, {inspection.Fragments} fragment blocks, {inspection.Ids} uids/gids");
            text.AppendLine($"flags        {(inspection.Flags.Count == 0 ? "none" : string.Join(", ", inspection.Flags))}");
            foreach (var (name, offset) in inspection.Tables)
            {
                text.AppendLine($"table        {name,-16} {(offset is { } o ? "at " + o.ToString(CultureInfo.InvariantCulture) : "absent")}");
            }

            if (inspection.EdgeUpdaterImage)
            {
                text.AppendLine("config.json");
                text.AppendLine(JsonSerializer.Serialize(inspection.Config!.Value, ImageInspectionJsonContext.Default.JsonElement));
            }
            else
            {
                text.AppendLine($"edgeupdater  not an EdgeUpdater image: {inspection.LayoutError}");
            }

            await stdout.WriteAsync(text.ToString()).ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command CreateList()
    {
        var image = ImageArgument();
        var path = new Argument<string>("path") { Description = "Directory or file inside the image (default /).", DefaultValueFactory = _ => "/" };
        var recursive = new Option<bool>("--recursive", "-r") { Description = "List subdirectories too." };
        var command = new Command("ls", "List a directory of an image (any SquashFS image).") { image, path, recursive };
        command.SetAction((parse, cancellationToken) => RunAsync(parse, async () =>
        {
            using var sqfs = SquashFsImage.Open(parse.GetValue(image)!.FullName);
            var entry = sqfs.GetEntry(parse.GetValue(path)!);
            var stdout = parse.InvocationConfiguration.Output;
            IEnumerable<SquashFsEntry> entries;
            if (!entry.IsDirectory)
            {
                entries = [entry];
            }
            else if (parse.GetValue(recursive))
            {
                var prefix = entry.Path == "/" ? "/" : entry.Path + "/";
                entries = sqfs.Walk().Where(e => e.Path.StartsWith(prefix, StringComparison.Ordinal));
            }
            else
            {
                entries = entry.EnumerateChildren();
            }

            foreach (var e in entries)
            {
                cancellationToken.ThrowIfCancellationRequested();
                await stdout.WriteLineAsync(FormatEntry(e, showPath: parse.GetValue(recursive) || !entry.IsDirectory)).ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command CreateCat()
    {
        var image = ImageArgument();
        var path = new Argument<string>("path") { Description = "Regular file inside the image." };
        var command = new Command("cat", "Write a file of an image to standard output.") { image, path };
        command.SetAction((parse, cancellationToken) => RunAsync(parse, async () =>
        {
            using var sqfs = SquashFsImage.Open(parse.GetValue(image)!.FullName);
            var entry = sqfs.GetEntry(parse.GetValue(path)!);
            if (entry.Kind == InodeKind.Symlink)
            {
                throw new SquashFsException(SquashFsErrorCategory.InvalidOperation, $"'{entry.Path}' is a symlink to '{entry.LinkTarget}'; cat the target instead.");
            }

            var input = entry.OpenRead();
            await using (input.ConfigureAwait(false))
            {
                var stdout = parse.InvocationConfiguration.Output;
                if (stdout is StringWriter)
                {
                    // Captured output (tests, embedding): text.
                    using var reader = new StreamReader(input, Encoding.UTF8);
                    await stdout.WriteAsync(await reader.ReadToEndAsync(cancellationToken).ConfigureAwait(false)).ConfigureAwait(false);
                }
                else
                {
                    await stdout.FlushAsync(cancellationToken).ConfigureAwait(false);
                    var raw = Console.OpenStandardOutput();
                    await using (raw.ConfigureAwait(false))
                    {
                        await input.CopyToAsync(raw, cancellationToken).ConfigureAwait(false);
                    }
                }
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command CreateExtract()
    {
        var image = ImageArgument();
        var output = new Option<DirectoryInfo>("--output", "-o") { Description = "Destination directory (created if missing; existing entries are never overwritten).", Required = true };
        var command = new Command("extract", "Extract an image into a directory, refusing entries that would escape it.") { image, output };
        command.SetAction((parse, cancellationToken) => RunAsync(parse, async () =>
        {
            using var sqfs = SquashFsImage.Open(parse.GetValue(image)!.FullName);
            var destination = parse.GetValue(output)!.FullName;
            var result = await SquashFsExtractor.ExtractAsync(sqfs, destination, "/", null, cancellationToken).ConfigureAwait(false);
            var stdout = parse.InvocationConfiguration.Output;
            await stdout.WriteLineAsync($"Extracted {result.Entries} entries ({result.Bytes} bytes of file data) into {destination}").ConfigureAwait(false);
            foreach (var skip in result.Skipped)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync("skipped: " + skip).ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Argument<FileInfo> ImageArgument() => new("image") { Description = "SquashFS image file." };

    /// <summary>Runs a command body and turns failures into a message on stderr and an exit code.</summary>
    private static async Task<int> RunAsync(ParseResult parse, Func<Task<int>> body)
    {
        var stderr = parse.InvocationConfiguration.Error;
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (SquashFsException e) when (e.Category is SquashFsErrorCategory.NotFound or SquashFsErrorCategory.InvalidOperation)
        {
            await stderr.WriteLineAsync("edgeupdater: " + e.Message).ConfigureAwait(false);
            return ExitCodes.Failure;
        }
        catch (SquashFsException e) when (e.Category == SquashFsErrorCategory.InvalidInput)
        {
            await stderr.WriteLineAsync("edgeupdater: " + e.Message).ConfigureAwait(false);
            return ExitCodes.Usage;
        }
        catch (SquashFsException e)
        {
            await stderr.WriteLineAsync($"edgeupdater: invalid-image: {e.Message}").ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }
        catch (ImageException e) when (e.Category == ImageErrorCategory.NotFound)
        {
            await stderr.WriteLineAsync("edgeupdater: " + e.Message).ConfigureAwait(false);
            return ExitCodes.Failure;
        }
        catch (ImageException e)
        {
            await stderr.WriteLineAsync("edgeupdater: " + e.Message).ConfigureAwait(false);
            return ExitCodes.InvalidInput;
        }
        catch (UsageException e)
        {
            await stderr.WriteLineAsync("edgeupdater: " + e.Message).ConfigureAwait(false);
            return ExitCodes.Usage;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            await stderr.WriteLineAsync("edgeupdater: " + e.Message).ConfigureAwait(false);
            return ExitCodes.Failure;
        }
    }

    internal static CompressorOptions ParseCompressor(string name, int? level)
    {
        switch (name)
        {
            case "gzip":
                if (level is < 1 or > 9)
                {
                    throw new UsageException($"--level {level}: gzip levels are 1-9.");
                }

                return CompressorOptions.Default(CompressorId.Gzip) with { Level = level ?? -1 };
            case "zstd":
                if (level is < 1 or > 22)
                {
                    throw new UsageException($"--level {level}: zstd levels are 1-22.");
                }

                return CompressorOptions.Default(CompressorId.Zstd) with { Level = level ?? -1 };
            case "lz4":
                return CompressorOptions.Default(CompressorId.Lz4) with { Lz4HighCompression = level is not null };
            case "xz":
                if (level is not null)
                {
                    // SquashFS does not record an xz preset; a non-default one could not be reproduced by deltas.
                    throw new UsageException("--level: xz images always use preset 6 (SquashFS does not record another preset).");
                }

                return CompressorOptions.Default(CompressorId.Xz);
            default:
                throw new UsageException($"--compressor {name}: use gzip, xz, lz4 or zstd.");
        }
    }

    internal static int ParseBlockSize(string text)
    {
        var value = text.Trim();
        long multiplier = 1;
        if (value.EndsWith('K') || value.EndsWith('k'))
        {
            multiplier = 1024;
            value = value[..^1];
        }
        else if (value.EndsWith('M') || value.EndsWith('m'))
        {
            multiplier = 1024 * 1024;
            value = value[..^1];
        }

        if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number * multiplier is var size && (size < 4096 || size > 1 << 20 || (size & (size - 1)) != 0))
        {
            throw new UsageException($"--block-size {text}: use a power of two from 4096 to 1048576 (e.g. 131072, 128K, 1M).");
        }

        return (int)(number * multiplier);
    }

    private static ImageInspection Inspect(string path, SquashFsImage sqfs)
    {
        var sb = sqfs.Superblock;
        string library;
        using (var codec = sqfs.CreateCodec())
        {
            library = codec.Identity;
        }

        var flags = Enum.GetValues<SuperblockFlags>().Where(f => f != SuperblockFlags.None && sb.Flags.HasFlag(f)).Select(f => f.ToString()).ToList();
        JsonElement? config = null;
        string? layoutError = null;
        try
        {
            using var edge = EdgeUpdaterImage.FromImage(sqfs);
            using var document = JsonDocument.Parse(edge.ConfigBytes);
            config = document.RootElement.Clone();
        }
        catch (ImageException e)
        {
            layoutError = e.Message;
        }

        long? Table(ulong start) => start == Superblock.NoTable ? null : (long)start;
        return new ImageInspection
        {
            Path = path,
            FileBytes = sqfs.Source.Length,
            BytesUsed = sb.BytesUsed,
            Version = $"{sb.VersionMajor}.{sb.VersionMinor}",
            BlockSize = sb.BlockSize,
            Created = DateTimeOffset.FromUnixTimeSeconds(sb.ModificationTime),
            Inodes = sb.InodeCount,
            Fragments = sb.FragmentEntryCount,
            Ids = sb.IdCount,
            Flags = flags,
            Compressor = new ImageInspectionCompressor { Name = sb.Compressor.ToString().ToLowerInvariant(), Options = sqfs.CompressorOptions.Describe(), Library = library },
            Tables = new Dictionary<string, long?>
            {
                ["inodes"] = Table(sb.InodeTableStart),
                ["directories"] = Table(sb.DirectoryTableStart),
                ["fragments"] = sb.FragmentEntryCount == 0 ? null : Table(sb.FragmentTableStart),
                ["export"] = sb.HasExportTable ? Table(sb.ExportTableStart) : null,
                ["ids"] = Table(sb.IdTableStart),
                ["xattrs"] = Table(sb.XattrIdTableStart),
            },
            EdgeUpdaterImage = layoutError is null,
            LayoutError = layoutError,
            Config = config,
        };
    }

    private static string FormatEntry(SquashFsEntry e, bool showPath)
    {
        var type = e.Kind switch
        {
            InodeKind.Directory => 'd',
            InodeKind.Symlink => 'l',
            InodeKind.BlockDevice => 'b',
            InodeKind.CharDevice => 'c',
            InodeKind.Fifo => 'p',
            InodeKind.Socket => 's',
            _ => '-',
        };
        var p = e.Permissions;
        var mode = new StringBuilder().Append(type);
        mode.Append((p & 0x100) != 0 ? 'r' : '-').Append((p & 0x80) != 0 ? 'w' : '-').Append(Exec(p, 0x40, 0x800, 's'));
        mode.Append((p & 0x20) != 0 ? 'r' : '-').Append((p & 0x10) != 0 ? 'w' : '-').Append(Exec(p, 0x8, 0x400, 's'));
        mode.Append((p & 0x4) != 0 ? 'r' : '-').Append((p & 0x2) != 0 ? 'w' : '-').Append(Exec(p, 0x1, 0x200, 't'));
        var size = e.Kind is InodeKind.BlockDevice or InodeKind.CharDevice ? $"{e.DeviceMajor},{e.DeviceMinor}" : e.Size.ToString(CultureInfo.InvariantCulture);
        var name = showPath ? e.Path : e.Name;
        var link = e.Kind == InodeKind.Symlink ? " -> " + e.LinkTarget : string.Empty;
        return $"{mode} {e.Uid,5}/{e.Gid,-5} {size,12} {e.ModifiedTime:yyyy-MM-dd HH:mm} {name}{link}";
    }

    private static char Exec(int permissions, int exec, int special, char letter) =>
        (permissions & special) != 0 ? ((permissions & exec) != 0 ? letter : char.ToUpperInvariant(letter)) : (permissions & exec) != 0 ? 'x' : '-';

    /// <summary>A command-line value the parser accepted but the command cannot use.</summary>
    internal sealed class UsageException : Exception
    {
        public UsageException(string message)
            : base(message)
        {
        }
    }
}
