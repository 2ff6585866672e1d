using System.Diagnostics;
using System.Globalization;
using EdgeUpdater.SquashFs;
using EdgeUpdater.SquashFs.Compression;
using EdgeUpdater.SquashFs.Format;
using EdgeUpdater.SquashFs.Reader;
using EdgeUpdater.SquashFs.Writer;

// squashfs-bench read <image> [threads]            read every file (on N threads, default 1), discard the bytes
// squashfs-bench extract <image> <dir>             extract like unsquashfs -d
// squashfs-bench write <dir> <image> <comp> <level> <block> <threads>
// squashfs-bench repro <image>                     share of blocks that recompress byte-identically
var clock = Stopwatch.StartNew();
var cpu = Process.GetCurrentProcess().TotalProcessorTime;
// Prints "wall cpu" seconds of the work itself (after runtime start-up), then a readable line on stderr.
string Report(string what, long bytes)
{
    var wall = clock.Elapsed.TotalSeconds;
    var used = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
    Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{what}: {bytes} bytes in {wall:F2} s wall, {used:F2} s cpu, {bytes / 1048576.0 / wall:F1} MiB/s"));
    return string.Create(CultureInfo.InvariantCulture, $"{wall:F2} {used:F2}");
}

switch (args[0])
{
    case "read":
    {
        using var image = SquashFsImage.Open(args[1]);
        var threads = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 1;
        long bytes = 0;
        // The image is thread-safe for reading: N readers each take whole files, as a consumer would.
        Parallel.ForEach(
            image.Walk().Where(entry => entry.IsFile),
            new ParallelOptions { MaxDegreeOfParallelism = threads },
            () => (Buffer: new byte[1 << 20], Bytes: 0L),
            (entry, _, local) =>
            {
                using var stream = entry.OpenRead();
                int n;
                while ((n = stream.Read(local.Buffer)) > 0)
                {
                    local.Bytes += n;
                }

                return local;
            },
            local => Interlocked.Add(ref bytes, local.Bytes));

        Console.WriteLine(Report($"read threads={threads}", bytes));
        break;
    }

    case "extract":
    {
        using var image = SquashFsImage.Open(args[1]);
        var result = await SquashFsExtractor.ExtractAsync(image, args[2], "/", new SquashFsExtractOptions { PreserveXattrs = true });
        Console.WriteLine(Report("extract", result.Bytes));
        break;
    }

    case "write":
    {
        var compressor = args[3] switch
        {
            "xz" => CompressorId.Xz,
            "lz4" => CompressorId.Lz4,
            "zstd" => CompressorId.Zstd,
            _ => CompressorId.Gzip,
        };
        var level = int.Parse(args[4], CultureInfo.InvariantCulture);
        var options = new SquashFsWriterOptions
        {
            Compressor = CompressorOptions.Default(compressor) with { Level = level },
            BlockSize = int.Parse(args[5], CultureInfo.InvariantCulture),
            Parallelism = int.Parse(args[6], CultureInfo.InvariantCulture),
        };
        var result = await SquashFsWriter.WriteAsync(args[1], args[2], options);
        Console.WriteLine(Report($"write threads={options.Parallelism}", result.BytesUsed));
        break;
    }

    case "repro":
    {
        using var image = SquashFsImage.Open(args[1]);
        using var codec = image.CreateCodec(CodecRole.Data);
        using var meta = image.CreateCodec(CodecRole.Metadata);
        var raw = new byte[image.BlockSize];
        var plain = new byte[image.BlockSize];
        var again = new byte[image.BlockSize];
        int total = 0, same = 0;
        foreach (var block in image.EnumerateStoredBlocks())
        {
            total++;
            image.ReadStoredBytes(block.Offset, raw.AsSpan(0, (int)block.StoredSize));
            var length = block.IsCompressed ? codec.Decompress(raw.AsSpan(0, (int)block.StoredSize), plain) : (int)block.StoredSize;
            if (!block.IsCompressed)
            {
                raw.AsSpan(0, length).CopyTo(plain);
            }

            var compressed = codec.TryCompress(plain.AsSpan(0, length), again, out var written);
            if (block.IsCompressed ? compressed && again.AsSpan(0, written).SequenceEqual(raw.AsSpan(0, (int)block.StoredSize)) : !compressed)
            {
                same++;
            }
        }

        int metaTotal = 0, metaSame = 0;
        var buffer = new byte[8192];
        foreach (var table in image.ReadAllMetadataTables().Where(t => t.Kind != EdgeUpdater.SquashFs.Metadata.MetadataTableKind.CompressorOptions))
        {
            var position = 0;
            foreach (var block in table.Blocks)
            {
                metaTotal++;
                var stored = new byte[block.StoredSize];
                image.ReadStoredBytes(block.Offset + 2, stored);
                var compressed = meta.TryCompress(table.Data.AsSpan(position, block.UncompressedSize), buffer, out var written);
                if (block.IsCompressed ? compressed && buffer.AsSpan(0, written).SequenceEqual(stored) : !compressed)
                {
                    metaSame++;
                }

                position += block.UncompressedSize;
            }
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"repro {codec.Identity} {image.CompressorOptions.Describe()}: data+fragment blocks {same}/{total}, metadata blocks {metaSame}/{metaTotal} reproduced"));
        break;
    }

    default:
        Console.Error.WriteLine("usage: squashfs-bench read|extract|write|repro ...");
        return 2;
}

return 0;
