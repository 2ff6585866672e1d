using EdgeUpdater.Delta;
using EdgeUpdater.Server.Deltas;
using EdgeUpdater.Server.Hosting;
using EdgeUpdater.Server.Tests.Support;
using EdgeUpdater.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace EdgeUpdater.Server.Tests.Deltas;

/// <summary>
/// The server keeps one reproduction record per target image: generations share it, it survives a restart on
/// disk, it is really consulted (a record that says "does not reproduce" makes a bigger delta that still
/// rebuilds the image), and a damaged file costs only the proofs.
/// </summary>
public sealed class ReproductionRecordsTests : IDisposable
{
    private readonly TempDirectory _work = new("reproduction-records");

    public void Dispose() => _work.Dispose();

    [Theory]
    [InlineData("xz")]
    [InlineData("gzip")]
    public async Task Generations_to_one_image_share_its_record_and_it_survives_a_restart(string compressor)
    {
        var (v1, v2) = await TestImages.BuildReleasePairAsync(_work, "demo", compressor);
        var records = NewRecords();
        var generator = new LibraryDeltaGenerator(new ServerOptions { DataDirectory = _work.Path }, records);
        var proven = await GenerateAsync(generator, v1, v2);
        await AssertRebuildsAsync(v1, v2, proven);

        var record = records.For(v2.Sha256);
        Assert.True(record.Count > 0, "the best generation recorded its proofs");
        Assert.Equal(v2.Sha256, record.ImageSha256);
        var file = Path.Combine(records.Directory, v2.Sha256 + ".record");
        Assert.True(File.Exists(file));

        // A restarted server reads the record back; a generation with it gives the same delta.
        var restarted = NewRecords();
        Assert.Equal(record.Count, restarted.For(v2.Sha256).Count);
        var again = await GenerateAsync(new LibraryDeltaGenerator(new ServerOptions { DataDirectory = _work.Path }, restarted), v1, v2);
        Assert.Equal(proven, again);

        // The record is consulted: told that nothing reproduces, the generator sends those blocks literally.
        foreach (var offset in restarted.For(v2.Sha256).Offsets.ToList())
        {
            restarted.For(v2.Sha256).Set(offset, false);
        }

        var pessimistic = await GenerateAsync(new LibraryDeltaGenerator(new ServerOptions { DataDirectory = _work.Path }, restarted), v1, v2);
        Assert.True(pessimistic.Length > proven.Length, $"{pessimistic.Length} bytes without recompression, {proven.Length} with");
        await AssertRebuildsAsync(v1, v2, pessimistic);
    }

    [Theory]
    [InlineData("xz")]
    [InlineData("zstd")]
    public async Task Preparing_a_target_proves_its_blocks_so_deltas_to_it_prove_nothing_new(string compressor)
    {
        var (v1, v2) = await TestImages.BuildReleasePairAsync(_work, "demo", compressor);
        var plain = await GenerateAsync(new LibraryDeltaGenerator(new ServerOptions { DataDirectory = _work.Path }, new ReproductionRecords(_work.Combine("scratch"), NullLogger<ReproductionRecords>.Instance)), v1, v2);

        var records = NewRecords();
        var generator = new LibraryDeltaGenerator(new ServerOptions { DataDirectory = _work.Path }, records);
        var preparation = await generator.PrepareTargetAsync(v2.Path, v2.Sha256);
        var record = records.For(v2.Sha256);
        Assert.Equal(v2.Sha256, record.ImageSha256);
        Assert.True(File.Exists(Path.Combine(records.Directory, v2.Sha256 + ".record")));
        var prepared = record.Count;
        Assert.True(prepared > 0);

        // mksquashfs's blocks, recompressed by the same libraries with the options the image records: all of them.
        Assert.Equal(new TargetPreparation(prepared, prepared), preparation);

        // Every outcome the generation needs is already there: the record does not grow, the delta is the same.
        var delta = await GenerateAsync(generator, v1, v2);
        Assert.Equal(plain, delta);
        Assert.Equal(prepared, record.Count);

        // Preparing again tries nothing.
        Assert.Equal(0, await ReproductionProver.ProveAsync(v2.Path, record, 2, Convert.FromHexString(v2.Sha256)));
    }

    [Fact]
    public async Task A_damaged_record_file_is_set_aside_and_the_blocks_are_proved_again()
    {
        var (v1, v2) = await TestImages.BuildReleasePairAsync(_work, "demo", "xz");
        var records = NewRecords();
        var proven = await GenerateAsync(new LibraryDeltaGenerator(new ServerOptions { DataDirectory = _work.Path }, records), v1, v2);
        var file = Path.Combine(records.Directory, v2.Sha256 + ".record");
        var bytes = await File.ReadAllBytesAsync(file);
        bytes[bytes.Length / 2] ^= 0xff;
        await File.WriteAllBytesAsync(file, bytes);

        var restarted = NewRecords();
        Assert.Equal(0, restarted.For(v2.Sha256).Count);
        var delta = await GenerateAsync(new LibraryDeltaGenerator(new ServerOptions { DataDirectory = _work.Path }, restarted), v1, v2);
        Assert.Equal(proven, delta);
        Assert.Equal(records.For(v2.Sha256).Count, ReproductionRecord.Read(await File.ReadAllBytesAsync(file)).Count);
    }

    private ReproductionRecords NewRecords() => new(_work.Combine("reproduction"), NullLogger<ReproductionRecords>.Instance);

    private static async Task<byte[]> GenerateAsync(LibraryDeltaGenerator generator, TestImage from, TestImage to)
    {
        using var output = new MemoryStream();
        await generator.GenerateAsync(new DeltaJob(from.Path, to.Path, from.Sha256, to.Sha256, Server.Deltas.DeltaLevel.Best, null, DeltaFormatVersions.Newest), output);
        return output.ToArray();
    }

    private Task AssertRebuildsAsync(TestImage from, TestImage to, byte[] delta) => TestImages.AssertDeltaRebuildsAsync(_work, from, to, delta);
}
