namespace EdgeUpdater.Delta.Format;

/// <summary>Constants of the delta container (docs/delta-format.md).</summary>
internal static class DeltaFormat
{
    /// <summary>"EUDELTA\n".</summary>
    public static ReadOnlySpan<byte> Magic => "EUDELTA\n"u8;

    /// <summary>The newest format version this library reads and writes (by default).</summary>
    public const ushort Version = 4;

    /// <summary>The oldest format version this library writes, for devices in the field that read no newer.</summary>
    public const ushort OldestWrittenVersion = 2;

    /// <summary>The first format version with derived tables (<c>TableEncoding.Derived</c>).</summary>
    public const ushort DerivedTablesVersion = 3;

    /// <summary>The first format version with xz metadata blocks replayed from LZMA decisions (<c>MetadataBlockEncoding.Replayed</c>).</summary>
    public const ushort LzmaDecisionsVersion = 4;

    /// <summary>The oldest format version this library still reads (devices in the field keep being sent it).</summary>
    public const ushort OldestVersion = 1;

    /// <summary>Largest header body.</summary>
    public const int MaxHeaderBody = 4096;

    /// <summary>Largest uncompressed section payload (bounds apply memory).</summary>
    public const int MaxSectionLength = 8 << 20;

    /// <summary>Largest content the content sections before one ops section decode to, together.</summary>
    public const int MaxContentLength = 8 << 20;

    /// <summary>Largest content of a format-1 content section (one section per ops section).</summary>
    public const int MaxContentLengthVersion1 = 4 << 20;

    /// <summary>
    /// Largest LZMA2 dictionary a frame may name (format 2): the decoder allocates it on top of the content
    /// buffer. On new-file content, 2 MiB instead of a whole 8 MiB frame costs about 0.6 % in size.
    /// </summary>
    public const int MaxLzmaDictionary = 2 << 20;

    /// <summary>Most content sections (frames) one ops section may take blocks from (format 2).</summary>
    public const int MaxFrames = 4;

    /// <summary>Largest reference a content section builds from the base image.</summary>
    public const int MaxReferenceLength = 8 << 20;

    /// <summary>Largest decompressed metadata table the squashfs mode rebuilds in memory.</summary>
    public const int MaxTableLength = 16 << 20;

    /// <summary>
    /// Most runs the metadata section's two relocation maps hold together: 4 MiB in memory (a run is 2 bytes on
    /// the wire and 16 in memory). A generator whose maps need more sends the metadata region literally.
    /// </summary>
    public const int MaxRelocationRuns = 1 << 18;

    /// <summary>
    /// Longest decision records of one table's replayed blocks, together (format 4). A generator whose records
    /// would be longer recompresses that table's blocks instead.
    /// </summary>
    public const int MaxDecisionRecordsLength = 4 << 20;

    /// <summary>Size of a section header: kind, encoding, stored length, raw length, checksum.</summary>
    public const int SectionHeaderSize = 1 + 1 + 4 + 4 + 8;
}

/// <summary>Section kinds.</summary>
internal enum SectionKind : byte
{
    Ops = 1,
    Content = 2,
    Metadata = 3,
    End = 0x7F,
}

/// <summary>Operation codes inside an ops section.</summary>
internal enum OpCode : byte
{
    Copy = 1,
    Literal = 2,
    Block = 3,
    Zeros = 4,
    XorBase = 5,
}

/// <summary>Reference item kinds of a content section.</summary>
internal enum ReferenceKind : byte
{
    /// <summary>A stored block of the base image, decompressed, a slice of it.</summary>
    Block = 1,

    /// <summary>Raw bytes of the base image.</summary>
    Raw = 2,
}

/// <summary>Flags of a block operation.</summary>
[Flags]
internal enum BlockFlags : byte
{
    None = 0,

    /// <summary>The block is stored uncompressed: its content bytes are written as they are.</summary>
    Uncompressed = 1,

    /// <summary>A fragment block (informational, for statistics).</summary>
    Fragment = 2,

    /// <summary>A metadata block: compress with the metadata codec, prefix the 2-byte header.</summary>
    Metadata = 4,

    /// <summary>Bits 4-5 (format 2): which pending content frame the block takes its content from.</summary>
    FrameMask = 0x30,
}

/// <summary>How a content section's frame is coded (format 2; format 1 has zstd only).</summary>
internal enum FrameCoder : byte
{
    /// <summary>A zstd frame that may copy from the section's reference (its prefix).</summary>
    Zstd = 1,

    /// <summary>A raw LZMA2 stream, optionally behind a BCJ filter; no reference.</summary>
    Lzma2 = 2,
}
