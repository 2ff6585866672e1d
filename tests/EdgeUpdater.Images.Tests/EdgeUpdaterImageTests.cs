using EdgeUpdater.SquashFs.IO;
using EdgeUpdater.SquashFs.Reader;
using EdgeUpdater.SquashFs.Writer;
using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Images.Tests;

public sealed class EdgeUpdaterImageTests
{
    [Fact]
    public async Task Built_image_opens_with_its_config_and_root()
    {
        using var temp = new TempDirectory("img");
        var rootDir = temp.Combine("rootfs");
        Directory.CreateDirectory(Path.Combine(rootDir, "usr/bin"));
        await File.WriteAllTextAsync(Path.Combine(rootDir, "usr/bin/app"), "#!/bin/sh\necho hi\n");
        var configPath = temp.Combine("config.json");
        const string json = """{"name": "demo", "version": "1.0.0", "entrypoint": ["/usr/bin/app"]}""";
        await File.WriteAllTextAsync(configPath, json);
        var output = temp.Combine("demo.sqfs");

        var result = await ImageBuilder.BuildAsync(rootDir, configPath, output, new SquashFsWriterOptions { FixedTimestamp = 0 });
        Assert.Equal(64, result.Sha256.Length);
        Assert.False(File.Exists(output + ".partial"));

        using var image = EdgeUpdaterImage.Open(output);
        Assert.Equal("demo", image.Config.Name);
        Assert.Equal(["/usr/bin/app"], image.Config.Entrypoint);
        Assert.Equal(json, System.Text.Encoding.UTF8.GetString(image.ConfigBytes));
        var app = image.Image.GetEntry("/root/usr/bin/app");
        using var reader = new StreamReader(app.OpenRead());
        Assert.Equal("#!/bin/sh\necho hi\n", await reader.ReadToEndAsync());

        // Same inputs, same bytes.
        var again = await ImageBuilder.BuildAsync(rootDir, configPath, temp.Combine("again.sqfs"), new SquashFsWriterOptions { FixedTimestamp = 0 });
        Assert.Equal(result.Sha256, again.Sha256);
    }

    [Fact]
    public async Task Invalid_config_stops_the_build_before_writing()
    {
        using var temp = new TempDirectory("img");
        Directory.CreateDirectory(temp.Combine("rootfs"));
        await File.WriteAllTextAsync(temp.Combine("config.json"), """{"name": "demo"}""");
        var e = await Assert.ThrowsAsync<ImageException>(() => ImageBuilder.BuildAsync(temp.Combine("rootfs"), temp.Combine("config.json"), temp.Combine("x.sqfs")));
        Assert.Contains("$.version", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(temp.Combine("x.sqfs")));
        var missing = await Assert.ThrowsAsync<ImageException>(() => ImageBuilder.BuildAsync(temp.Combine("nope"), temp.Combine("config.json"), temp.Combine("x.sqfs")));
        Assert.Equal(ImageErrorCategory.NotFound, missing.Category);
    }

    public static TheoryData<string, string> BadLayouts() => new()
    {
        { "extra", "unexpected 'extra'" },
        { "no-root", "missing root/" },
        { "no-config", "missing config.json" },
        { "config-dir", "/config.json is a Directory" },
        { "root-file", "/root is a File" },
        { "empty", "found nothing" },
    };

    [Theory]
    [MemberData(nameof(BadLayouts))]
    public async Task Layout_errors_are_precise(string layout, string expected)
    {
        var config = SourceNode.File("config.json", """{"name": "demo", "version": "1.0.0"}"""u8.ToArray());
        var top = SourceNode.Directory(string.Empty);
        switch (layout)
        {
            case "extra":
                top.Add(config).Add(SourceNode.Directory("root")).Add(SourceNode.File("extra", [1]));
                break;
            case "no-root":
                top.Add(config);
                break;
            case "no-config":
                top.Add(SourceNode.Directory("root"));
                break;
            case "config-dir":
                top.Add(SourceNode.Directory("config.json")).Add(SourceNode.Directory("root"));
                break;
            case "root-file":
                top.Add(config).Add(SourceNode.File("root", [1]));
                break;
        }

        var buffer = new MemoryStream();
        using (var sink = new StreamImageSink(buffer, leaveOpen: true))
        {
            await SquashFsWriter.WriteAsync(top, sink);
        }

        var e = Assert.Throws<ImageException>(() => EdgeUpdaterImage.Open(new MemoryImageSource(buffer.ToArray())));
        Assert.Equal(ImageErrorCategory.InvalidLayout, e.Category);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_config_inside_an_image_is_reported()
    {
        var top = SourceNode.Directory(string.Empty)
            .Add(SourceNode.File("config.json", """{"name": "demo", "version": "x"}"""u8.ToArray()))
            .Add(SourceNode.Directory("root"));
        var buffer = new MemoryStream();
        using (var sink = new StreamImageSink(buffer, leaveOpen: true))
        {
            await SquashFsWriter.WriteAsync(top, sink);
        }

        using var image = SquashFsImage.Open(new MemoryImageSource(buffer.ToArray()));
        var e = Assert.Throws<ImageException>(() => EdgeUpdaterImage.FromImage(image));
        Assert.Equal(ImageErrorCategory.InvalidConfig, e.Category);
        Assert.Contains("$.version", e.Message, StringComparison.Ordinal);
    }
}
