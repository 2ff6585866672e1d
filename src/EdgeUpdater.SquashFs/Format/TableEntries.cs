namespace EdgeUpdater.SquashFs.Format;

/// <summary>One fragment table entry.</summary>
/// <param name="Start">Image offset of the fragment block.</param>
/// <param name="RawSize">Size field as stored: stored size, bit 24 set when uncompressed.</param>
/// <param name="Unused">The unused field as stored (kept so the table re-encodes byte-identically).</param>
public readonly record struct FragmentEntry(ulong Start, uint RawSize, uint Unused)
{
    /// <summary>Bytes on disk.</summary>
    public uint StoredSize => RawSize & ~Inode.UncompressedBlockBit;

    /// <summary>False when the block is stored uncompressed.</summary>
    public bool IsCompressed => (RawSize & Inode.UncompressedBlockBit) == 0;
}

/// <summary>One xattr id table entry: where an inode's xattr set lies.</summary>
/// <param name="Reference">Block (relative to the key/value table start, upper 48 bits) and offset (lower 16) of the first pair.</param>
/// <param name="Count">Number of pairs.</param>
/// <param name="Size">Total size of the pairs as mksquashfs records it.</param>
public readonly record struct XattrIdEntry(ulong Reference, uint Count, uint Size);

/// <summary>One extended attribute.</summary>
/// <param name="Name">Full name with prefix, e.g. <c>security.capability</c>, <c>user.comment</c>.</param>
/// <param name="Value">The value bytes.</param>
public sealed record SquashFsXattr(string Name, byte[] Value);

/// <summary>One directory listing entry as stored.</summary>
/// <param name="Name">Raw name bytes (no '/', not "." or "..").</param>
/// <param name="Inode">Reference of the entry's inode.</param>
/// <param name="Type">Basic inode type stored in the entry.</param>
/// <param name="InodeNumber">Inode number (header number + stored delta).</param>
public sealed record DirectoryEntryRecord(byte[] Name, InodeReference Inode, InodeType Type, uint InodeNumber)
{
    /// <summary>The name decoded as UTF-8 (invalid bytes become U+FFFD).</summary>
    public string NameString => System.Text.Encoding.UTF8.GetString(Name);
}

/// <summary>An inode with the place it was read from.</summary>
/// <param name="Reference">Inode reference (block relative to the inode table start, offset in block).</param>
/// <param name="TableOffset">Offset of the inode in the uncompressed inode table.</param>
/// <param name="Inode">The parsed inode.</param>
public sealed record InodeRecord(InodeReference Reference, long TableOffset, Inode Inode);
