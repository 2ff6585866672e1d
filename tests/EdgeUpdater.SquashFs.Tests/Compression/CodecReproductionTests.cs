using EdgeUpdater.SquashFs.Compression;
using EdgeUpdater.SquashFs.Format;
using EdgeUpdater.SquashFs.Reader;
using Xunit;

namespace EdgeUpdater.SquashFs.Tests.Compression;

/// <summary>
/// Recompressing every block of a mksquashfs image from its uncompressed bytes reproduces the stored
/// bytes exactly: the property the delta engine rests on.
/// </summary>
[Collection(MksquashfsImagesGroup.Name)]
public sealed class CodecReproductionTests
{
    private readonly MksquashfsImages _images;
    private readonly ITestOutputHelper _output;

    public CodecReproductionTests(MksquashfsImages images, ITestOutputHelper output)
    {
        _images = images;
        _output = output;
    }

    public static TheoryData<string> CompressingVariants()
    {
        var data = new TheoryData<string>();
        foreach (var v in MksquashfsImages.Variants.Where(v => v.Compressor != "lzo"))
        {
            data.Add(v.Name);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(CompressingVariants))]
    public async Task Every_block_recompresses_to_the_stored_bytes(string variantName)
    {
        var variant = MksquashfsImages.Variants.Single(v => v.Name == variantName);
        using var image = SquashFsImage.Open(await _images.GetImageAsync(variant));
        using var data = image.CreateCodec(CodecRole.Data);
        using var metadata = image.CreateCodec(CodecRole.Metadata);
        var blockSize = image.BlockSize;
        var raw = new byte[blockSize];
        var plain = new byte[blockSize];
        var again = new byte[blockSize];
        int total = 0, same = 0;
        var failures = new List<string>();
        var dataUncompressedByFlag = (image.Superblock.Flags & SuperblockFlags.UncompressedData) != 0;
        foreach (var block in image.EnumerateStoredBlocks())
        {
            var byFlag = block.Kind == StoredBlockKind.Data ? dataUncompressedByFlag : (image.Superblock.Flags & SuperblockFlags.UncompressedFragments) != 0;
            if (byFlag)
            {
                continue;
            }

            total++;
            image.ReadStoredBytes(block.Offset, raw.AsSpan(0, (int)block.StoredSize));
            int length;
            if (block.IsCompressed)
            {
                length = data.Decompress(raw.AsSpan(0, (int)block.StoredSize), plain);
            }
            else
            {
                raw.AsSpan(0, (int)block.StoredSize).CopyTo(plain);
                length = (int)block.StoredSize;
            }

            var compressed = data.TryCompress(plain.AsSpan(0, length), again, out var written);
            var ok = block.IsCompressed
                ? compressed && again.AsSpan(0, written).SequenceEqual(raw.AsSpan(0, (int)block.StoredSize))
                : !compressed;
            if (ok)
            {
                same++;
            }
            else
            {
                failures.Add($"{block.Kind} block at {block.Offset}: stored {block.StoredSize} compressed={block.IsCompressed}, recompressed {written} compressed={compressed}");
            }
        }

        int metaTotal = 0, metaSame = 0;
        var metaBuffer = new byte[SquashFsCodec.MetadataBlockSize];
        foreach (var table in image.ReadAllMetadataTables())
        {
            if (table.Kind == Metadata.MetadataTableKind.CompressorOptions)
            {
                continue;
            }

            var uncompressedByFlag = table.Kind switch
            {
                Metadata.MetadataTableKind.Inodes => (image.Superblock.Flags & SuperblockFlags.UncompressedInodes) != 0,
                Metadata.MetadataTableKind.XattrIds or Metadata.MetadataTableKind.XattrKeyValues => (image.Superblock.Flags & SuperblockFlags.UncompressedXattrs) != 0,
                Metadata.MetadataTableKind.Ids => (image.Superblock.Flags & SuperblockFlags.UncompressedIds) != 0,
                Metadata.MetadataTableKind.Fragments => (image.Superblock.Flags & SuperblockFlags.UncompressedFragments) != 0,
                _ => (image.Superblock.Flags & SuperblockFlags.UncompressedInodes) != 0,
            };
            if (uncompressedByFlag)
            {
                continue;
            }

            if (table.Blocks.Count > 0)
            {
                // The whole table re-encodes byte-identically with MetadataWriter (same 8 KiB cuts).
                var writer = new Metadata.MetadataWriter(metadata);
                writer.Write(table.Data);
                var rebuilt = writer.Finish();
                var stored = new byte[table.Blocks[^1].End - table.Blocks[0].Offset];
                image.ReadStoredBytes(table.Blocks[0].Offset, stored);
                if (!rebuilt.AsSpan().SequenceEqual(stored))
                {
                    failures.Add($"{table.Kind}: re-encoding the table with MetadataWriter gives {rebuilt.Length} bytes, stored {stored.Length}, content differs");
                }
            }

            long position = 0;
            foreach (var block in table.Blocks)
            {
                metaTotal++;
                var stored = new byte[block.StoredSize];
                image.ReadStoredBytes(block.Offset + 2, stored);
                var compressed = metadata.TryCompress(table.Data.AsSpan((int)position, block.UncompressedSize), metaBuffer, out var written);
                var ok = block.IsCompressed ? compressed && metaBuffer.AsSpan(0, written).SequenceEqual(stored) : !compressed;
                if (ok)
                {
                    metaSame++;
                }
                else
                {
                    failures.Add($"{table.Kind} metadata block at {block.Offset}: stored {block.StoredSize} compressed={block.IsCompressed}, recompressed {written} compressed={compressed}");
                }

                position += block.UncompressedSize;
            }
        }

        _output.WriteLine($"{variant.Name} ({data.Identity}): data+fragment blocks {same}/{total}, metadata blocks {metaSame}/{metaTotal} reproduced");
        Assert.True(failures.Count == 0, $"{variant.Name}: {failures.Count} blocks differ:\n{string.Join('\n', failures.Take(20))}");
        Assert.True(total > 3 || variant.Arguments.Contains("-noD"), $"only {total} blocks checked");
    }

    [Fact]
    public void Identity_names_compressor_and_native_version()
    {
        foreach (var id in new[] { CompressorId.Gzip, CompressorId.Xz, CompressorId.Lz4, CompressorId.Zstd })
        {
            using var codec = SquashFsCodec.Create(CompressorOptions.Default(id), 131072);
            Assert.Matches(@"^(zlib|xz|lz4|zstd)/\d+\.\d+\.\d+", codec.Identity);
        }
    }
}
