using EdgeUpdater.Testing;
using EdgeUpdater.Yocto.Tests.Layer;
using Xunit;

namespace EdgeUpdater.Yocto.Tests.Boot;

/// <summary>
/// The boot script files themselves: boot.cmd compiles into a U-Boot script image, the GRUB
/// environment block the recipe deploys is one grub-editenv accepts, and the simulator refuses
/// syntax it does not model (so the boot counting tests cannot pass on a script they misread).
/// </summary>
public sealed class BootScriptFilesTests : IDisposable
{
    private readonly TempDirectory _directory = new("yocto-bootfiles");

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task Boot_script_compiles_with_mkimage_into_a_script_image_holding_boot_cmd()
    {
        var script = await UBootRig.CompileBootScriptAsync(_directory.Path, Token);

        var listing = await ExternalTool.RunCheckedAsync("mkimage", ["-l", _directory.Combine("boot.scr")], cancellationToken: Token);
        Assert.Contains("Script", listing.StandardOutput, StringComparison.Ordinal);
        Assert.Equal(await File.ReadAllTextAsync(LayerPaths.InLayer("recipes-bsp", "edgeupdater-boot", "files", "boot.cmd"), Token), script);
    }

    [Fact]
    public async Task Script_image_reader_refuses_other_images()
    {
        await UBootRig.CompileBootScriptAsync(_directory.Path, Token);
        var image = await File.ReadAllBytesAsync(_directory.Combine("boot.scr"), Token);
        image[30] = 2; // kernel
        Assert.Throws<InvalidDataException>(() => UBootRig.ReadLegacyScriptImage(image));
        image[0] = 0;
        Assert.Throws<InvalidDataException>(() => UBootRig.ReadLegacyScriptImage(image));
    }

    [Fact]
    public async Task Recipe_grubenv_is_a_1024_byte_block_grub_editenv_reads_and_rewrites_in_place()
    {
        var file = await GrubEnvironmentFile.CreateFromRecipeAsync(_directory.Path, Token);
        var bytes = await File.ReadAllBytesAsync(file.Path, Token);
        Assert.Equal(1024, bytes.Length);
        Assert.StartsWith("# GRUB Environment Block\n", System.Text.Encoding.ASCII.GetString(bytes), StringComparison.Ordinal);

        Assert.Equal(
            new Dictionary<string, string> { ["eu_slot"] = "a", ["upgrade_available"] = "0", ["bootcount"] = "0", ["bootlimit"] = "3" },
            await file.ReadAsync(Token));

        await file.SetAsync(new Dictionary<string, string> { ["eu_slot"] = "b", ["upgrade_available"] = "1" }, Token);
        Assert.Equal(1024, new FileInfo(file.Path).Length);
        var after = await file.ReadAsync(Token);
        Assert.Equal("b", after["eu_slot"]);
        Assert.Equal("1", after["upgrade_available"]);
        Assert.Equal("3", after["bootlimit"]);
    }

    [Theory]
    [InlineData("setenv a 1 && setenv b 2", "not simulated")]
    [InlineData("echo a | echo b", "not simulated")]
    [InlineData("if test 1 = 1; then echo yes", "no fi")]
    [InlineData("while true; do echo; done", "not simulated")]
    [InlineData("setenv x \"unterminated", "unterminated")]
    [InlineData("run bootcmd", "not simulated")]
    public void Simulator_refuses_what_it_does_not_model(string script, string reason)
    {
        var error = Assert.Throws<BootScriptException>(() =>
        {
            var machine = new UBootMachine(new Dictionary<string, string>(), new BootMedia());
            machine.Run(BootScript.Parse(script, BootScriptDialect.UBootHush));
        });
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("1", "0x1", "-eq", true)]
    [InlineData("10", "a", "-gt", true)]
    [InlineData("", "0", "-eq", true)]
    [InlineData("3", "3", "-ge", true)]
    [InlineData("2", "3", "-ge", false)]
    public void UBoot_test_reads_numbers_as_decimal_unless_0x(string left, string right, string op, bool expected)
    {
        var machine = new UBootMachine(new Dictionary<string, string> { ["l"] = left, ["r"] = right }, new BootMedia());
        machine.Run(BootScript.Parse($"if test \"${{l}}\" {op} \"${{r}}\"; then setenv result yes; else setenv result no; fi", BootScriptDialect.UBootHush));
        Assert.Equal(expected ? "yes" : "no", machine.Environment["result"]);
    }

    [Fact]
    public void Unquoted_variables_split_into_arguments_and_empty_ones_vanish()
    {
        var machine = new UBootMachine(new Dictionary<string, string> { ["two"] = "x y", ["none"] = string.Empty }, new BootMedia());
        machine.Run(BootScript.Parse("setenv joined ${none} ${two} \"${none}\" end", BootScriptDialect.UBootHush));
        // setenv joins its arguments with one space: x, y, "" and end.
        Assert.Equal("x y  end", machine.Environment["joined"]);
    }
}
