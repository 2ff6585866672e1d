namespace EdgeUpdater.Delta.Format;

/// <summary>Growth of the reusable buffers a delta is read and applied through.</summary>
internal static class ScratchBuffer
{
    /// <summary>
    /// Makes <paramref name="buffer"/> hold at least <paramref name="length"/> bytes (its bytes are not kept),
    /// growing it at least twofold up to <paramref name="limit"/> so that a few allocations serve a whole
    /// apply. The old array is let go before the new one is allocated, so that a collection the allocation
    /// sets off can take it back: holding both once pushed a large apply's peak over 64 MiB.
    /// </summary>
    public static void Ensure(ref byte[] buffer, long length, long limit)
    {
        if (buffer.Length < length)
        {
            var grown = Math.Max(length, Math.Min(limit, buffer.Length * 2L));
            buffer = [];
            buffer = new byte[grown];
        }
    }
}
