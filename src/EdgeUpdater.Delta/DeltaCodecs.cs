using EdgeUpdater.SquashFs;
using EdgeUpdater.SquashFs.Compression;
using EdgeUpdater.SquashFs.Format;

namespace EdgeUpdater.Delta;

/// <summary>The codec identities this process can recompress with, for the delta request's <c>codecs</c> query.</summary>
public static class DeltaCodecs
{
    /// <summary>
    /// Identities such as <c>zlib/1.2.13</c>, <c>xz/5.4.1</c>, <c>zstd/1.5.4</c>, <c>lz4/1.9.4</c>, for every
    /// compressor whose native library is installed and can compress.
    /// </summary>
    public static IReadOnlyList<string> LocalIdentities()
    {
        var result = new List<string>();
        foreach (var id in new[] { CompressorId.Gzip, CompressorId.Xz, CompressorId.Zstd, CompressorId.Lz4 })
        {
            try
            {
                using var codec = SquashFsCodec.Create(CompressorOptions.Default(id), 131072);
                result.Add(codec.Identity);
            }
            catch (SquashFsException)
            {
                // Not installed: the server then sends literals for that compressor's blocks.
            }
        }

        return result;
    }

    /// <summary>The identities as one comma-separated query value.</summary>
    public static string LocalIdentitiesQuery() => string.Join(',', LocalIdentities());

    /// <summary>Parses a comma-separated <c>codecs</c> query value.</summary>
    public static IReadOnlyCollection<string> Parse(string? query) =>
        string.IsNullOrWhiteSpace(query) ? [] : query.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
