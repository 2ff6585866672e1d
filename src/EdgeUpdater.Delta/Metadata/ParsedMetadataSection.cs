using EdgeUpdater.SquashFs.Metadata;

namespace EdgeUpdater.Delta.Metadata;

/// <summary>
/// A metadata section as read by <see cref="MetadataSection.Parse"/>: every field bounded and located, nothing
/// predicted, patched or compressed yet. Byte fields are ranges of the section's payload.
/// </summary>
internal sealed record ParsedMetadataSection(RelocationMap DataMap, RelocationMap FragmentMap, int[] DirectoryBlockSizes, IReadOnlyList<MetadataPiece> Pieces)
{
    /// <summary>The tables whose blocks the section gives, in order.</summary>
    public IEnumerable<EncodedTable> Tables => Pieces.Select(p => p.Blocks).OfType<EncodedTable>();
}

/// <summary>
/// One piece of the metadata region: <see cref="Literal"/> for <see cref="MetadataPieceKind.Literal"/>,
/// <see cref="Blocks"/> for <see cref="MetadataPieceKind.TableBlocks"/>, <see cref="Table"/> for
/// <see cref="MetadataPieceKind.TableIndex"/>.
/// </summary>
internal sealed record MetadataPiece(MetadataPieceKind Kind, MetadataTableKind Table = default, Range Literal = default, EncodedTable? Blocks = null);

/// <summary>One table's blocks as the section gives them.</summary>
/// <param name="Kind">The table.</param>
/// <param name="Length">Its decompressed length.</param>
/// <param name="Encoding">How its decompressed bytes are given.</param>
/// <param name="Bytes">The patch (<see cref="TableEncoding.Patch"/>) or the table (<see cref="TableEncoding.Literal"/>).</param>
/// <param name="DerivedBlockSize">For <see cref="TableEncoding.Derived"/>: the new image's block size.</param>
/// <param name="DerivedFragmentCount">For <see cref="TableEncoding.Derived"/>: the new image's fragment count.</param>
/// <param name="BlockEncodings">How each metadata block is stored.</param>
/// <param name="LiteralBlocks">The stored bytes of each <see cref="MetadataBlockEncoding.Literal"/> block.</param>
/// <param name="RecordsLength">For replayed blocks: the length of their decision records together.</param>
/// <param name="RecordsPatch">For replayed blocks: the records' patch against the old table's.</param>
internal sealed record EncodedTable(
    MetadataTableKind Kind,
    int Length,
    TableEncoding Encoding,
    Range Bytes,
    uint DerivedBlockSize,
    uint DerivedFragmentCount,
    MetadataBlockEncoding[] BlockEncodings,
    Range[] LiteralBlocks,
    int RecordsLength,
    Range RecordsPatch)
{
    /// <summary>How many blocks are <see cref="MetadataBlockEncoding.Replayed"/>.</summary>
    public int ReplayCount => BlockEncodings.Count(e => e == MetadataBlockEncoding.Replayed);
}
