namespace EdgeUpdater.Agent.Install;

/// <summary>Local installs (USB stick): tells images from deltas and copies an image into a slot.</summary>
internal static class LocalPayload
{
    /// <summary>True when the file starts with the SquashFS magic <c>hsqs</c>.</summary>
    public static bool IsImage(string path)
    {
        using var stream = File.OpenRead(path);
        Span<byte> magic = stackalloc byte[4];
        return stream.ReadAtLeast(magic, 4, throwOnEndOfStream: false) == 4 && magic.SequenceEqual("hsqs"u8);
    }

    /// <summary>Copies <paramref name="source"/> to the start of <paramref name="destination"/> and fsyncs it.</summary>
    public static async Task CopyAsync(string source, string destination, bool truncate, CancellationToken cancellationToken)
    {
        var input = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        await using (input.ConfigureAwait(false))
        {
            var output = new FileStream(destination, FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read, 1);
            await using (output.ConfigureAwait(false))
            {
                await input.CopyToAsync(output, 1024 * 1024, cancellationToken).ConfigureAwait(false);
                if (truncate)
                {
                    output.SetLength(input.Length);
                }

                output.Flush(flushToDisk: true);
            }
        }
    }
}
