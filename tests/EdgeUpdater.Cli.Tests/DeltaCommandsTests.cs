using System.CommandLine;
using EdgeUpdater.Cli.Commands;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Cli.Tests;

/// <summary><c>edgeupdater delta create | apply | info | prove</c> end to end on real mksquashfs images.</summary>
public sealed class DeltaCommandsTests : IDisposable
{
    private readonly TempDirectory _temp = new("cli-delta");

    private static async Task<int> RunAsync(params string[] args) => (await RunCapturedAsync(args)).Exit;

    private static async Task<(int Exit, string Out, string Err)> RunCapturedAsync(params string[] args)
    {
        var root = new RootCommand { DeltaCommands.Create() };
        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await root.Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, TestContext.Current.CancellationToken);
        return (exit, output.ToString(), error.ToString());
    }

    private async Task<(string A, string B)> MakePairAsync()
    {
        var a = _temp.Combine("a");
        Directory.CreateDirectory(a);
        await new TestTreeBuilder(a)
            .Directory("etc")
            .Directory("usr")
            .Directory("usr/bin")
            .Directory("usr/share")
            .File("etc/os-release", "NAME=edge\nVERSION=1\n"u8.ToArray())
            .File("usr/bin/app", 300_000, 1, mode: 0x1ED)
            .File("usr/share/data.bin", 50_000, 2)
            .BuildAsync();
        var b = _temp.Combine("b");
        await ExternalTool.RunCheckedAsync("cp", ["-a", a, b]);
        await File.WriteAllTextAsync(Path.Combine(b, "etc/os-release"), "NAME=edge\nVERSION=2\n");
        await File.WriteAllBytesAsync(Path.Combine(b, "usr/bin/tool"), TestTreeBuilder.Content(70_000, 3));
        foreach (var (dir, image) in new[] { (a, "a.sqfs"), (b, "b.sqfs") })
        {
            await ExternalTool.RunCheckedAsync("mksquashfs", [dir, _temp.Combine(image), "-comp", "xz", "-noappend", "-no-progress", "-quiet"]);
        }

        return (_temp.Combine("a.sqfs"), _temp.Combine("b.sqfs"));
    }

    [Theory]
    [InlineData("fast")]
    [InlineData("best")]
    public async Task Create_info_and_apply_rebuild_the_image(string level)
    {
        var (a, b) = await MakePairAsync();
        var delta = _temp.Combine($"ab-{level}.eud");
        var output = _temp.Combine($"b-{level}.out");
        Assert.Equal(ExitCodes.Ok, await RunAsync("delta", "create", a, b, "-o", delta, "--level", level));
        Assert.False(File.Exists(delta + ".part"));
        var (exit, info, _) = await RunCapturedAsync("delta", "info", delta);
        Assert.Equal(ExitCodes.Ok, exit);
        Assert.Contains("format 4, mode squashfs, level " + level, info, StringComparison.Ordinal);
        Assert.Contains("data and fragment blocks recompressed on the device", info, StringComparison.Ordinal);
        Assert.Matches(@"\d+ metadata blocks: \d+ recompressed, \d+ replayed, \d+ uncompressed, \d+ literal; tables: \d+ ", info);
        Assert.Equal(ExitCodes.Ok, await RunAsync("delta", "apply", a, delta, "-o", output));
        Assert.Equal(await File.ReadAllBytesAsync(b, TestContext.Current.CancellationToken), await File.ReadAllBytesAsync(output, TestContext.Current.CancellationToken));
        Assert.False(File.Exists(output + ".checkpoint"));
    }

    [Fact]
    public async Task Format_version_writes_a_delta_for_devices_that_read_no_newer()
    {
        var (a, b) = await MakePairAsync();
        foreach (var version in new[] { 2, 3, 4 })
        {
            var delta = _temp.Combine($"ab-v{version}.eud");
            Assert.Equal(ExitCodes.Ok, await RunAsync("delta", "create", a, b, "-o", delta, "--level", "fast", "--format-version", version.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            await using (var stream = File.OpenRead(delta))
            {
                Assert.Equal(version, (await Delta.DeltaInspector.InspectAsync(stream, TestContext.Current.CancellationToken)).Header.Version);
            }

            var output = _temp.Combine($"b-v{version}.out");
            Assert.Equal(ExitCodes.Ok, await RunAsync("delta", "apply", a, delta, "-o", output));
            Assert.Equal(await File.ReadAllBytesAsync(b, TestContext.Current.CancellationToken), await File.ReadAllBytesAsync(output, TestContext.Current.CancellationToken));
        }

        foreach (var version in new[] { "1", "5", "two" })
        {
            Assert.NotEqual(ExitCodes.Ok, await RunAsync("delta", "create", a, b, "-o", _temp.Combine("refused.eud"), "--format-version", version));
            Assert.False(File.Exists(_temp.Combine("refused.eud")));
        }
    }

    [Fact]
    public async Task Max_metadata_tables_sends_larger_tables_as_patched_stored_bytes()
    {
        var (a, b) = await MakePairAsync();
        var within = _temp.Combine("ab-within.eud");
        var over = _temp.Combine("ab-over.eud");
        var (exit, said, _) = await RunCapturedAsync("delta", "create", a, b, "-o", within, "--level", "fast");
        Assert.Equal(ExitCodes.Ok, exit);
        Assert.DoesNotContain("metadata 0 (", said, StringComparison.Ordinal);
        (exit, said, _) = await RunCapturedAsync("delta", "create", a, b, "-o", over, "--level", "fast", "--max-metadata-tables", "100");
        Assert.Equal(ExitCodes.Ok, exit);
        Assert.Contains("metadata 0 (", said, StringComparison.Ordinal);
        var (_, info, _) = await RunCapturedAsync("delta", "info", over);
        Assert.DoesNotContain("metadata blocks:", info, StringComparison.Ordinal);
        var output = _temp.Combine("b-over.out");
        Assert.Equal(ExitCodes.Ok, await RunAsync("delta", "apply", a, over, "-o", output));
        Assert.Equal(await File.ReadAllBytesAsync(b, TestContext.Current.CancellationToken), await File.ReadAllBytesAsync(output, TestContext.Current.CancellationToken));
        Assert.NotEqual(ExitCodes.Ok, await RunAsync("delta", "create", a, b, "-o", _temp.Combine("refused.eud"), "--max-metadata-tables", "-1"));
        Assert.False(File.Exists(_temp.Combine("refused.eud")));
    }

    [Fact]
    public async Task Refusals_map_to_exit_codes()
    {
        var (a, b) = await MakePairAsync();
        var delta = _temp.Combine("ab.eud");
        Assert.Equal(ExitCodes.Ok, await RunAsync("delta", "create", a, b, "-o", delta, "--level", "fast"));
        var (exit, _, error) = await RunCapturedAsync("delta", "apply", b, delta, "-o", _temp.Combine("wrong-base.out"));
        Assert.Equal(ExitCodes.VerificationFailed, exit);
        Assert.StartsWith("error (WrongBase): ", error, StringComparison.Ordinal);
        Assert.NotEqual(ExitCodes.Ok, await RunAsync("delta", "apply", a, delta, "-o", _temp.Combine("b.out"), "--verify-base", "sometimes"));
        var baseBytes = await File.ReadAllBytesAsync(a, TestContext.Current.CancellationToken);
        Assert.Equal(ExitCodes.InvalidInput, await RunAsync("delta", "apply", a, delta, "-o", a));
        Assert.Equal(baseBytes, await File.ReadAllBytesAsync(a, TestContext.Current.CancellationToken));
        var corrupt = await File.ReadAllBytesAsync(delta, TestContext.Current.CancellationToken);
        corrupt[^30] ^= 0xFF;
        await File.WriteAllBytesAsync(_temp.Combine("corrupt.eud"), corrupt, TestContext.Current.CancellationToken);
        Assert.Equal(ExitCodes.InvalidInput, await RunAsync("delta", "apply", a, _temp.Combine("corrupt.eud"), "-o", _temp.Combine("corrupt.out")));
        (exit, _, error) = await RunCapturedAsync("delta", "info", _temp.Combine("corrupt.eud"));
        Assert.Equal(ExitCodes.InvalidInput, exit);
        Assert.StartsWith("error (Corrupted): ", error, StringComparison.Ordinal);
        Assert.NotEqual(ExitCodes.Ok, await RunAsync("delta", "create", a, b, "-o", delta, "--level", "medium"));
    }

    [Fact]
    public async Task An_output_file_system_without_room_is_a_run_time_failure_and_nothing_is_written()
    {
        var (a, b) = await MakePairAsync();
        var delta = _temp.Combine("ab-full.eud");
        Assert.Equal(ExitCodes.Ok, await RunAsync("delta", "create", a, b, "-o", delta, "--level", "fast"));
        await using var small = await ScratchMount.TmpfsAsync(_temp.Combine("small-fs"), new FileInfo(b).Length / 2);
        var output = small.Combine("b.sqfs");

        Assert.Equal(ExitCodes.Failure, await RunAsync("delta", "apply", a, delta, "-o", output));

        Assert.Equal(0, new FileInfo(output).Length);
        Assert.False(File.Exists(output + ".checkpoint"));
    }

    [Fact]
    public async Task A_delta_that_does_not_fit_its_file_system_leaves_nothing_behind()
    {
        var (a, b) = await MakePairAsync();
        await using var small = await ScratchMount.TmpfsAsync(_temp.Combine("small-delta-fs"), 16 << 10);
        var delta = small.Combine("ab.eud");

        Assert.Equal(ExitCodes.Failure, await RunAsync("delta", "create", a, b, "-o", delta, "--level", "fast"));

        Assert.Empty(Directory.EnumerateFileSystemEntries(small.MountPoint));
    }

    [Theory]
    [InlineData("when-failed", true)]
    [InlineData("size-only", true)]
    [InlineData("beside", false)]
    [InlineData("before", false)]
    public async Task Verify_base_picks_when_the_base_is_hashed(string when, bool untouchedBytesMayDiffer)
    {
        var (a, b) = await MakePairAsync();
        var delta = _temp.Combine("ab.eud");
        Assert.Equal(ExitCodes.Ok, await RunAsync("delta", "create", a, b, "-o", delta, "--level", "fast"));

        // A base that differs only in its end padding, which the new image takes nothing from.
        var other = await File.ReadAllBytesAsync(a, TestContext.Current.CancellationToken);
        var bytesUsed = System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(other.AsSpan(40));
        Assert.True(other.Length - bytesUsed > 100, "the image has no end padding to change");
        other[^100] ^= 0xFF;
        var otherPath = _temp.Combine("other.sqfs");
        await File.WriteAllBytesAsync(otherPath, other, TestContext.Current.CancellationToken);

        var output = _temp.Combine($"{when}.out");
        var code = await RunAsync("delta", "apply", otherPath, delta, "-o", output, "--verify-base", when);
        if (untouchedBytesMayDiffer)
        {
            Assert.Equal(ExitCodes.Ok, code);
            Assert.Equal(await File.ReadAllBytesAsync(b, TestContext.Current.CancellationToken), await File.ReadAllBytesAsync(output, TestContext.Current.CancellationToken));
        }
        else
        {
            Assert.Equal(ExitCodes.VerificationFailed, code);
            // "before" refuses before the first write; "beside" has written while it hashed.
            Assert.Equal(when == "before", new FileInfo(output).Length == 0);
        }
    }

    [Fact]
    public async Task A_reproduction_record_from_prove_or_create_leaves_the_delta_unchanged()
    {
        var (a, b) = await MakePairAsync();
        var plain = _temp.Combine("plain.eud");
        Assert.Equal(ExitCodes.Ok, await RunAsync("delta", "create", a, b, "-o", plain));

        // Filled by create, then used by the next create.
        var record = _temp.Combine("b.record");
        foreach (var name in new[] { "first.eud", "second.eud" })
        {
            Assert.Equal(ExitCodes.Ok, await RunAsync("delta", "create", a, b, "-o", _temp.Combine(name), "--reproduction-record", record));
            Assert.Equal(await File.ReadAllBytesAsync(plain, TestContext.Current.CancellationToken), await File.ReadAllBytesAsync(_temp.Combine(name), TestContext.Current.CancellationToken));
        }

        var fromCreate = Delta.ReproductionRecord.Read(await File.ReadAllBytesAsync(record, TestContext.Current.CancellationToken));
        Assert.True(fromCreate.Count > 0);

        // Filled by prove ahead of any delta: at least every block create proved.
        var proved = _temp.Combine("proved.record");
        Assert.Equal(ExitCodes.Ok, await RunAsync("delta", "prove", b, "--reproduction-record", proved));
        Assert.True(Delta.ReproductionRecord.Read(await File.ReadAllBytesAsync(proved, TestContext.Current.CancellationToken)).Count >= fromCreate.Count);
        Assert.Equal(ExitCodes.Ok, await RunAsync("delta", "create", a, b, "-o", _temp.Combine("third.eud"), "--reproduction-record", proved));
        Assert.Equal(await File.ReadAllBytesAsync(plain, TestContext.Current.CancellationToken), await File.ReadAllBytesAsync(_temp.Combine("third.eud"), TestContext.Current.CancellationToken));

        // A damaged record is reported and started afresh; the delta is still right.
        var damaged = await File.ReadAllBytesAsync(proved, TestContext.Current.CancellationToken);
        damaged[damaged.Length / 2] ^= 0x40;
        await File.WriteAllBytesAsync(proved, damaged, TestContext.Current.CancellationToken);
        Assert.Equal(ExitCodes.Ok, await RunAsync("delta", "create", a, b, "-o", _temp.Combine("fourth.eud"), "--reproduction-record", proved));
        Assert.Equal(await File.ReadAllBytesAsync(plain, TestContext.Current.CancellationToken), await File.ReadAllBytesAsync(_temp.Combine("fourth.eud"), TestContext.Current.CancellationToken));
        Assert.Equal(fromCreate.Count, Delta.ReproductionRecord.Read(await File.ReadAllBytesAsync(proved, TestContext.Current.CancellationToken)).Count);
    }

    public void Dispose() => _temp.Dispose();
}
