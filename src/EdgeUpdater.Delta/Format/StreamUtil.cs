namespace EdgeUpdater.Delta.Format;

/// <summary>Stream helpers that turn an early end into <see cref="DeltaErrorCategory.Truncated"/>.</summary>
internal static class StreamUtil
{
    public static async Task ReadExactAsync(Stream stream, Memory<byte> buffer, long offset, string what, CancellationToken cancellationToken)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var read = await stream.ReadAsync(buffer[total..], cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                throw DeltaException.Truncated($"The delta ended inside the {what} at delta offset {offset + total}: {buffer.Length - total} more bytes expected.");
            }

            total += read;
        }
    }

    public static async Task SkipAsync(Stream stream, long count, CancellationToken cancellationToken)
    {
        if (stream.CanSeek)
        {
            if (stream.Length - stream.Position < count)
            {
                throw DeltaException.Truncated($"The delta is shorter than the resume point ({stream.Position + count} bytes).");
            }

            stream.Seek(count, SeekOrigin.Current);
            return;
        }

        var buffer = new byte[Math.Min(count, 1 << 20)];
        while (count > 0)
        {
            var read = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(count, buffer.Length)), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                throw DeltaException.Truncated("The delta ended before the resume point.");
            }

            count -= read;
        }
    }
}
