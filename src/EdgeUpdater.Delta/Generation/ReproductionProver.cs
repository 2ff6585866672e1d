using EdgeUpdater.Delta.Generation;
using EdgeUpdater.Delta.Metadata;
using EdgeUpdater.SquashFs;
using EdgeUpdater.SquashFs.IO;
using EdgeUpdater.SquashFs.Reader;

namespace EdgeUpdater.Delta;

/// <summary>
/// Fills an image's <see cref="ReproductionRecord"/> ahead of any delta: tries every compressed block (data,
/// fragment, metadata) it has no outcome for. A server does it when a release is published, so that even
/// the first <see cref="DeltaLevel.Best"/> delta to the image skips the proofs. It costs one recompression
/// of the whole image, once; a generation only proves the blocks that changed from its base.
/// </summary>
public static class ReproductionProver
{
    /// <summary>
    /// Proves the blocks of the SquashFS image at <paramref name="imagePath"/> on up to
    /// <paramref name="maxParallelism"/> threads; returns how many outcomes it added (0 for an image whose
    /// codec cannot compress, e.g. lzo, or that is not SquashFS: there is nothing to prove; a block that does
    /// not decompress is left out).
    /// </summary>
    /// <param name="imagePath">The image deltas will be made to.</param>
    /// <param name="record">Its record: bound to the image and this machine's codec, then extended.</param>
    /// <param name="maxParallelism">Worker threads.</param>
    /// <param name="imageSha256">The image's SHA-256 when the caller knows it (saves hashing the image).</param>
    /// <param name="cancellationToken">Stops between blocks; outcomes recorded until then stay valid.</param>
    public static async Task<int> ProveAsync(string imagePath, ReproductionRecord record, int maxParallelism, IReadOnlyList<byte>? imageSha256 = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(record);
        using IImageSource source = (IImageSource?)MappedImageSource.TryOpen(imagePath) ?? new FileImageSource(imagePath);
        return await Task.Run(() => Prove(source, record, Math.Max(1, maxParallelism), imageSha256, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    private static int Prove(IImageSource source, ReproductionRecord record, int parallelism, IReadOnlyList<byte>? imageSha256, CancellationToken cancellationToken)
    {
        SquashFsImage image;
        try
        {
            image = SquashFsImage.Open(source, leaveOpen: true);
        }
        catch (SquashFsException)
        {
            return 0;
        }

        using (image)
        {
            if (DeltaGenerator.RecompressionIdentity(image) is not { } identity)
            {
                return 0;
            }

            var sha = imageSha256 is { } known ? known.ToArray() : DeltaGenerator.Sha256Of(source, cancellationToken);
            record.Bind(identity, sha);
            var before = record.Count;
            MetadataProof.Run(image, parallelism, record, withCodec: true, recordDecisions: false, cancellationToken);
            var blocks = image.EnumerateStoredBlocks().Where(b => b.IsCompressed && !record.TryGet(b.Offset, out _)).ToList();
            ParallelWork.Run(() =>
                Parallel.ForEach(
                    blocks,
                    new ParallelOptions { CancellationToken = cancellationToken, MaxDegreeOfParallelism = parallelism },
                    () => (Check: new RecompressionCheck(source, image), Content: new byte[image.BlockSize]),
                    (block, _, local) =>
                    {
                        int length;
                        try
                        {
                            length = image.ReadBlockData(block.Offset, block.StoredSize, true, local.Content, "block");
                        }
                        catch (SquashFsException)
                        {
                            // A block that does not decompress is no delta's to rebuild: left unrecorded.
                            return local;
                        }

                        record.Set(block.Offset, local.Check.Reproduces(block, local.Content.AsSpan(0, length)));
                        return local;
                    },
                    local => local.Check.Dispose()));

            return record.Count - before;
        }
    }
}
