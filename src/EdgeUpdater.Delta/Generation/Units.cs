using EdgeUpdater.SquashFs.Reader;

namespace EdgeUpdater.Delta.Generation;

/// <summary>One piece of the new image in the generator's plan, in image order.</summary>
internal abstract record Unit(long Length);

/// <summary>Bytes copied from the base image.</summary>
internal sealed record CopyUnit(long BaseOffset, long Length) : Unit(Length);

/// <summary>New-image bytes [Offset, Offset + Length) sent literally.</summary>
internal sealed record LiteralUnit(long Offset, long Length) : Unit(Length);

/// <summary>A run of zero bytes.</summary>
internal sealed record ZerosUnit(long Length) : Unit(Length);

/// <summary>Bytes given as XOR against the base image at <paramref name="BaseOffset"/>.</summary>
internal sealed record XorUnit(long BaseOffset, byte[] Xor) : Unit(Xor.Length);

/// <summary>
/// A changed stored block, rebuilt from content when worthwhile: its decompressed content patched against
/// <paramref name="Reference"/> (recompressed on the device), or with <paramref name="Raw"/> its stored
/// bytes themselves patched against old stored bytes (no recompression; what the fast level mostly does), or with
/// <paramref name="Fresh"/> (a block of new files only, nothing to patch against) its decompressed content
/// in an LZMA2 frame, with a BCJ filter for machine code of ELF <paramref name="Machine"/> (0: not ELF).
/// </summary>
internal sealed record BlockUnit(StoredBlock Block, IReadOnlyList<ReferenceItem> Reference, bool Raw = false, bool Fresh = false, ushort Machine = 0) : Unit(Block.StoredSize);

/// <summary>
/// The new image's metadata region [<paramref name="Offset"/>, + Length), rebuilt by a metadata section that
/// is still being encoded while the data area's groups are (it waits for the proof that B's metadata blocks
/// recompress, the slowest part of planning).
/// </summary>
internal sealed record MetadataUnit(Task<MetadataEncoding> Encoding, long Offset, long Length) : Unit(Length);

/// <summary>
/// A metadata section's payload, null when the region's layout is not one the format describes (it then
/// goes literally); how many of its blocks the device recompresses or gets literally; thread time spent.
/// </summary>
internal sealed record MetadataEncoding(byte[]? Payload, int BlocksRecompressed, int BlocksLiteral, int TablesDerived, int ProofsRecalled, double Milliseconds, int BlocksReplayed = 0);

/// <summary>
/// Raw new-image bytes rebuilt from a content range (generic mode): <paramref name="Offset"/> in the new
/// image, with the base-image window the patch may copy from.
/// </summary>
internal sealed record ChunkUnit(long Offset, long Length, long ReferenceOffset, int ReferenceLength) : Unit(Length);

/// <summary>A piece of the reference a content frame is patched against.</summary>
/// <param name="Offset">Base image offset of the stored block (or of the raw bytes).</param>
/// <param name="StoredSize">Stored size of the block (raw items: 0).</param>
/// <param name="Compressed">True when the block must be decompressed.</param>
/// <param name="Start">Start of the slice in the decompressed block.</param>
/// <param name="Length">Length of the slice.</param>
internal readonly record struct ReferenceItem(long Offset, uint StoredSize, bool Compressed, int Start, int Length)
{
    public bool IsRaw => StoredSize == 0;
}
