using System.Buffers.Binary;
using EdgeUpdater.SquashFs.Format;
using EdgeUpdater.SquashFs.Metadata;
using EdgeUpdater.SquashFs.Reader;

namespace EdgeUpdater.Delta.Metadata;

/// <summary>
/// Predicts the new image's decompressed metadata tables from the old image's: every reference to a data
/// block, a fragment tail or a metadata block is moved through the relocation maps and through the new
/// tables' layouts as far as they are known. Generator and device run this same code on the same inputs,
/// so the prediction is identical on both sides; the delta then only carries a patch against it.
/// </summary>
internal sealed class MetadataPredictor
{
    private readonly SquashFsImage _old;
    private readonly Dictionary<MetadataTableKind, MetadataTable> _oldTables = [];
    private readonly Dictionary<MetadataTableKind, TableLayout> _oldLayouts = [];
    private readonly Dictionary<MetadataTableKind, TableLayout> _newLayouts = [];

    public MetadataPredictor(SquashFsImage old, RelocationMap dataMap, RelocationMap fragmentMap, TableLayout? newDirectoryLayout)
    {
        _old = old;
        DataMap = dataMap;
        FragmentMap = fragmentMap;
        if (newDirectoryLayout is not null)
        {
            _newLayouts[MetadataTableKind.Directories] = newDirectoryLayout;
        }
    }

    public RelocationMap DataMap { get; }

    /// <summary>Bytes of the old image's tables read so far (a table read again after <see cref="Release"/> counts again).</summary>
    public long OldTableBytes { get; private set; }

    public RelocationMap FragmentMap { get; }

    /// <summary>Position key of a fragment tail in the fragment relocation map.</summary>
    public static ulong FragmentKey(uint index, uint offset) => ((ulong)index << 20) | offset;

    /// <summary>Records the layout of a table of the new image once it is written.</summary>
    public void RecordNewLayout(MetadataTableKind kind, TableLayout layout) => _newLayouts[kind] = layout;

    public MetadataTable OldTable(MetadataTableKind kind)
    {
        if (!_oldTables.TryGetValue(kind, out var table))
        {
            table = _old.ReadMetadataTable(kind);
            _oldTables[kind] = table;
            OldTableBytes += table.Data.Length;
        }

        return table;
    }

    /// <summary>
    /// Lets go of the old <paramref name="kind"/> table once its new table is rebuilt (other tables' predictions
    /// need only its layout, kept): the device then holds one old table at a time, not all of them to the end.
    /// </summary>
    public void Release(MetadataTableKind kind)
    {
        if (_oldTables.ContainsKey(kind))
        {
            _ = OldLayout(kind);
            _oldTables.Remove(kind);
        }
    }

    private TableLayout? OldLayout(MetadataTableKind kind)
    {
        if (!_oldLayouts.TryGetValue(kind, out var layout))
        {
            var table = OldTable(kind);
            if (table.Blocks.Count == 0)
            {
                return null;
            }

            var start = table.Blocks[0].Offset;
            layout = new TableLayout([.. table.Blocks.Select(b => b.Offset - start)], table.Blocks[^1].End - start, start);
            _oldLayouts[kind] = layout;
        }

        return layout;
    }

    private TableLayout? NewLayout(MetadataTableKind kind) => _newLayouts.GetValueOrDefault(kind);

    /// <summary>The predicted decompressed bytes of <paramref name="kind"/> in the new image.</summary>
    public byte[] Predict(MetadataTableKind kind)
    {
        try
        {
            return kind switch
            {
                MetadataTableKind.Inodes => PredictInodes(),
                MetadataTableKind.Directories => PredictDirectories(),
                MetadataTableKind.Fragments => PredictFragments(),
                MetadataTableKind.Export => PredictExport(),
                MetadataTableKind.XattrIds => PredictXattrIds(),
                _ => OldTable(kind).Data,
            };
        }
        catch (EdgeUpdater.SquashFs.SquashFsException)
        {
            // An old table that does not parse is still a fine reference byte for byte, or none at all.
            try
            {
                return OldTable(kind).Data;
            }
            catch (EdgeUpdater.SquashFs.SquashFsException)
            {
                return [];
            }
        }
    }

    private byte[] PredictInodes()
    {
        var oldTable = OldTable(MetadataTableKind.Inodes);
        var oldDirs = OldLayout(MetadataTableKind.Directories);
        var newDirs = NewLayout(MetadataTableKind.Directories);
        // Inodes are parsed one at a time and written in place: the device holds no list of records and no
        // growing stream (a table of 300,000 inodes took 3 to 4 times its size that way). An inode keeps its
        // length, so the prediction is as long as the old table.
        var output = GC.AllocateUninitializedArray<byte>(oldTable.Data.Length);
        var written = 0;
        var geometry = InodeTableGeometry.Of(_old.Superblock, _old.Options);
        foreach (var record in InodeTableParser.Parse(oldTable.Data, [.. oldTable.Blocks.Select(b => b.Offset - oldTable.Start)], geometry))
        {
            var inode = record.Inode;
            switch (inode.Kind)
            {
                case InodeKind.File:
                    var start = DataMap.Map(inode.BlocksStart);
                    if (inode.Type == InodeType.ExtendedFile || start <= uint.MaxValue)
                    {
                        inode.BlocksStart = start;
                    }

                    if (inode.FragmentIndex != Inode.NoFragment)
                    {
                        var key = FragmentMap.Map(FragmentKey(inode.FragmentIndex, inode.FragmentOffset));
                        inode.FragmentIndex = (uint)(key >> 20);
                        inode.FragmentOffset = (uint)(key & 0xFFFFF);
                    }

                    break;
                case InodeKind.Directory:
                    var block = TableLayout.Relocate(inode.DirectoryBlockStart, oldDirs, newDirs);
                    if (block <= uint.MaxValue)
                    {
                        inode.DirectoryBlockStart = (uint)block;
                    }

                    for (var i = 0; i < inode.DirectoryIndex.Length; i++)
                    {
                        var entry = inode.DirectoryIndex[i];
                        var moved = TableLayout.Relocate(entry.Start, oldDirs, newDirs);
                        if (moved <= uint.MaxValue)
                        {
                            inode.DirectoryIndex[i] = entry with { Start = (uint)moved };
                        }
                    }

                    break;
            }

            var length = inode.EncodedLength;
            if (written + length > output.Length)
            {
                Array.Resize(ref output, Math.Max(written + length, output.Length + (output.Length / 4)));
            }

            inode.Write(output.AsSpan(written, length));
            written += length;
        }

        return written == output.Length ? output : output.AsSpan(0, written).ToArray();
    }

    private byte[] PredictDirectories()
    {
        var data = (byte[])OldTable(MetadataTableKind.Directories).Data.Clone();
        var oldInodes = OldLayout(MetadataTableKind.Inodes);
        var newInodes = NewLayout(MetadataTableKind.Inodes);
        var position = 0;
        while (data.Length - position >= 12)
        {
            var count = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(position)) + 1L;
            var start = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(position + 4));
            if (count > 256)
            {
                break;
            }

            var moved = TableLayout.Relocate(start, oldInodes, newInodes);
            if (moved <= uint.MaxValue)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(position + 4), (uint)moved);
            }

            position += 12;
            for (var i = 0; i < count; i++)
            {
                if (data.Length - position < 8)
                {
                    return data;
                }

                var nameSize = BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(position + 6)) + 1;
                position += 8 + nameSize;
            }
        }

        return data;
    }

    private byte[] PredictFragments()
    {
        var data = (byte[])OldTable(MetadataTableKind.Fragments).Data.Clone();
        for (var position = 0; position + 16 <= data.Length; position += 16)
        {
            var start = BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(position));
            BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(position), DataMap.Map(start));
        }

        return data;
    }

    private byte[] PredictExport()
    {
        var data = (byte[])OldTable(MetadataTableKind.Export).Data.Clone();
        var oldInodes = OldLayout(MetadataTableKind.Inodes);
        var newInodes = NewLayout(MetadataTableKind.Inodes);
        for (var position = 0; position + 8 <= data.Length; position += 8)
        {
            var reference = BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(position));
            var block = TableLayout.Relocate(reference >> 16, oldInodes, newInodes);
            if (block < 1UL << 48)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(position), (block << 16) | (reference & 0xFFFF));
            }
        }

        return data;
    }

    private byte[] PredictXattrIds()
    {
        var data = (byte[])OldTable(MetadataTableKind.XattrIds).Data.Clone();
        var oldKv = OldLayout(MetadataTableKind.XattrKeyValues);
        var newKv = NewLayout(MetadataTableKind.XattrKeyValues);
        for (var position = 0; position + 16 <= data.Length; position += 16)
        {
            var reference = BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(position));
            var block = TableLayout.Relocate(reference >> 16, oldKv, newKv);
            if (block < 1UL << 48)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(position), (block << 16) | (reference & 0xFFFF));
            }
        }

        return data;
    }
}
