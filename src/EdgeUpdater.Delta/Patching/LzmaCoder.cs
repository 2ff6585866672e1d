using System.Runtime.InteropServices;
using EdgeUpdater.Delta.Interop;

namespace EdgeUpdater.Delta.Patching;

/// <summary>
/// Raw LZMA2 frames (no .xz container) through liblzma, optionally behind a BCJ filter that turns the
/// relative branch targets of machine code into absolute ones: content of new files, which has nothing
/// in the old image to be patched against, coded with a window much larger than one SquashFS block.
/// </summary>
internal static unsafe class LzmaCoder
{
    /// <summary>liblzma's smallest dictionary.</summary>
    public const int MinDictionary = 4096;

    /// <summary>The dictionary for <paramref name="contentLength"/> bytes: all of it, within liblzma's minimum and the format's maximum.</summary>
    public static int DictionaryFor(int contentLength) => Math.Clamp(contentLength, MinDictionary, Format.DeltaFormat.MaxLzmaDictionary);

    /// <summary>Preset of the generator: LZMA2 normal mode, bt4 match finder (presets 7-9 only grow the dictionary).</summary>
    public const uint Preset = 6;

    /// <summary>BCJ filter ids (liblzma's) a frame may name.</summary>
    public const byte X86 = 0x04;

    /// <summary>The ARM64 BCJ filter (liblzma 5.4 and later).</summary>
    public const byte Arm64 = 0x0A;

    /// <summary>True for "no filter" and the BCJ filters liblzma defines (x86, PowerPC, IA-64, ARM, ARM-Thumb, SPARC, ARM64, RISC-V).</summary>
    public static bool IsKnownFilter(byte filter) => filter == 0 || filter is >= 0x04 and <= 0x0B;

    /// <summary>The local liblzma's version as <c>major.minor.patch</c>, or null without liblzma.</summary>
    public static Version? LocalVersion
    {
        get
        {
            try
            {
                var n = Lzma.VersionNumber();
                return new Version((int)(n / 10_000_000), (int)(n / 10_000 % 1000), (int)(n / 10 % 1000));
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                return null;
            }
        }
    }

    /// <summary>True when the local liblzma can encode LZMA2 behind <paramref name="filter"/>.</summary>
    public static bool CanEncode(byte filter)
    {
        try
        {
            return Lzma.FilterEncoderIsSupported(Lzma.FilterLzma2) != 0 && (filter == 0 || Lzma.FilterEncoderIsSupported(filter) != 0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>
    /// Encodes <paramref name="content"/>; null when the frame would not fit in <paramref name="capacity"/>
    /// bytes (it would not pay).
    /// </summary>
    public static byte[]? Encode(ReadOnlySpan<byte> content, byte filter, int dictionarySize, int capacity)
    {
        var options = stackalloc byte[Lzma.OptionsSize];
        new Span<byte>(options, Lzma.OptionsSize).Clear();
        if (Lzma.LzmaPreset(options, Preset) != 0)
        {
            throw new DeltaException(DeltaErrorCategory.Unsupported, $"liblzma rejected preset {Preset}.");
        }

        *(uint*)options = (uint)Math.Max(MinDictionary, dictionarySize);
        var output = new byte[Math.Max(0, capacity)];
        nuint written = 0;
        var filters = stackalloc Lzma.Filter[3];
        FillFilters(filters, filter, options);
        fixed (byte* input = content)
        fixed (byte* o = output)
        {
            var rc = Lzma.RawBufferEncode(filters, null, input, (nuint)content.Length, o, &written, (nuint)output.Length);
            if (rc == Lzma.BufError)
            {
                return null;
            }

            if (rc != Lzma.Ok)
            {
                throw new DeltaException(DeltaErrorCategory.Unsupported, $"liblzma lzma_raw_buffer_encode failed with {rc} (filter 0x{filter:x2}).");
            }
        }

        return output.AsSpan(0, (int)written).ToArray();
    }

    /// <summary>Decodes <paramref name="frame"/> into exactly <paramref name="destination"/>; refuses anything else.</summary>
    public static void Decode(ReadOnlySpan<byte> frame, byte filter, int dictionarySize, Span<byte> destination, string where)
    {
        // liblzma allocates the dictionary: callers pass a size checked against the frame (ContentFrame.ReadHead).
        if (dictionarySize is < MinDictionary or > Format.DeltaFormat.MaxLzmaDictionary)
        {
            throw DeltaException.Overflow($"{where}: LZMA2 dictionary of {dictionarySize} bytes; {MinDictionary} to {Format.DeltaFormat.MaxLzmaDictionary} allowed.");
        }

        var options = stackalloc byte[Lzma.OptionsSize];
        new Span<byte>(options, Lzma.OptionsSize).Clear();
        *(uint*)options = (uint)dictionarySize;
        var filters = stackalloc Lzma.Filter[3];
        FillFilters(filters, filter, options);
        nuint read = 0;
        nuint written = 0;
        int rc;
        try
        {
            if (filter != 0 && Lzma.FilterDecoderIsSupported(filter) == 0)
            {
                throw new DeltaException(DeltaErrorCategory.CodecMismatch, $"{where}: this device's liblzma {Marshal.PtrToStringUTF8((nint)Lzma.VersionString())} cannot decode BCJ filter 0x{filter:x2}.");
            }

            fixed (byte* f = frame)
            fixed (byte* d = destination)
            {
                rc = Lzma.RawBufferDecode(filters, null, f, &read, (nuint)frame.Length, d, &written, (nuint)destination.Length);
            }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            throw new DeltaException(DeltaErrorCategory.CodecMismatch, $"{where}: the delta has LZMA2 frames and this device has no liblzma.", e);
        }

        if (rc != Lzma.Ok)
        {
            throw DeltaException.Corrupted($"{where}: the LZMA2 frame does not decode to {destination.Length} bytes (liblzma error {rc}).");
        }

        if ((int)read != frame.Length || (int)written != destination.Length)
        {
            throw DeltaException.Corrupted($"{where}: the LZMA2 frame decoded {written} bytes from {read} of its {frame.Length} bytes; {destination.Length} bytes from all of them expected.");
        }
    }

    /// <summary>The chain: optional BCJ, LZMA2, terminator (three entries).</summary>
    private static void FillFilters(Lzma.Filter* filters, byte filter, byte* lzmaOptions)
    {
        var i = 0;
        if (filter != 0)
        {
            filters[i++] = new Lzma.Filter { Id = filter, Options = null };
        }

        filters[i++] = new Lzma.Filter { Id = Lzma.FilterLzma2, Options = lzmaOptions };
        filters[i] = new Lzma.Filter { Id = Lzma.VliUnknown, Options = null };
    }
}
