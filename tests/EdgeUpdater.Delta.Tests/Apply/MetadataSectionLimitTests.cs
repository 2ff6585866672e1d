using EdgeUpdater.Delta.Format;
using EdgeUpdater.Delta.Metadata;
using EdgeUpdater.SquashFs.Metadata;
using Xunit;

namespace EdgeUpdater.Delta.Tests.Apply;

/// <summary>
/// What a metadata section may make the device hold is bounded before anything is allocated for it: the
/// relocation maps' runs, the decision records' length, one piece per table. Read by the same parse the
/// device's decode and `delta info` use.
/// </summary>
public sealed class MetadataSectionLimitTests
{
    private static DeltaException Refused(byte[] payload, int formatVersion = DeltaFormat.Version) =>
        Assert.Throws<DeltaException>(() => MetadataSection.Parse(payload, 0, formatVersion));

    private static void Runs(ByteWriter w, int count)
    {
        w.VarU((ulong)count);
        for (var i = 0; i < count; i++)
        {
            w.VarU(1);
            w.VarS(0);
        }
    }

    /// <summary>A section of the maps, no directory blocks, then <paramref name="pieces"/>.</summary>
    private static byte[] Section(int dataRuns, int fragmentRuns, int pieceCount, Action<ByteWriter> pieces)
    {
        var w = new ByteWriter();
        Runs(w, dataRuns);
        Runs(w, fragmentRuns);
        w.VarU(0);
        w.VarU((ulong)pieceCount);
        pieces(w);
        return w.ToArray();
    }

    [Fact]
    public void The_maps_hold_at_most_their_runs_together()
    {
        var half = DeltaFormat.MaxRelocationRuns / 2;
        var parsed = MetadataSection.Parse(Section(half, half, 0, _ => { }), 0, DeltaFormat.Version);
        Assert.Equal(DeltaFormat.MaxRelocationRuns, parsed.DataMap.Count + parsed.FragmentMap.Count);

        Assert.Equal(DeltaErrorCategory.Overflow, Refused(Section(DeltaFormat.MaxRelocationRuns + 1, 0, 0, _ => { })).Category);
        var e = Refused(Section(half, half + 1, 0, _ => { }));
        Assert.Equal(DeltaErrorCategory.Overflow, e.Category);
        Assert.Contains("fragment map run count", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Decision_records_longer_than_the_format_allows_are_refused_before_they_are_read()
    {
        // 600 replayed blocks could have records of 600 x 32 KiB by their own bound; the format caps them together.
        const int blocks = 600;
        byte[] Table(long recordsLength) => Section(0, 0, 1, w =>
        {
            w.U8((byte)MetadataPieceKind.TableBlocks);
            w.U8((byte)MetadataTableKind.Inodes);
            w.VarU(blocks * 8192UL);
            w.U8((byte)TableEncoding.Predicted);
            for (var i = 0; i < blocks; i++)
            {
                w.U8((byte)MetadataBlockEncoding.Replayed);
            }

            w.VarU((ulong)recordsLength);
            w.Blob([1, 2, 3]);
        });

        var table = Assert.Single(MetadataSection.Parse(Table(DeltaFormat.MaxDecisionRecordsLength), 0, DeltaFormat.Version).Tables);
        Assert.Equal((blocks, DeltaFormat.MaxDecisionRecordsLength), (table.ReplayCount, table.RecordsLength));
        var e = Refused(Table(DeltaFormat.MaxDecisionRecordsLength + 1L));
        Assert.Equal(DeltaErrorCategory.Overflow, e.Category);
        Assert.Contains("decision records length", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData((byte)MetadataPieceKind.TableIndex)]
    [InlineData((byte)MetadataPieceKind.TableBlocks)]
    [InlineData((byte)MetadataPieceKind.XattrHeader)]
    public void A_table_given_twice_is_refused(byte pieceKind)
    {
        var kind = (MetadataPieceKind)pieceKind;
        void Piece(ByteWriter w, MetadataTableKind table)
        {
            w.U8((byte)kind);
            switch (kind)
            {
                case MetadataPieceKind.TableIndex:
                    w.U8((byte)table);
                    break;
                case MetadataPieceKind.TableBlocks:
                    w.U8((byte)table);
                    w.VarU(100);
                    w.U8((byte)TableEncoding.Predicted);
                    w.U8((byte)MetadataBlockEncoding.Uncompressed);
                    break;
            }
        }

        // Another table, or literal bytes between, are fine; the same table again is not.
        var parsed = MetadataSection.Parse(Section(0, 0, 3, w =>
        {
            Piece(w, MetadataTableKind.Inodes);
            w.U8((byte)MetadataPieceKind.Literal);
            w.Blob([0]);
            if (kind == MetadataPieceKind.XattrHeader)
            {
                w.U8((byte)MetadataPieceKind.Literal);
                w.Blob([0]);
            }
            else
            {
                Piece(w, MetadataTableKind.Directories);
            }
        }), 0, DeltaFormat.Version);
        Assert.Equal(3, parsed.Pieces.Count);

        var e = Refused(Section(0, 0, 3, w =>
        {
            Piece(w, MetadataTableKind.Inodes);
            w.U8((byte)MetadataPieceKind.Literal);
            w.Blob([0]);
            Piece(w, MetadataTableKind.Inodes);
        }));
        Assert.Equal(DeltaErrorCategory.Corrupted, e.Category);
        Assert.Contains("piece 2 repeats", e.Message, StringComparison.Ordinal);
    }
}
