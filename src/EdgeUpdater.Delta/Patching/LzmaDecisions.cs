using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.CompilerServices;
using EdgeUpdater.Delta.Format;

namespace EdgeUpdater.Delta.Patching;

/// <summary>
/// The choices an LZMA encoder made for one xz stream (which bytes are literals, which are matches and at
/// what distance), recorded from the stored bytes and replayed over the same content to give those bytes
/// again. Replaying is range coding only, with no match search: for a metadata block of 8 KiB it takes a
/// small fraction of what liblzma's compression of it takes, and the stream it gives is the same byte for byte.
/// <para>
/// Handles the single form squashfs-tools and <c>lzma_stream_buffer_encode</c> write for a block that
/// compresses: one xz block with a CRC32 check, both sizes in its header, one LZMA2 filter, and one LZMA2
/// chunk that resets dictionary, state and properties (so the content is at most 2 MiB and the compressed
/// chunk at most 64 KiB). Anything else is not recorded. The record format is in docs/delta-format.md
/// ("LZMA decision records").
/// </para>
/// One instance per thread: it owns the probability model.
/// </summary>
internal sealed class LzmaDecisions
{
    /// <summary>Largest content a record describes: one LZMA2 chunk.</summary>
    public const int MaxContentLength = 2 << 20;

    private const byte LiteralRun = 0;
    private const byte Match = 1;
    private const byte Rep0 = 2;
    private const byte ShortRep = 6;

    // Offsets into one array of probabilities (11-bit, initially one half).
    private const int IsMatch = 0; // state << 4 | position state
    private const int IsRep = IsMatch + 192;
    private const int IsRepG0 = IsRep + 12;
    private const int IsRepG1 = IsRepG0 + 12;
    private const int IsRepG2 = IsRepG1 + 12;
    private const int IsRep0Long = IsRepG2 + 12;
    private const int PosSlot = IsRep0Long + 192; // 4 length states of 64
    private const int SpecPos = PosSlot + 256;
    private const int Align = SpecPos + 115;
    private const int MatchLength = Align + 16;
    private const int LengthModel = 2 + 128 + 128 + 256; // choice, choice 2, low[16][8], mid[16][8], high[256]
    private const int RepLength = MatchLength + LengthModel;
    private const int Literals = RepLength + LengthModel;
    private const int MaxLiteralProperties = 4; // LZMA2: lc + lp <= 4

    private const int StreamHeaderSize = 12;
    private const int ChunkHeaderSize = 6;
    private const int CheckSize = 4;
    private const int IndexSize = 16; // indicator, count, two sizes of at most 4 bytes (content up to 2 MiB), padding, CRC32
    private const int StreamFooterSize = 12;
    private static ReadOnlySpan<byte> StreamMagic => [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00];

    private readonly ushort[] _probabilities = new ushort[Literals + (0x300 << MaxLiteralProperties)];
    private readonly ByteWriter _record = new(1 << 12);

    /// <summary>
    /// Bound on the record of a block of <paramref name="contentLength"/> bytes, for refusing longer ones: a valid
    /// record takes at most 2.5 bytes a byte (a 2-byte match with a 3-byte distance, content up to 2 MiB).
    /// </summary>
    public static int MaxRecordLength(int contentLength) => 2 + (4 * contentLength);

    /// <summary>The record <see cref="TryRecord"/> made last; valid until its next call.</summary>
    public ReadOnlySpan<byte> LastRecord => _record.WrittenSpan;

    /// <summary>
    /// Decodes <paramref name="stream"/> into <paramref name="content"/> and keeps its record in
    /// <see cref="LastRecord"/>; false when the stream is not of the form handled or does not decode. Never
    /// throws for bad input: a record is used only once replaying it gave the stored bytes again.
    /// </summary>
    public bool TryRecord(ReadOnlySpan<byte> stream, Span<byte> content, out int contentLength)
    {
        contentLength = 0;
        if (!TryParse(stream, out var dictionaryProperty, out var chunk))
        {
            return false;
        }

        var unpacked = ((chunk[0] & 0x1F) << 16) + BinaryPrimitives.ReadUInt16BigEndian(chunk[1..]) + 1;
        var packed = BinaryPrimitives.ReadUInt16BigEndian(chunk[3..]) + 1;
        var properties = chunk[5];
        if (unpacked > content.Length || ChunkHeaderSize + packed + 1 != chunk.Length || chunk[^1] != 0
            || !TrySplitProperties(properties, out var lc, out var lp, out var pb))
        {
            return false;
        }

        _record.Clear();
        _record.U8(properties);
        _record.U8(dictionaryProperty);
        if (!TryDecode(chunk.Slice(ChunkHeaderSize, packed), content[..unpacked], lc, lp, pb, _record))
        {
            _record.Clear();
            return false;
        }

        contentLength = unpacked;
        return true;
    }

    /// <summary>
    /// Writes the xz stream that <paramref name="record"/> describes over
    /// <paramref name="content"/> into <paramref name="destination"/>; returns its length. Throws
    /// <see cref="DeltaException"/> (Corrupted) when the record does not describe the content or the stream does
    /// not fit.
    /// </summary>
    public int Replay(ReadOnlySpan<byte> record, ReadOnlySpan<byte> content, Span<byte> destination, string where)
    {
        var reader = new ByteReader(record, where);
        var properties = reader.U8();
        var dictionaryProperty = reader.U8();
        if (!TrySplitProperties(properties, out var lc, out var lp, out var pb) || dictionaryProperty > 40)
        {
            throw DeltaException.Corrupted($"{where}: LZMA properties {properties} or dictionary property {dictionaryProperty} are not valid for LZMA2.");
        }

        if (content.Length is 0 or > MaxContentLength)
        {
            throw DeltaException.Corrupted($"{where}: {content.Length} bytes of content cannot be one LZMA2 chunk.");
        }

        var headerSize = BlockHeaderSize(content.Length);
        var dataStart = StreamHeaderSize + headerSize;
        var rangeStart = dataStart + ChunkHeaderSize;
        var room = destination.Length - rangeStart - 1 - 3 - CheckSize - IndexSize - StreamFooterSize;
        if (room <= 0)
        {
            throw DeltaException.Corrupted($"{where}: no room for the stream in {destination.Length} bytes.");
        }

        var encoder = new RangeEncoder(destination.Slice(rangeStart, Math.Min(room, 1 << 16)), where);
        Encode(ref reader, content, lc, lp, pb, ref encoder);
        var packed = encoder.Flush();

        // LZMA2 chunk header and end marker.
        var chunk = destination[dataStart..];
        chunk[0] = (byte)(0xE0 | ((content.Length - 1) >> 16));
        BinaryPrimitives.WriteUInt16BigEndian(chunk[1..], (ushort)(content.Length - 1));
        BinaryPrimitives.WriteUInt16BigEndian(chunk[3..], (ushort)(packed - 1));
        chunk[5] = properties;
        chunk[ChunkHeaderSize + packed] = 0;
        var compressedSize = ChunkHeaderSize + packed + 1;

        // Stream header.
        StreamMagic.CopyTo(destination);
        destination[6] = 0;
        destination[7] = 1; // CRC32 check
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], Crc32.HashToUInt32(destination.Slice(6, 2)));

        // Block header, padded to the size the compressed size's upper bound gave it.
        var header = destination.Slice(StreamHeaderSize, headerSize);
        header.Clear();
        header[0] = (byte)((headerSize / 4) - 1);
        header[1] = 0xC0; // compressed and uncompressed size present, one filter
        var at = 2 + WriteVli(header[2..], (ulong)compressedSize);
        at += WriteVli(header[at..], (ulong)content.Length);
        header[at++] = 0x21; // LZMA2
        header[at++] = 1;
        header[at] = dictionaryProperty;
        BinaryPrimitives.WriteUInt32LittleEndian(header[(headerSize - 4)..], Crc32.HashToUInt32(header[..(headerSize - 4)]));

        // Block padding, check, index, stream footer.
        var position = dataStart + compressedSize;
        while ((position - dataStart) % 4 != 0)
        {
            destination[position++] = 0;
        }

        BinaryPrimitives.WriteUInt32LittleEndian(destination[position..], Crc32.HashToUInt32(content));
        position += CheckSize;
        var indexStart = position;
        destination[position++] = 0;
        destination[position++] = 1;
        position += WriteVli(destination[position..], (ulong)(headerSize + compressedSize + CheckSize));
        position += WriteVli(destination[position..], (ulong)content.Length);
        while ((position - indexStart) % 4 != 0)
        {
            destination[position++] = 0;
        }

        BinaryPrimitives.WriteUInt32LittleEndian(destination[position..], Crc32.HashToUInt32(destination[indexStart..position]));
        position += 4;
        var footer = destination.Slice(position, StreamFooterSize);
        BinaryPrimitives.WriteUInt32LittleEndian(footer[4..], (uint)(((position - indexStart) / 4) - 1));
        footer[8] = 0;
        footer[9] = 1;
        footer[10] = (byte)'Y';
        footer[11] = (byte)'Z';
        BinaryPrimitives.WriteUInt32LittleEndian(footer, Crc32.HashToUInt32(footer.Slice(4, 6)));
        return position + StreamFooterSize;
    }

    /// <summary>The xz stream's dictionary property and its LZMA2 data (one chunk and the end marker), when it has the form handled.</summary>
    private static bool TryParse(ReadOnlySpan<byte> stream, out byte dictionaryProperty, out ReadOnlySpan<byte> chunk)
    {
        dictionaryProperty = 0;
        chunk = default;
        if (stream.Length < StreamHeaderSize + 16 + ChunkHeaderSize + 1 + CheckSize + 8 + StreamFooterSize
            || !stream.StartsWith(StreamMagic) || stream[6] != 0 || stream[7] != 1)
        {
            return false;
        }

        var headerSize = (stream[StreamHeaderSize] + 1) * 4;
        if (StreamHeaderSize + headerSize + ChunkHeaderSize >= stream.Length)
        {
            return false;
        }

        var header = stream.Slice(StreamHeaderSize, headerSize);
        if (header[1] != 0xC0)
        {
            return false;
        }

        var at = 2;
        if (!TryReadVli(header, ref at, out var compressedSize) || !TryReadVli(header, ref at, out _)
            || at + 3 > headerSize - 4 || header[at] != 0x21 || header[at + 1] != 1 || header[at + 2] > 40)
        {
            return false;
        }

        dictionaryProperty = header[at + 2];
        var dataStart = StreamHeaderSize + headerSize;
        if (compressedSize > (ulong)(stream.Length - dataStart) || stream[dataStart] != 0xE0)
        {
            return false;
        }

        chunk = stream.Slice(dataStart, (int)compressedSize);
        return true;
    }

    private static bool TrySplitProperties(byte properties, out int lc, out int lp, out int pb)
    {
        lc = properties % 9;
        lp = properties / 9 % 5;
        pb = properties / 45;
        return properties < 9 * 5 * 5 && lc + lp <= MaxLiteralProperties;
    }

    /// <summary>
    /// The block header's size: liblzma sizes it for the upper bound of the compressed size (content plus an
    /// uncompressed-chunk header per 64 KiB plus the end marker) before it knows the real one, then pads.
    /// </summary>
    private static int BlockHeaderSize(int contentLength)
    {
        var bound = (ulong)contentLength + ((((ulong)contentLength + 0xFFFF) >> 16) * 3) + 1;
        var size = 2 + VliLength(bound) + VliLength((ulong)contentLength) + 3 + 4;
        return (size + 3) & ~3;
    }

    private static int VliLength(ulong value)
    {
        var length = 1;
        while (value >= 0x80)
        {
            value >>= 7;
            length++;
        }

        return length;
    }

    private static int WriteVli(Span<byte> destination, ulong value)
    {
        var i = 0;
        while (value >= 0x80)
        {
            destination[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        destination[i++] = (byte)value;
        return i;
    }

    private static bool TryReadVli(ReadOnlySpan<byte> bytes, ref int at, out ulong value)
    {
        value = 0;
        for (var shift = 0; shift < 63 && at < bytes.Length; shift += 7)
        {
            var b = bytes[at++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return true;
            }
        }

        return false;
    }

    private void Reset(int lc, int lp)
    {
        _probabilities.AsSpan(0, Literals + (0x300 << (lc + lp))).Fill(1024);
    }

    private bool TryDecode(ReadOnlySpan<byte> packed, Span<byte> output, int lc, int lp, int pb, ByteWriter decisions)
    {
        if (packed.Length < 5 || packed[0] != 0)
        {
            return false;
        }

        Reset(lc, lp);
        var p = _probabilities;
        var rc = new RangeDecoder(packed);
        int pbMask = (1 << pb) - 1, lpMask = (1 << lp) - 1;
        int state = 0, rep0 = 0, rep1 = 0, rep2 = 0, rep3 = 0, position = 0, literals = 0;
        while (position < output.Length)
        {
            var posState = position & pbMask;
            if (rc.Bit(ref p[IsMatch + (state << 4) + posState]) == 0)
            {
                var previous = position > 0 ? output[position - 1] : 0;
                var model = Literals + (0x300 * (((position & lpMask) << lc) + (previous >> (8 - lc))));
                var symbol = 1;
                if (state >= 7)
                {
                    if (rep0 >= position)
                    {
                        return false;
                    }

                    int matchByte = output[position - rep0 - 1];
                    while (symbol < 0x100)
                    {
                        var matchBit = (matchByte >> 7) & 1;
                        matchByte <<= 1;
                        var bit = rc.Bit(ref p[model + ((1 + matchBit) << 8) + symbol]);
                        symbol = (symbol << 1) | bit;
                        if (matchBit != bit)
                        {
                            break;
                        }
                    }
                }

                while (symbol < 0x100)
                {
                    symbol = (symbol << 1) | rc.Bit(ref p[model + symbol]);
                }

                output[position++] = (byte)symbol;
                literals++;
                state = state < 4 ? 0 : state < 10 ? state - 3 : state - 6;
                continue;
            }

            FlushLiterals(decisions, ref literals);
            int length;
            if (rc.Bit(ref p[IsRep + state]) == 0)
            {
                length = DecodeLength(ref rc, MatchLength, posState);
                state = state < 7 ? 7 : 10;
                var slot = Tree(ref rc, PosSlot + (Math.Min(length, 3) << 6), 6);
                var distance = slot;
                if (slot >= 4)
                {
                    var directBits = (slot >> 1) - 1;
                    distance = (2 | (slot & 1)) << directBits;
                    if (slot < 14)
                    {
                        distance += ReverseTree(ref rc, SpecPos + distance - slot, directBits);
                    }
                    else
                    {
                        distance += rc.Direct(directBits - 4) << 4;
                        distance += ReverseTree(ref rc, Align, 4);
                    }
                }

                (rep3, rep2, rep1, rep0) = (rep2, rep1, rep0, distance);
                decisions.U8(Match);
                decisions.VarU((uint)length);
                decisions.VarU((uint)distance);
            }
            else
            {
                int index;
                if (rc.Bit(ref p[IsRepG0 + state]) == 0)
                {
                    if (rc.Bit(ref p[IsRep0Long + (state << 4) + posState]) == 0)
                    {
                        if (rep0 >= position)
                        {
                            return false;
                        }

                        state = state < 7 ? 9 : 11;
                        output[position] = output[position - rep0 - 1];
                        position++;
                        decisions.U8(ShortRep);
                        continue;
                    }

                    index = 0;
                }
                else if (rc.Bit(ref p[IsRepG1 + state]) == 0)
                {
                    index = 1;
                    (rep1, rep0) = (rep0, rep1);
                }
                else if (rc.Bit(ref p[IsRepG2 + state]) == 0)
                {
                    index = 2;
                    (rep2, rep1, rep0) = (rep1, rep0, rep2);
                }
                else
                {
                    index = 3;
                    (rep3, rep2, rep1, rep0) = (rep2, rep1, rep0, rep3);
                }

                length = DecodeLength(ref rc, RepLength, posState);
                state = state < 7 ? 8 : 11;
                decisions.U8((byte)(Rep0 + index));
                decisions.VarU((uint)length);
            }

            length += 2;
            if ((uint)rep0 >= (uint)position || length > output.Length - position || rc.Overrun)
            {
                return false;
            }

            CopyMatch(output, position, rep0 + 1, length);
            position += length;
        }

        FlushLiterals(decisions, ref literals);
        return rc.Finished;
    }

    private void Encode(ref ByteReader reader, ReadOnlySpan<byte> content, int lc, int lp, int pb, ref RangeEncoder rc)
    {
        Reset(lc, lp);
        var p = _probabilities;
        int pbMask = (1 << pb) - 1, lpMask = (1 << lp) - 1;
        int state = 0, rep0 = 0, rep1 = 0, rep2 = 0, rep3 = 0, position = 0;
        while (position < content.Length)
        {
            var kind = reader.U8();
            if (kind == LiteralRun)
            {
                var run = reader.VarInt(content.Length - position, "literal run");
                if (run == 0)
                {
                    throw DeltaException.Corrupted($"{reader.Where}: an empty literal run at content offset {position}.");
                }

                for (var end = position + run; position < end; position++)
                {
                    rc.Bit(ref p[IsMatch + (state << 4) + (position & pbMask)], 0);
                    var previous = position > 0 ? content[position - 1] : 0;
                    var model = Literals + (0x300 * (((position & lpMask) << lc) + (previous >> (8 - lc))));
                    int value = content[position];
                    var symbol = 1;
                    var i = 7;
                    if (state >= 7)
                    {
                        if (rep0 >= position)
                        {
                            throw DeltaException.Corrupted($"{reader.Where}: a literal after a match refers to distance {rep0 + 1} at content offset {position}.");
                        }

                        // Matched literal: coded against the byte a repeat of the last distance would give, until they differ.
                        int matchByte = content[position - rep0 - 1];
                        for (; i >= 0; i--)
                        {
                            var matchBit = (matchByte >> i) & 1;
                            var bit = (value >> i) & 1;
                            rc.Bit(ref p[model + ((1 + matchBit) << 8) + symbol], bit);
                            symbol = (symbol << 1) | bit;
                            if (matchBit != bit)
                            {
                                i--;
                                break;
                            }
                        }
                    }

                    for (; i >= 0; i--)
                    {
                        var bit = (value >> i) & 1;
                        rc.Bit(ref p[model + symbol], bit);
                        symbol = (symbol << 1) | bit;
                    }

                    state = state < 4 ? 0 : state < 10 ? state - 3 : state - 6;
                }

                continue;
            }

            var posState = position & pbMask;
            rc.Bit(ref p[IsMatch + (state << 4) + posState], 1);
            int length;
            switch (kind)
            {
                case Match:
                    length = reader.VarInt(273 - 2, "match length");
                    var distance = reader.VarInt(int.MaxValue - 1, "match distance");
                    rc.Bit(ref p[IsRep + state], 0);
                    EncodeLength(ref rc, MatchLength, posState, length);
                    state = state < 7 ? 7 : 10;
                    var slot = SlotOf(distance);
                    Tree(ref rc, PosSlot + (Math.Min(length, 3) << 6), 6, slot);
                    if (slot >= 4)
                    {
                        var directBits = (slot >> 1) - 1;
                        var footer = distance - ((2 | (slot & 1)) << directBits);
                        if (slot < 14)
                        {
                            ReverseTree(ref rc, SpecPos + (distance - footer) - slot, directBits, footer);
                        }
                        else
                        {
                            rc.Direct(footer >> 4, directBits - 4);
                            ReverseTree(ref rc, Align, 4, footer & 15);
                        }
                    }

                    (rep3, rep2, rep1, rep0) = (rep2, rep1, rep0, distance);
                    break;
                case >= Rep0 and < ShortRep:
                    rc.Bit(ref p[IsRep + state], 1);
                    var index = kind - Rep0;
                    if (index == 0)
                    {
                        rc.Bit(ref p[IsRepG0 + state], 0);
                        rc.Bit(ref p[IsRep0Long + (state << 4) + posState], 1);
                    }
                    else
                    {
                        rc.Bit(ref p[IsRepG0 + state], 1);
                        if (index == 1)
                        {
                            rc.Bit(ref p[IsRepG1 + state], 0);
                            (rep1, rep0) = (rep0, rep1);
                        }
                        else
                        {
                            rc.Bit(ref p[IsRepG1 + state], 1);
                            rc.Bit(ref p[IsRepG2 + state], index - 2);
                            if (index == 2)
                            {
                                (rep2, rep1, rep0) = (rep1, rep0, rep2);
                            }
                            else
                            {
                                (rep3, rep2, rep1, rep0) = (rep2, rep1, rep0, rep3);
                            }
                        }
                    }

                    length = reader.VarInt(273 - 2, "repeat length");
                    EncodeLength(ref rc, RepLength, posState, length);
                    state = state < 7 ? 8 : 11;
                    break;
                case ShortRep:
                    rc.Bit(ref p[IsRep + state], 1);
                    rc.Bit(ref p[IsRepG0 + state], 0);
                    rc.Bit(ref p[IsRep0Long + (state << 4) + posState], 0);
                    if (rep0 >= position || content[position] != content[position - rep0 - 1])
                    {
                        throw DeltaException.Corrupted($"{reader.Where}: a one-byte repeat at content offset {position} does not repeat distance {rep0 + 1}.");
                    }

                    state = state < 7 ? 9 : 11;
                    position++;
                    continue;
                default:
                    throw DeltaException.Corrupted($"{reader.Where}: decision kind {kind} at record offset {reader.Position - 1} is unknown (0-6).");
            }

            length += 2;
            if (rep0 >= position || length > content.Length - position || !MatchHolds(content, position, rep0 + 1, length))
            {
                throw DeltaException.Corrupted($"{reader.Where}: a match of {length} bytes at content offset {position} does not repeat distance {rep0 + 1}.");
            }

            position += length;
        }

        if (!reader.AtEnd)
        {
            throw DeltaException.Corrupted($"{reader.Where}: {reader.Remaining} bytes follow the decisions that cover the content.");
        }
    }

    /// <summary>True when the bytes at <paramref name="position"/> are what a decoder's copy from <paramref name="distance"/> back gives (a copy may overlap itself).</summary>
    private static bool MatchHolds(ReadOnlySpan<byte> content, int position, int distance, int length)
    {
        if (distance >= length)
        {
            return content.Slice(position, length).SequenceEqual(content.Slice(position - distance, length));
        }

        for (var i = 0; i < length; i++)
        {
            if (content[position + i] != content[position + i - distance])
            {
                return false;
            }
        }

        return true;
    }

    private static void FlushLiterals(ByteWriter decisions, ref int literals)
    {
        if (literals > 0)
        {
            decisions.U8(LiteralRun);
            decisions.VarU((uint)literals);
            literals = 0;
        }
    }

    private static void CopyMatch(Span<byte> output, int position, int distance, int length)
    {
        if (distance >= length)
        {
            output.Slice(position - distance, length).CopyTo(output[position..]);
            return;
        }

        for (var i = 0; i < length; i++)
        {
            output[position + i] = output[position + i - distance];
        }
    }

    private static int SlotOf(int distance)
    {
        if (distance < 4)
        {
            return distance;
        }

        var top = 31 - System.Numerics.BitOperations.LeadingZeroCount((uint)distance);
        return (top << 1) | ((distance >> (top - 1)) & 1);
    }

    private int DecodeLength(ref RangeDecoder rc, int model, int posState)
    {
        var p = _probabilities;
        if (rc.Bit(ref p[model]) == 0)
        {
            return Tree(ref rc, model + 2 + (posState << 3), 3);
        }

        return rc.Bit(ref p[model + 1]) == 0
            ? 8 + Tree(ref rc, model + 2 + 128 + (posState << 3), 3)
            : 16 + Tree(ref rc, model + 2 + 256, 8);
    }

    private void EncodeLength(ref RangeEncoder rc, int model, int posState, int length)
    {
        var p = _probabilities;
        if (length < 8)
        {
            rc.Bit(ref p[model], 0);
            Tree(ref rc, model + 2 + (posState << 3), 3, length);
        }
        else if (length < 16)
        {
            rc.Bit(ref p[model], 1);
            rc.Bit(ref p[model + 1], 0);
            Tree(ref rc, model + 2 + 128 + (posState << 3), 3, length - 8);
        }
        else
        {
            rc.Bit(ref p[model], 1);
            rc.Bit(ref p[model + 1], 1);
            Tree(ref rc, model + 2 + 256, 8, length - 16);
        }
    }

    private int Tree(ref RangeDecoder rc, int model, int bits)
    {
        var m = 1;
        for (var i = 0; i < bits; i++)
        {
            m = (m << 1) | rc.Bit(ref _probabilities[model + m]);
        }

        return m - (1 << bits);
    }

    private void Tree(ref RangeEncoder rc, int model, int bits, int value)
    {
        var m = 1;
        for (var i = bits - 1; i >= 0; i--)
        {
            var bit = (value >> i) & 1;
            rc.Bit(ref _probabilities[model + m], bit);
            m = (m << 1) | bit;
        }
    }

    private int ReverseTree(ref RangeDecoder rc, int model, int bits)
    {
        int m = 1, result = 0;
        for (var i = 0; i < bits; i++)
        {
            var bit = rc.Bit(ref _probabilities[model + m]);
            m = (m << 1) | bit;
            result |= bit << i;
        }

        return result;
    }

    private void ReverseTree(ref RangeEncoder rc, int model, int bits, int value)
    {
        var m = 1;
        for (var i = 0; i < bits; i++)
        {
            var bit = (value >> i) & 1;
            rc.Bit(ref _probabilities[model + m], bit);
            m = (m << 1) | bit;
        }
    }

    /// <summary>LZMA's range decoder over one chunk; reading past it sets <see cref="Overrun"/> and yields zeros.</summary>
    private ref struct RangeDecoder
    {
        private readonly ReadOnlySpan<byte> _input;
        private int _position;
        private uint _range;
        private uint _code;

        public RangeDecoder(ReadOnlySpan<byte> input)
        {
            _input = input;
            _range = uint.MaxValue;
            _code = BinaryPrimitives.ReadUInt32BigEndian(input[1..]);
            _position = 5;
        }

        public readonly bool Overrun => _position > _input.Length;

        /// <summary>The whole chunk read and the code at zero, as a complete LZMA2 chunk leaves it.</summary>
        public readonly bool Finished => _position == _input.Length && _code == 0;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public int Bit(ref ushort probability)
        {
            var bound = (_range >> 11) * probability;
            int bit;
            if (_code < bound)
            {
                _range = bound;
                probability += (ushort)((2048 - probability) >> 5);
                bit = 0;
            }
            else
            {
                _range -= bound;
                _code -= bound;
                probability -= (ushort)(probability >> 5);
                bit = 1;
            }

            Normalize();
            return bit;
        }

        public int Direct(int bits)
        {
            var result = 0;
            for (var i = 0; i < bits; i++)
            {
                _range >>= 1;
                var bit = _code >= _range ? 1 : 0;
                if (bit == 1)
                {
                    _code -= _range;
                }

                result = (result << 1) | bit;
                Normalize();
            }

            return result;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void Normalize()
        {
            if (_range < (1u << 24))
            {
                _range <<= 8;
                _code = (_code << 8) | (_position < _input.Length ? _input[_position] : 0u);
                _position++;
            }
        }
    }

    /// <summary>LZMA's range encoder (carry propagation through a cached byte and a run of 0xFF).</summary>
    private ref struct RangeEncoder
    {
        private readonly Span<byte> _output;
        private readonly string _where;
        private int _position;
        private ulong _low;
        private uint _range;
        private byte _cache;
        private long _cacheSize;

        public RangeEncoder(Span<byte> output, string where)
        {
            _output = output;
            _where = where;
            _range = uint.MaxValue;
            _cacheSize = 1;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Bit(ref ushort probability, int bit)
        {
            var bound = (_range >> 11) * probability;
            if (bit == 0)
            {
                _range = bound;
                probability += (ushort)((2048 - probability) >> 5);
            }
            else
            {
                _low += bound;
                _range -= bound;
                probability -= (ushort)(probability >> 5);
            }

            while (_range < (1u << 24))
            {
                _range <<= 8;
                ShiftLow();
            }
        }

        public void Direct(int value, int bits)
        {
            for (var i = bits - 1; i >= 0; i--)
            {
                _range >>= 1;
                if (((value >> i) & 1) != 0)
                {
                    _low += _range;
                }

                while (_range < (1u << 24))
                {
                    _range <<= 8;
                    ShiftLow();
                }
            }
        }

        /// <summary>Writes out what is pending; returns the chunk's compressed length.</summary>
        public int Flush()
        {
            for (var i = 0; i < 5; i++)
            {
                ShiftLow();
            }

            return _position;
        }

        private void ShiftLow()
        {
            if ((uint)_low < 0xFF000000u || (_low >> 32) != 0)
            {
                var carry = (byte)(_low >> 32);
                var pending = _cache;
                do
                {
                    if (_position >= _output.Length)
                    {
                        throw DeltaException.Corrupted($"{_where}: the replayed stream does not fit in {_output.Length} bytes.");
                    }

                    _output[_position++] = (byte)(pending + carry);
                    pending = 0xFF;
                }
                while (--_cacheSize != 0);

                _cache = (byte)(_low >> 24);
            }

            _cacheSize++;
            _low = (_low & 0x00FFFFFF) << 8;
        }
    }
}
