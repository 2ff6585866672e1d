using System.Security.Cryptography;
using EdgeUpdater.Delta.Format;
using EdgeUpdater.SquashFs.IO;
using Xunit;

namespace EdgeUpdater.Delta.Tests.Apply;

/// <summary>Every rule of the format refuses a hostile or broken delta with a precise category, before success is declared.</summary>
public sealed class HostileDeltaTests
{
    internal static readonly byte[] Base = RandomBytes(65536, 1);
    internal static readonly byte[] Target = [.. Base.AsSpan(0, 30000), .. RandomBytes(5000, 2), .. Base.AsSpan(40000)];

    private static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    internal static DeltaHeader Header(byte[]? target = null, string codec = "", ushort version = Format.DeltaFormat.Version) => new()
    {
        Version = version,
        Mode = DeltaMode.Generic,
        Level = DeltaLevel.Fast,
        BaseSize = Base.Length,
        BaseSha256 = SHA256.HashData(Base),
        TargetSize = (target ?? Target).Length,
        TargetSha256 = SHA256.HashData(target ?? Target),
        CodecIdentity = codec,
    };

    internal static byte[] Build(DeltaHeader header, params (SectionKind Kind, byte[] Payload)[] sections)
    {
        using var writer = new SectionWriter(Stream.Null);
        var bytes = new List<byte>(header.Encode());
        foreach (var (kind, payload) in sections)
        {
            bytes.AddRange(writer.Encode(kind, payload, 0));
        }

        return [.. bytes];
    }

    internal static byte[] End(long size)
    {
        var w = new ByteWriter();
        w.U64((ulong)size);
        return w.ToArray();
    }

    internal static byte[] Ops(Action<ByteWriter> write)
    {
        var w = new ByteWriter();
        write(w);
        return w.ToArray();
    }

    private static byte[] ValidDelta() => Build(
        Header(),
        (SectionKind.Ops, Ops(w =>
        {
            w.U8((byte)OpCode.Copy);
            w.VarS(0);
            w.VarU(30000);
            w.U8((byte)OpCode.Literal);
            w.Blob(Target.AsSpan(30000, 5000));
            w.U8((byte)OpCode.Copy);
            w.VarS(10000);
            w.VarU((ulong)(Base.Length - 40000));
        })),
        (SectionKind.End, End(Target.Length)));

    internal static async Task<DeltaException> RefusedAsync(byte[] delta, byte[]? baseImage = null, DeltaApplyOptions? options = null)
    {
        var e = await Assert.ThrowsAsync<DeltaException>(() => DeltaTestKit.ApplyAsync(baseImage ?? Base, delta, options).WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.False(string.IsNullOrWhiteSpace(e.Message));
        return e;
    }

    [Fact]
    public async Task The_handmade_valid_delta_applies()
    {
        DeltaTestKit.AssertSameImage(Target, await DeltaTestKit.ApplyAsync(Base, ValidDelta()));
    }

    /// <summary>An XOR op is built in the 1 MiB write buffer: one of 3 MiB, not aligned to it, spans four fills.</summary>
    [Fact]
    public async Task An_xor_op_longer_than_the_write_buffer_gives_the_target()
    {
        var baseImage = RandomBytes(4 << 20, 3);
        var mask = RandomBytes(3 << 20, 4);
        var target = (byte[])baseImage.Clone();
        const int start = 100_001;
        for (var i = 0; i < mask.Length; i++)
        {
            target[start + i] ^= mask[i];
        }

        var header = Header(target) with { BaseSize = baseImage.Length, BaseSha256 = SHA256.HashData(baseImage) };
        var delta = Build(header, (SectionKind.Ops, Ops(w =>
        {
            w.U8((byte)OpCode.Copy);
            w.VarS(0);
            w.VarU(start);
            w.U8((byte)OpCode.XorBase);
            w.VarU(start);
            w.Blob(mask);
            w.U8((byte)OpCode.Copy);
            w.VarS(mask.Length);
            w.VarU((ulong)(baseImage.Length - start - mask.Length));
        })), (SectionKind.End, End(target.Length)));
        DeltaTestKit.AssertSameImage(target, await DeltaTestKit.ApplyAsync(baseImage, delta));
    }

    [Fact]
    public async Task An_unknown_version_is_refused()
    {
        foreach (var version in new byte[] { 0, DeltaFormat.Version + 1, 255 })
        {
            var delta = ValidDelta();
            delta[8] = version;
            var e = await RefusedAsync(delta);
            Assert.Equal(DeltaErrorCategory.UnsupportedVersion, e.Category);
            Assert.Contains($"version {version}", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_bad_magic_or_header_checksum_is_refused()
    {
        var delta = ValidDelta();
        delta[0] ^= 1;
        Assert.Equal(DeltaErrorCategory.Corrupted, (await RefusedAsync(delta)).Category);
        delta = ValidDelta();
        delta[20] ^= 1;
        Assert.Equal(DeltaErrorCategory.Corrupted, (await RefusedAsync(delta)).Category);
    }

    [Theory]
    [InlineData(BaseVerification.WhenFailed)]
    [InlineData(BaseVerification.Beside)]
    [InlineData(BaseVerification.BeforeWriting)]
    public async Task The_wrong_base_is_refused(BaseVerification verification)
    {
        var options = new DeltaApplyOptions { VerifyBase = verification };
        Assert.Equal(DeltaErrorCategory.WrongBase, (await RefusedAsync(ValidDelta(), Base[..1000], options)).Category);
        var other = (byte[])Base.Clone();
        other[50000] ^= 1;
        var e = await RefusedAsync(ValidDelta(), other, options);
        Assert.Equal(DeltaErrorCategory.WrongBase, e.Category);
        Assert.Contains(Convert.ToHexStringLower(SHA256.HashData(Base)), e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task On_request_the_wrong_base_is_refused_before_anything_is_written()
    {
        var other = (byte[])Base.Clone();
        other[10] ^= 1;
        using var output = new MemoryStream();
        using var sink = new StreamImageSink(output, leaveOpen: true);
        using var source = new MemoryImageSource(other);
        var e = await Assert.ThrowsAsync<DeltaException>(() => DeltaApplier.ApplyAsync(source, new MemoryStream(ValidDelta()), sink, new DeltaApplyOptions { VerifyBase = BaseVerification.BeforeWriting }));
        Assert.Equal(DeltaErrorCategory.WrongBase, e.Category);
        Assert.Equal(0, output.Length);
    }

    [Theory]
    [InlineData(BaseVerification.WhenFailed)]
    [InlineData(BaseVerification.Beside)]
    public async Task A_wrong_base_wins_over_the_damage_it_causes(BaseVerification verification)
    {
        // A SquashFS delta applied to another image of the same size, whose inode table does not decompress:
        // whatever breaks, the answer is WrongBase.
        var image = await MakeTinySquashFsAsync();
        var other = (byte[])image.Clone();
        var inodeTable = (int)System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(image.AsSpan(64));
        other[inodeTable + 4] ^= 0xFF;
        var (delta, _) = await DeltaTestKit.GenerateAsync(image, image);
        Assert.Equal(DeltaErrorCategory.WrongBase, (await RefusedAsync(delta, other, new DeltaApplyOptions { VerifyBase = verification })).Category);
    }

    [Fact]
    public async Task Without_base_verification_a_wrong_base_still_never_succeeds()
    {
        var other = (byte[])Base.Clone();
        other[50000] ^= 1;
        var e = await RefusedAsync(ValidDelta(), other, new DeltaApplyOptions { VerifyBase = BaseVerification.SizeOnly });
        Assert.Equal(DeltaErrorCategory.VerificationFailed, e.Category);
    }

    [Fact]
    public async Task Hashed_when_failed_a_base_that_differs_only_where_the_new_image_takes_nothing_gives_the_new_image()
    {
        // The new image takes bytes 0-30000 and 40000-65536 of the base; byte 35000 is never read.
        var other = (byte[])Base.Clone();
        other[35000] ^= 1;
        DeltaTestKit.AssertSameImage(Target, await DeltaTestKit.ApplyAsync(other, ValidDelta(), new DeltaApplyOptions { VerifyBase = BaseVerification.WhenFailed }));
        Assert.Equal(DeltaErrorCategory.WrongBase, (await RefusedAsync(ValidDelta(), other, new DeltaApplyOptions { VerifyBase = BaseVerification.Beside })).Category);
    }

    [Theory]
    [InlineData(BaseVerification.WhenFailed, false)]
    [InlineData(BaseVerification.SizeOnly, false)]
    [InlineData(BaseVerification.Beside, true)]
    [InlineData(BaseVerification.BeforeWriting, true)]
    public async Task A_successful_apply_reads_the_whole_base_only_when_asked_to_hash_it(BaseVerification verification, bool hashed)
    {
        using var source = new CountingSource(Base);
        using var output = new MemoryStream();
        using (var sink = new StreamImageSink(output, leaveOpen: true))
        {
            await DeltaApplier.ApplyAsync(source, new MemoryStream(ValidDelta()), sink, new DeltaApplyOptions { VerifyBase = verification });
        }

        DeltaTestKit.AssertSameImage(Target, output.ToArray());
        const long Copied = 30000 + 65536 - 40000;
        Assert.Equal(hashed ? Copied + Base.Length : Copied, source.BytesRead);
    }

    /// <summary>An image in memory that counts the bytes read from it (and offers no span, so every read counts).</summary>
    private sealed class CountingSource(byte[] bytes) : IImageSource
    {
        private readonly MemoryImageSource _inner = new(bytes);
        private long _bytesRead;

        public long BytesRead => Interlocked.Read(ref _bytesRead);

        public long Length => _inner.Length;

        public void ReadAt(long offset, Span<byte> destination)
        {
            _inner.ReadAt(offset, destination);
            Interlocked.Add(ref _bytesRead, destination.Length);
        }

        public ValueTask ReadAtAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
        {
            ReadAt(offset, destination.Span);
            return ValueTask.CompletedTask;
        }

        public void Dispose() => _inner.Dispose();
    }

    [Fact]
    public async Task Every_truncation_is_refused()
    {
        var delta = ValidDelta();
        for (var length = 0; length < delta.Length; length += length < 200 ? 1 : 97)
        {
            var e = await RefusedAsync(delta[..length]);
            Assert.True(e.Category == DeltaErrorCategory.Truncated, $"cut at {length}: {e.Category} {e.Message}");
        }
    }

    [Fact]
    public async Task A_section_checksum_mismatch_is_refused()
    {
        var delta = ValidDelta();
        delta[^40] ^= 0x10;
        Assert.Equal(DeltaErrorCategory.Corrupted, (await RefusedAsync(delta)).Category);
    }

    [Fact]
    public async Task Copies_outside_the_base_are_refused()
    {
        foreach (var (offset, length) in new[] { (Base.Length - 10L, 100UL), (-5L, 10UL), (30000L, 40000UL) })
        {
            var delta = Build(Header(), (SectionKind.Ops, Ops(w =>
            {
                w.U8((byte)OpCode.Copy);
                w.VarS(offset);
                w.VarU(length);
            })), (SectionKind.End, End(Target.Length)));
            Assert.Equal(DeltaErrorCategory.OutOfBounds, (await RefusedAsync(delta)).Category);
        }

        var xor = Build(Header(), (SectionKind.Ops, Ops(w =>
        {
            w.U8((byte)OpCode.XorBase);
            w.VarU((ulong)Base.Length - 2);
            w.Blob(new byte[4]);
        })), (SectionKind.End, End(Target.Length)));
        Assert.Equal(DeltaErrorCategory.OutOfBounds, (await RefusedAsync(xor)).Category);
    }

    [Fact]
    public async Task Writes_past_the_new_image_are_refused()
    {
        var small = new byte[100];
        var delta = Build(Header(small), (SectionKind.Ops, Ops(w =>
        {
            w.U8((byte)OpCode.Literal);
            w.Blob(new byte[101]);
        })), (SectionKind.End, End(100)));
        Assert.Equal(DeltaErrorCategory.OutOfBounds, (await RefusedAsync(delta)).Category);
        var zeros = Build(Header(small), (SectionKind.Ops, Ops(w =>
        {
            w.U8((byte)OpCode.Zeros);
            w.VarU(50);
            w.U8((byte)OpCode.Zeros);
            w.VarU(51);
        })), (SectionKind.End, End(100)));
        Assert.Equal(DeltaErrorCategory.OutOfBounds, (await RefusedAsync(zeros)).Category);
    }

    [Fact]
    public async Task Length_overflows_are_refused()
    {
        var huge = Build(Header(), (SectionKind.Ops, Ops(w =>
        {
            w.U8((byte)OpCode.Zeros);
            w.VarU(ulong.MaxValue);
        })), (SectionKind.End, End(Target.Length)));
        Assert.Equal(DeltaErrorCategory.Overflow, (await RefusedAsync(huge)).Category);
        var varint = Build(Header(), (SectionKind.Ops, [(byte)OpCode.Zeros, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]), (SectionKind.End, End(Target.Length)));
        Assert.Equal(DeltaErrorCategory.Overflow, (await RefusedAsync(varint)).Category);

        var section = ValidDelta();
        var headerLength = Header().Encode().Length;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(section.AsSpan(headerLength + 6), uint.MaxValue);
        Assert.Equal(DeltaErrorCategory.Overflow, (await RefusedAsync(section)).Category);
    }

    [Fact]
    public async Task Unknown_kinds_and_codes_are_refused()
    {
        var op = Build(Header(), (SectionKind.Ops, [0x42]), (SectionKind.End, End(Target.Length)));
        Assert.Equal(DeltaErrorCategory.Corrupted, (await RefusedAsync(op)).Category);
        var kind = Build(Header(), ((SectionKind)0x55, [1, 2, 3]), (SectionKind.End, End(Target.Length)));
        Assert.Equal(DeltaErrorCategory.Corrupted, (await RefusedAsync(kind)).Category);
    }

    [Fact]
    public async Task A_short_result_or_trailing_bytes_are_refused()
    {
        var shortDelta = Build(Header(), (SectionKind.Ops, Ops(w =>
        {
            w.U8((byte)OpCode.Copy);
            w.VarS(0);
            w.VarU(100);
        })), (SectionKind.End, End(Target.Length)));
        Assert.Equal(DeltaErrorCategory.Truncated, (await RefusedAsync(shortDelta)).Category);
        var endMismatch = Build(Header(), (SectionKind.End, End(5)));
        Assert.Equal(DeltaErrorCategory.Corrupted, (await RefusedAsync(endMismatch)).Category);
        Assert.Equal(DeltaErrorCategory.Corrupted, (await RefusedAsync([.. ValidDelta(), 0])).Category);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task Content_references_and_uses_are_bounds_checked(ushort version)
    {
        byte[] Content(long refOffset, int refLength, int contentLength)
        {
            var w = new ByteWriter();
            w.VarU((ulong)contentLength);
            if (version > 1)
            {
                w.U8((byte)FrameCoder.Zstd);
            }

            w.VarU(1);
            w.U8((byte)ReferenceKind.Raw);
            w.VarS(refOffset);
            w.VarU((ulong)refLength);
            using var zstd = new Patching.ZstdPatcher();
            w.Blob(zstd.Compress([], new byte[contentLength], 3).Span);
            return w.ToArray();
        }

        DeltaHeader Header() => HostileDeltaTests.Header(version: version);

        var outside = Build(Header(), (SectionKind.Content, Content(Base.Length - 10, 100, 10)), (SectionKind.End, End(Target.Length)));
        Assert.Equal(DeltaErrorCategory.OutOfBounds, (await RefusedAsync(outside)).Category);
        var tooLarge = Build(Header(), (SectionKind.Content, Content(0, DeltaFormat.MaxReferenceLength + 1, 10)), (SectionKind.End, End(Target.Length)));
        Assert.Equal(DeltaErrorCategory.Overflow, (await RefusedAsync(tooLarge)).Category);
        var overuse = Build(Header(), (SectionKind.Content, Content(0, 100, 10)), (SectionKind.Ops, Ops(w =>
        {
            w.U8((byte)OpCode.Block);
            w.U8((byte)BlockFlags.Uncompressed);
            w.VarU(11);
            w.VarU(11);
            w.U32(0);
        })), (SectionKind.End, End(Target.Length)));
        Assert.Equal(DeltaErrorCategory.OutOfBounds, (await RefusedAsync(overuse)).Category);
        var unused = Build(Header(), (SectionKind.Content, Content(0, 100, 10)), (SectionKind.End, End(Target.Length)));
        Assert.Equal(DeltaErrorCategory.Corrupted, (await RefusedAsync(unused)).Category);
        var badCheck = Build(Header(), (SectionKind.Content, Content(0, 100, 10)), (SectionKind.Ops, Ops(w =>
        {
            w.U8((byte)OpCode.Block);
            w.U8((byte)BlockFlags.Uncompressed);
            w.VarU(10);
            w.VarU(10);
            w.U32(12345);
        })), (SectionKind.End, End(Target.Length)));
        Assert.Equal(DeltaErrorCategory.CodecMismatch, (await RefusedAsync(badCheck)).Category);
    }

    [Fact]
    public void Patch_frames_past_the_window_limit_are_refused()
    {
        using var zstd = new Patching.ZstdPatcher();
        // Random bytes, the target a copy of the reference's start: the frame cannot be decoded from itself alone.
        var reference = new byte[(int)ZstdWindowTestLimit()];
        new Random(5).NextBytes(reference);
        var target = reference.AsSpan(0, 1 << 20).ToArray();
        var frame = zstd.Compress(reference, target, 1).ToArray();
        var e = Assert.Throws<DeltaException>(() => zstd.Decode([], frame, new byte[target.Length], "test"));
        Assert.Equal(DeltaErrorCategory.Corrupted, e.Category);
        Assert.Throws<DeltaException>(() => zstd.Compress(new byte[40 << 20], target, 1));
    }

    private static long ZstdWindowTestLimit() => (1L << Patching.ZstdPatcher.MaxWindowLog) - (2 << 20);

    [Fact]
    public async Task A_codec_mismatch_is_refused_before_anything_is_written()
    {
        // A real SquashFS delta whose header names a codec this machine does not have.
        var header = new DeltaHeader
        {
            Mode = DeltaMode.SquashFs,
            Level = DeltaLevel.Best,
            BaseSize = Base.Length,
            BaseSha256 = SHA256.HashData(Base),
            TargetSize = Target.Length,
            TargetSha256 = SHA256.HashData(Target),
            UsesRecompression = true,
            Compressor = 4,
            BlockSize = 131072,
            CodecIdentity = "xz/0.0.1",
        };
        var image = await MakeTinySquashFsAsync();
        var delta = Build(header with { BaseSize = image.Length, BaseSha256 = SHA256.HashData(image) }, (SectionKind.End, End(Target.Length)));
        using var output = new MemoryStream();
        using var sink = new StreamImageSink(output, leaveOpen: true);
        using var source = new MemoryImageSource(image);
        var e = await Assert.ThrowsAsync<DeltaException>(() => DeltaApplier.ApplyAsync(source, new MemoryStream(delta), sink));
        Assert.Equal(DeltaErrorCategory.CodecMismatch, e.Category);
        Assert.Equal(0, output.Length);
    }

    [Fact]
    public async Task A_block_that_recompresses_to_another_size_is_a_codec_mismatch_not_a_wrapped_error()
    {
        // Valid checksums, this machine's own codec, but a block whose stored size no compressor gave:
        // the recompression (on worker threads) must fail as a DeltaException, like any other rule.
        var image = await MakeTinySquashFsAsync("gzip");
        const uint blockSize = 131072;
        using var codec = SquashFs.Compression.SquashFsCodec.Create(SquashFs.Compression.CompressorOptions.Parse(SquashFs.Format.CompressorId.Gzip, [], blockSize), blockSize);
        var content = System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, 2000).Select(i => $"line {i % 97}\n")));
        var frame = new ByteWriter();
        frame.VarU((ulong)content.Length);
        frame.U8((byte)FrameCoder.Zstd);
        frame.VarU(0);
        using (var zstd = new Patching.ZstdPatcher())
        {
            frame.Blob(zstd.Compress([], content, 3).Span);
        }

        const int claimedStored = 123;
        var ops = Ops(w =>
        {
            w.U8((byte)OpCode.Block);
            w.U8(0);
            w.VarU((ulong)content.Length);
            w.VarU(claimedStored);
            w.U32(0);
        });
        var header = new DeltaHeader
        {
            Mode = DeltaMode.SquashFs,
            Level = DeltaLevel.Best,
            BaseSize = image.Length,
            BaseSha256 = SHA256.HashData(image),
            TargetSize = claimedStored,
            TargetSha256 = new byte[32],
            UsesRecompression = true,
            Compressor = (ushort)SquashFs.Format.CompressorId.Gzip,
            BlockSize = (int)blockSize,
            CodecIdentity = codec.Identity,
        };
        var delta = Build(header, (SectionKind.Content, frame.ToArray()), (SectionKind.Ops, ops), (SectionKind.End, End(claimedStored)));
        var e = await RefusedAsync(delta, image);
        Assert.Equal(DeltaErrorCategory.CodecMismatch, e.Category);
        Assert.Contains($"the generator's gave {claimedStored}", e.Message, StringComparison.Ordinal);
    }

    private static async Task<byte[]> MakeTinySquashFsAsync(string compressor = "xz")
    {
        using var temp = new Testing.TempDirectory("delta-tiny");
        Directory.CreateDirectory(temp.Combine("src"));
        await File.WriteAllTextAsync(temp.Combine("src", "a.txt"), "hello");
        await Testing.ExternalTool.RunCheckedAsync("mksquashfs", [temp.Combine("src"), temp.Combine("x.sqfs"), "-comp", compressor, "-noappend", "-no-progress", "-quiet"]);
        return await File.ReadAllBytesAsync(temp.Combine("x.sqfs"));
    }
}
