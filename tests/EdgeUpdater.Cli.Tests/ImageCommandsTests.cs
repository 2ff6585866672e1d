using System.CommandLine;
using EdgeUpdater.Cli.Commands;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Cli.Tests;

/// <summary><c>edgeupdater image ...</c> end to end, in process.</summary>
public sealed class ImageCommandsTests : IDisposable
{
    private readonly TempDirectory _temp = new("cli-image");

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public void Dispose() => _temp.Dispose();

    private static async Task<(int Exit, string Out, string Err)> RunAsync(params string[] args)
    {
        var root = new RootCommand("test");
        root.Subcommands.Add(ImageCommands.Create());
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = await root.Parse(args).InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, Token);
        return (exit, output.ToString(), error.ToString());
    }

    private async Task<string> BuildDemoAsync(params string[] extra)
    {
        var rootfs = _temp.Combine("rootfs");
        Directory.CreateDirectory(Path.Combine(rootfs, "etc"));
        await File.WriteAllTextAsync(Path.Combine(rootfs, "etc", "motd"), "hello edge\n", Token);
        File.CreateSymbolicLink(Path.Combine(rootfs, "etc", "motd.link"), "motd");
        await File.WriteAllTextAsync(_temp.Combine("config.json"), """{"name": "demo", "version": "1.0.0"}""", Token);
        var image = _temp.Combine("demo.sqfs");
        var (exit, output, error) = await RunAsync(["image", "build", rootfs, "--config", _temp.Combine("config.json"), "-o", image, .. extra]);
        Assert.True(exit == ExitCodes.Ok, error);
        Assert.Contains("sha256", output, StringComparison.Ordinal);
        return image;
    }

    [Fact]
    public async Task Build_inspect_ls_cat_extract()
    {
        var image = await BuildDemoAsync("--compressor", "zstd", "--level", "3", "--block-size", "64K", "--no-fragments");

        var (exit, output, _) = await RunAsync("image", "inspect", image);
        Assert.Equal(ExitCodes.Ok, exit);
        Assert.Contains("zstd level 3", output, StringComparison.Ordinal);
        Assert.Contains("block size 65536", output, StringComparison.Ordinal);
        Assert.Contains("\"name\": \"demo\"", output, StringComparison.Ordinal);

        (exit, output, _) = await RunAsync("image", "inspect", image, "--json");
        Assert.Equal(ExitCodes.Ok, exit);
        using (var json = System.Text.Json.JsonDocument.Parse(output))
        {
            Assert.True(json.RootElement.GetProperty("edgeUpdaterImage").GetBoolean());
            Assert.Equal("zstd", json.RootElement.GetProperty("compressor").GetProperty("name").GetString());
            Assert.Equal("1.0.0", json.RootElement.GetProperty("config").GetProperty("version").GetString());
            Assert.Contains("NoFragments", json.RootElement.GetProperty("flags").EnumerateArray().Select(f => f.GetString()));
        }

        (exit, output, _) = await RunAsync("image", "ls", image);
        Assert.Equal(ExitCodes.Ok, exit);
        Assert.Contains(" config.json", output, StringComparison.Ordinal);
        Assert.Contains(" root", output, StringComparison.Ordinal);

        (exit, output, _) = await RunAsync("image", "ls", image, "/root/etc", "-r");
        Assert.Contains("/root/etc/motd.link -> motd", output, StringComparison.Ordinal);
        Assert.Contains("-rw-r--r--", output, StringComparison.Ordinal);

        (exit, output, _) = await RunAsync("image", "cat", image, "/root/etc/motd");
        Assert.Equal(ExitCodes.Ok, exit);
        Assert.Equal("hello edge\n", output);

        var destination = _temp.Combine("out");
        (exit, output, _) = await RunAsync("image", "extract", image, "-o", destination);
        Assert.Equal(ExitCodes.Ok, exit);
        Assert.Equal("hello edge\n", await File.ReadAllTextAsync(Path.Combine(destination, "root/etc/motd"), Token));
        Assert.Equal("motd", new FileInfo(Path.Combine(destination, "root/etc/motd.link")).LinkTarget);
    }

    [Fact]
    public async Task Read_commands_work_on_any_squashfs_image()
    {
        var source = _temp.Combine("plain");
        Directory.CreateDirectory(source);
        await File.WriteAllTextAsync(Path.Combine(source, "a.txt"), "plain", Token);
        var image = _temp.Combine("plain.sqfs");
        await ExternalTool.RunCheckedAsync("mksquashfs", [source, image, "-quiet", "-no-progress", "-comp", "xz"], cancellationToken: Token);

        var (exit, output, _) = await RunAsync("image", "inspect", image);
        Assert.Equal(ExitCodes.Ok, exit);
        Assert.Contains("not an EdgeUpdater image", output, StringComparison.Ordinal);
        (exit, output, _) = await RunAsync("image", "cat", image, "a.txt");
        Assert.Equal("plain", output);
    }

    [Fact]
    public async Task Errors_have_messages_and_exit_codes()
    {
        var image = await BuildDemoAsync();
        var (exit, _, error) = await RunAsync("image", "cat", image, "/root/missing");
        Assert.Equal(ExitCodes.Failure, exit);
        Assert.Contains("'/root/missing' does not exist", error, StringComparison.Ordinal);

        (exit, _, error) = await RunAsync("image", "cat", image, "/root/etc");
        Assert.Equal(ExitCodes.Failure, exit);
        Assert.Contains("not a regular file", error, StringComparison.Ordinal);

        var garbage = _temp.Combine("garbage.sqfs");
        await File.WriteAllBytesAsync(garbage, new byte[4096], Token);
        (exit, _, error) = await RunAsync("image", "inspect", garbage);
        Assert.Equal(ExitCodes.InvalidInput, exit);
        Assert.Contains("Not a SquashFS image", error, StringComparison.Ordinal);

        await File.WriteAllTextAsync(_temp.Combine("bad.json"), """{"name": "demo", "version": "one"}""", Token);
        (exit, _, error) = await RunAsync("image", "build", _temp.Combine("rootfs"), "--config", _temp.Combine("bad.json"), "-o", _temp.Combine("x.sqfs"));
        Assert.Equal(ExitCodes.InvalidInput, exit);
        Assert.Contains("$.version", error, StringComparison.Ordinal);

        (exit, _, error) = await RunAsync("image", "build", _temp.Combine("rootfs"), "--config", _temp.Combine("config.json"), "-o", _temp.Combine("x.sqfs"), "--block-size", "1000");
        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("--block-size 1000", error, StringComparison.Ordinal);

        (exit, _, error) = await RunAsync("image", "build", _temp.Combine("rootfs"), "--config", _temp.Combine("config.json"), "-o", _temp.Combine("x.sqfs"), "--compressor", "xz", "--level", "9");
        Assert.Equal(ExitCodes.Usage, exit);
        Assert.Contains("xz", error, StringComparison.Ordinal);

        (exit, _, _) = await RunAsync("image", "build", "--help");
        Assert.Equal(ExitCodes.Ok, exit);
    }

    [Fact]
    public async Task Extract_refuses_names_that_climb_out()
    {
        // "abcevil" becomes "../evil" in the uncompressed directory table of a mksquashfs image.
        var source = _temp.Combine("climb");
        Directory.CreateDirectory(source);
        await File.WriteAllTextAsync(Path.Combine(source, "abcevil"), "evil", Token);
        var image = await PatchedImageAsync(source, "abcevil", "../evil");
        var destination = _temp.Combine("dest", "inner");
        var (exit, _, error) = await RunAsync("image", "extract", image, "-o", destination);
        Assert.Equal(ExitCodes.InvalidInput, exit);
        Assert.Contains("../evil", error, StringComparison.Ordinal);
        Assert.False(File.Exists(_temp.Combine("dest", "evil")));
    }

    [Fact]
    public async Task Extract_does_not_follow_a_symlink_planted_under_a_directory_name()
    {
        // A symlink "link" -> outside plus a directory "link" with a file: extracting the file through
        // the symlink would write outside the destination.
        var outside = _temp.Combine("outside");
        Directory.CreateDirectory(outside);
        var source = _temp.Combine("trick");
        Directory.CreateDirectory(Path.Combine(source, "link"));
        await File.WriteAllTextAsync(Path.Combine(source, "link", "payload"), "pwned", Token);
        File.CreateSymbolicLink(Path.Combine(source, "linj"), outside);
        var image = await PatchedImageAsync(source, "linj", "link");
        var (exit, _, error) = await RunAsync("image", "extract", image, "-o", _temp.Combine("dest2"));
        Assert.Equal(ExitCodes.InvalidInput, exit);
        Assert.Contains("already exists", error, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(outside));
    }

    private async Task<string> PatchedImageAsync(string source, string from, string to)
    {
        var image = Path.Combine(_temp.Path, Path.GetFileName(source) + ".sqfs");
        await ExternalTool.RunCheckedAsync("mksquashfs", [source, image, "-noI", "-noD", "-noF", "-noX", "-no-xattrs", "-quiet", "-no-progress"], cancellationToken: Token);
        var bytes = await File.ReadAllBytesAsync(image, Token);
        var needle = System.Text.Encoding.ASCII.GetBytes(from);
        var at = bytes.AsSpan().IndexOf(needle);
        Assert.True(at > 0, "name not found in the uncompressed directory table");
        System.Text.Encoding.ASCII.GetBytes(to).CopyTo(bytes, at);
        await File.WriteAllBytesAsync(image, bytes, Token);
        return image;
    }
}
