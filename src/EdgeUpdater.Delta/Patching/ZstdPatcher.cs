using System.Runtime.InteropServices;
using EdgeUpdater.Delta.Interop;

namespace EdgeUpdater.Delta.Patching;

/// <summary>
/// Binary patches through libzstd with a reference prefix (what <c>zstd --patch-from</c> does): the
/// target is compressed as one frame that may copy from the reference, and decompressed with the same
/// reference. Also plain frames (empty reference). Not thread-safe: one per thread.
/// </summary>
internal sealed unsafe class ZstdPatcher : IDisposable
{
    /// <summary>Largest window a frame may need: reference plus target (2^25, 32 MiB).</summary>
    public const int MaxWindowLog = 25;

    /// <summary>Levels whose strategies (fast, double-fast) do not grow their tables with the window.</summary>
    private const int FastStrategyLevels = 3;

    /// <summary>The largest table those levels use on their own (2^17 entries, level 3).</summary>
    private const int FastStrategyTableLog = 17;

    /// <summary>One table entry per 2^4 bytes of window.</summary>
    private const int TableEntriesPerWindowLog = 4;

    /// <summary>
    /// At most 2^19 entries (2 MiB per table): on a Debian upgrade's 3-4 MiB frames over 2-3.4 MiB
    /// references, 2^19 made the frames 0.6 % smaller than zstd's 2^17 (fast generation: 4 to 7 % more
    /// CPU); 2^20 saved only 0.06 % more, for a third more encoding time of the frames.
    /// </summary>
    private const int MaxFastTableLog = 19;

    /// <summary>
    /// Shortest match the long-distance matcher takes in a fast patch frame (zstd's own: 64). What a changed
    /// compressed block shares with its old version is mostly runs shorter than that, anywhere in the
    /// reference, where the level's own tables have lost them. On a Debian upgrade's fast delta: gzip
    /// 16 KB and zstd 7 KB smaller with 6 (8: 11 and 9 KB; 4: 18 and 6 KB), for 2 to 3 % more CPU.
    /// </summary>
    private const int FastPatchLdmMinMatch = 6;

    // Pack: zstd level 3's tables, 2^16 window, search log 2, target length 8; the optimal parser is btultra
    // with 3-byte matches (a sweep on the Debian pair's gzip blocks; level 19 saves 4 % more for twice the
    // time), the lazy one btlazy2, whose matches start at 4 bytes.
    private const int PackBase = 3;
    private const int PackWindowLog = 16;
    private const int PackOptimalStrategy = 8;
    private const int PackLazyStrategy = 6;
    private const int PackSearchLog = 2;
    private const int PackTargetLength = 8;

    private nint _cctx;
    private nint _dctx;
    private byte[] _output = [];

    /// <summary>libzstd's version, e.g. <c>1.5.4</c>.</summary>
    public static string Version => Marshal.PtrToStringUTF8((nint)Zstd.VersionString()) ?? "unknown";

    /// <summary>Window log a frame over <paramref name="referenceLength"/> + <paramref name="targetLength"/> bytes needs.</summary>
    public static int WindowLogFor(long referenceLength, long targetLength)
    {
        var total = Math.Max(1024, referenceLength + targetLength);
        var log = 64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)(total - 1));
        return Math.Clamp(log, 10, 31);
    }

    /// <summary>
    /// Compresses the stored bytes of blocks another codec already compressed well (to a third of their
    /// content or less): what is left in them are short repeats at short distances, over a 64 KiB window.
    /// </summary>
    /// <param name="content">The stored bytes.</param>
    /// <param name="optimal">
    /// zstd's optimal parser (btultra) with 3-byte matches: deflate's output is full of them (the Debian pair's
    /// gzip blocks of at most 0.35: 4.5 % smaller, 87 % of what LZMA2 preset 0 saves, in a third of its time).
    /// Otherwise btlazy2: on zstd's and LZ4's blocks the optimal parser found only 2 KB more, for five to seven times
    /// the time (about 40 ms of the fast generation's wall on the Debian pair).
    /// </param>
    /// <returns>The frame, in this patcher's own buffer: valid until the next call.</returns>
    public ReadOnlyMemory<byte> Pack(ReadOnlySpan<byte> content, bool optimal)
    {
        Start(0, content.Length, PackBase);
        Check(Zstd.CCtxSetParameter(_cctx, Zstd.WindowLog, PackWindowLog), "windowLog");
        Check(Zstd.CCtxSetParameter(_cctx, Zstd.Strategy, optimal ? PackOptimalStrategy : PackLazyStrategy), "strategy");
        Check(Zstd.CCtxSetParameter(_cctx, Zstd.MinMatch, optimal ? 3 : 4), "minMatch");
        Check(Zstd.CCtxSetParameter(_cctx, Zstd.SearchLog, PackSearchLog), "searchLog");
        Check(Zstd.CCtxSetParameter(_cctx, Zstd.TargetLength, PackTargetLength), "targetLength");
        return Finish([], content);
    }

    /// <summary>
    /// Compresses <paramref name="target"/> against <paramref name="reference"/> into this patcher's own
    /// buffer: the frame is valid until the next call. Callers copy it where it goes (a generator's MB-sized
    /// frames would each take fresh pages if they were returned as new arrays).
    /// </summary>
    public ReadOnlyMemory<byte> Compress(ReadOnlySpan<byte> reference, ReadOnlySpan<byte> target, int level, bool longDistance = true)
    {
        var windowLog = Start(reference.Length, target.Length, level);
        Check(Zstd.CCtxSetParameter(_cctx, Zstd.WindowLog, Math.Max(windowLog, 17)), "windowLog");
        if (level <= FastStrategyLevels && windowLog - TableEntriesPerWindowLog > FastStrategyTableLog)
        {
            // Levels 1 to 3 keep 2^17 hash entries however large the window: over a reference of
            // several MiB most of it falls out of the table before the target reaches it.
            var tableLog = Math.Min(windowLog - TableEntriesPerWindowLog, MaxFastTableLog);
            Check(Zstd.CCtxSetParameter(_cctx, Zstd.HashLog, tableLog), "hashLog");
            Check(Zstd.CCtxSetParameter(_cctx, Zstd.ChainLog, tableLog), "chainLog");
        }

        if (longDistance && reference.Length + target.Length > (1 << 20))
        {
            Check(Zstd.CCtxSetParameter(_cctx, Zstd.EnableLongDistanceMatching, 1), "long");
            if (level <= FastStrategyLevels && !reference.IsEmpty)
            {
                Check(Zstd.CCtxSetParameter(_cctx, Zstd.LdmMinMatch, FastPatchLdmMinMatch), "ldmMinMatch");
            }
        }

        return Finish(reference, target);
    }

    /// <summary>Resets the context to <paramref name="level"/> without checksum or dictionary id; returns the window log the frame needs.</summary>
    private int Start(long referenceLength, long targetLength, int level)
    {
        if (_cctx == 0)
        {
            _cctx = Zstd.CreateCCtx();
            if (_cctx == 0)
            {
                throw new DeltaException(DeltaErrorCategory.Unsupported, "libzstd could not create a compression context.");
            }
        }

        var windowLog = WindowLogFor(referenceLength, targetLength);
        if (windowLog > MaxWindowLog)
        {
            throw DeltaException.Overflow($"A patch frame over {referenceLength} reference and {targetLength} target bytes needs window 2^{windowLog}; at most 2^{MaxWindowLog} is allowed.");
        }

        Check(Zstd.CCtxReset(_cctx, Zstd.ResetSessionAndParameters), "reset");
        Check(Zstd.CCtxSetParameter(_cctx, Zstd.CompressionLevel, level), "level");
        Check(Zstd.CCtxSetParameter(_cctx, Zstd.ChecksumFlag, 0), "checksum");
        Check(Zstd.CCtxSetParameter(_cctx, Zstd.DictIdFlag, 0), "dictID");
        return windowLog;
    }

    /// <summary>Compresses <paramref name="target"/> as one frame with the context's parameters, into <see cref="_output"/>.</summary>
    private ReadOnlyMemory<byte> Finish(ReadOnlySpan<byte> reference, ReadOnlySpan<byte> target)
    {
        var capacity = (int)Zstd.CompressBound((nuint)target.Length);
        if (_output.Length < capacity)
        {
            _output = new byte[capacity];
        }

        fixed (byte* r = reference)
        fixed (byte* t = target)
        fixed (byte* o = _output)
        {
            if (!reference.IsEmpty)
            {
                Check(Zstd.CCtxRefPrefix(_cctx, r, (nuint)reference.Length), "refPrefix");
            }

            var written = Zstd.Compress2(_cctx, o, (nuint)capacity, t, (nuint)target.Length);
            Check(written, "compress");
            return _output.AsMemory(0, (int)written);
        }
    }

    /// <summary>
    /// Decompresses <paramref name="frame"/> against <paramref name="reference"/> into exactly
    /// <paramref name="destination"/>. Refuses frames that claim another size or a window past
    /// <see cref="MaxWindowLog"/>.
    /// </summary>
    public void Decode(ReadOnlySpan<byte> reference, ReadOnlySpan<byte> frame, Span<byte> destination, string where)
    {
        if (_dctx == 0)
        {
            _dctx = Zstd.CreateDCtx();
            if (_dctx == 0)
            {
                throw new DeltaException(DeltaErrorCategory.Unsupported, "libzstd could not create a decompression context.");
            }
        }

        fixed (byte* r = reference)
        fixed (byte* f = frame)
        fixed (byte* d = destination)
        {
            var claimed = Zstd.GetFrameContentSize(f, (nuint)frame.Length);
            if (claimed != (ulong)destination.Length)
            {
                throw DeltaException.Corrupted($"{where}: the patch frame decodes to {(claimed >= Zstd.ContentSizeError ? "an unknown size" : claimed.ToString(System.Globalization.CultureInfo.InvariantCulture))} bytes; {destination.Length} expected.");
            }

            _ = Zstd.DCtxReset(_dctx, Zstd.ResetSessionAndParameters);
            Check(Zstd.DCtxSetParameter(_dctx, Zstd.DecompressWindowLogMax, MaxWindowLog), "windowLogMax");
            if (!reference.IsEmpty)
            {
                Check(Zstd.DCtxRefPrefix(_dctx, r, (nuint)reference.Length), "refPrefix");
            }

            var written = Zstd.DecompressDCtx(_dctx, d, (nuint)destination.Length, f, (nuint)frame.Length);
            if (Zstd.IsError(written) != 0)
            {
                throw DeltaException.Corrupted($"{where}: the patch frame does not decode: {Marshal.PtrToStringUTF8((nint)Zstd.GetErrorName(written))}.");
            }

            if ((int)written != destination.Length)
            {
                throw DeltaException.Corrupted($"{where}: the patch frame decoded to {written} bytes; {destination.Length} expected.");
            }
        }
    }

    public void Dispose()
    {
        if (_cctx != 0)
        {
            _ = Zstd.FreeCCtx(_cctx);
            _cctx = 0;
        }

        if (_dctx != 0)
        {
            _ = Zstd.FreeDCtx(_dctx);
            _dctx = 0;
        }
    }

    private static void Check(nuint rc, string what)
    {
        if (Zstd.IsError(rc) != 0)
        {
            throw new DeltaException(DeltaErrorCategory.Unsupported, $"libzstd {what} failed: {Marshal.PtrToStringUTF8((nint)Zstd.GetErrorName(rc))}.");
        }
    }
}
