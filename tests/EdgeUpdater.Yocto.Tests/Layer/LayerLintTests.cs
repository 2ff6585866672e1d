using EdgeUpdater.Testing;
using Xunit;

namespace EdgeUpdater.Yocto.Tests.Layer;

/// <summary>
/// The layer lint on meta-edgeupdater as committed (no findings allowed), and on copies of it with
/// one defect each, to show that every rule catches what it is for.
/// </summary>
public sealed class LayerLintTests : IDisposable
{
    private readonly TempDirectory _directory = new("yocto-lint");

    public void Dispose() => _directory.Dispose();

    public static TheoryData<string> Rules => new()
    {
        nameof(LayerLinter.ParsesCleanly),
        nameof(LayerLinter.LayerConfiguration),
        nameof(LayerLinter.MandatoryRecipeVariables),
        nameof(LayerLinter.LicenseChecksums),
        nameof(LayerLinter.DistroFeatureGuards),
        nameof(LayerLinter.SourceChecksums),
        nameof(LayerLinter.OverrideSyntax),
        nameof(LayerLinter.NoNetworkInTasks),
        nameof(LayerLinter.InheritedClassesExist),
        nameof(LayerLinter.LocalFilesAreUsed),
        nameof(LayerLinter.PartitionLayoutAgreesWithBootScripts),
        nameof(LayerLinter.KasConfiguration),
    };

    [Theory]
    [MemberData(nameof(Rules))]
    public void Layer_passes(string rule)
    {
        var findings = Run(new LayerLinter(LayerPaths.Layer, LayerPaths.RepositoryRoot), rule);
        Assert.True(findings.Count == 0, string.Join('\n', findings));
    }

    [Fact]
    public void Layer_has_recipes_classes_and_bbappends_to_check()
    {
        var linter = new LayerLinter(LayerPaths.Layer, LayerPaths.RepositoryRoot);
        Assert.True(linter.Recipes.Count() >= 6, string.Join('\n', linter.Recipes));
        Assert.Contains(linter.MetadataFiles, f => f.EndsWith(".bbappend", StringComparison.Ordinal));
        Assert.Contains(linter.MetadataFiles, f => f.EndsWith("edgeupdater-image.bbclass", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("conf/layer.conf", "LAYERSERIES_COMPAT_edgeupdater = \"scarthgap\"", "LAYERSERIES_COMPAT_edgeupdater = \"kirkstone\"", "must name scarthgap")]
    [InlineData("conf/layer.conf", "LAYERDEPENDS_edgeupdater = \"core\"", "LAYERDEPENDS_edgeupdater = \"core openembedded-layer\"", "LAYERDEPENDS_edgeupdater must be")]
    [InlineData("conf/layer.conf", "INHERIT += \"edgeupdater-sanity\"", "INHERIT += \"edgeupdater-sanity\"\nDISTRO_FEATURES:append = \" edgeupdater\"", "is set globally")]
    [InlineData("recipes-core/initrdscripts/edgeupdater-initramfs_1.0.bb", "LICENSE = \"MIT\"\n", "", "LICENSE is not set")]
    [InlineData("recipes-core/initrdscripts/edgeupdater-initramfs_1.0.bb", "md5=0835ade698e0bcf8506ecda2f7b4f302", "md5=0835ade698e0bcf8506ecda2f7b4f303", "md5 of ${COMMON_LICENSE_DIR}/MIT")]
    [InlineData("recipes-core/edgeupdater/edgeupdater-agent_0.1.0.bb", "LIC_FILES_CHKSUM = \"file://LICENSE;md5=", "LIC_FILES_CHKSUM = \"file://COPYING;md5=", "does not exist")]
    [InlineData("recipes-core/edgeupdater/edgeupdater-agent_0.1.0.bb", "REQUIRED_DISTRO_FEATURES = \"edgeupdater systemd\"", "REQUIRED_DISTRO_FEATURES = \"systemd\"", "nothing may build without the feature")]
    [InlineData("recipes-bsp/u-boot/u-boot_%.bbappend", "require ${@bb.utils.contains('DISTRO_FEATURES', 'edgeupdater', 'u-boot-edgeupdater.inc', '', d)}", "require u-boot-edgeupdater.inc", "a bbappend may only require")]
    [InlineData("recipes-bsp/u-boot/u-boot_%.bbappend", "', '', d)}\n", "', '', d)}\nSRC_URI += \"file://edgeupdater.cfg\"\n", "a bbappend may only require")]
    [InlineData("recipes-bsp/edgeupdater-boot/edgeupdater-boot-uboot_1.0.bb", "SRC_URI = \"file://boot.cmd file://fw_env.config\"", "SRC_URI = \"file://boot.cmd file://fw_env.config https://example.org/x.tar.gz\"", "SRC_URI[sha256sum] must be 64")]
    [InlineData("recipes-bsp/edgeupdater-boot/edgeupdater-boot-uboot_1.0.bb", "file://boot.cmd ", "file://boot.txt ", "is not in the recipe's files directories")]
    [InlineData("classes/edgeupdater-image.bbclass", "IMAGE_FSTYPES:append = \" edgeupdater\"", "IMAGE_FSTYPES_append = \" edgeupdater\"", "old '_' override syntax")]
    [InlineData("classes/edgeupdater-image.bbclass", "IMAGE_FSTYPES:append = \" edgeupdater\"", "IMAGE_FSTYPES:append = \"edgeupdater\"", "must start with a space")]
    [InlineData("recipes-core/edgeupdater/edgeupdater-agent_0.1.0.bb", "RDEPENDS:${PN} = ", "RDEPENDS_${PN} = ", "old '_' override syntax")]
    [InlineData("recipes-bsp/edgeupdater-boot/edgeupdater-boot-grub_1.0.bb", "    output=\"$1\"\n", "    output=\"$1\"\n    wget -O /tmp/x https://example.org/grubenv\n", "reaches for the network")]
    [InlineData("classes/edgeupdater-image.bbclass", "    import json\n", "    import json\n    import urllib.request\n", "reaches for the network")]
    [InlineData("recipes-bsp/edgeupdater-boot/edgeupdater-boot-uboot_1.0.bb", "inherit features_check deploy kernel-arch", "inherit features_check deploy kernel-arch no-such-class", "neither in classes/")]
    [InlineData("wic/edgeupdater-ab-uboot.wks.in", "--part-name root_b --align 4096 --fixed-size ${EDGEUPDATER_SLOT_SIZE_MB}M", "--part-name root_b --align 4096 --fixed-size 256M", "same --fixed-size")]
    [InlineData("recipes-bsp/edgeupdater-boot/files/boot.cmd", "setenv eu_part_b 3;", "setenv eu_part_b 4;", "does not default eu_part_b")]
    [InlineData("wic/edgeupdater-grub.cfg", "set eu_part_a=2;", "set eu_part_a=1;", "does not default eu_part_a")]
    [InlineData("recipes-core/initrdscripts/files/edgeupdater-init.sh", "\"PARTLABEL=data\"", "\"PARTLABEL=userdata\"", "PARTLABEL=data")]
    [InlineData("kas/qemuarm64.yml", "target: edgeupdater-image", "target: core-image-minimal", "target must be an image recipe")]
    [InlineData("kas/qemuarm64.yml", "branch: scarthgap", "branch: master", "scarthgap branch")]
    public void Lint_finds_the_defect(string file, string find, string replace, string expectedFinding)
    {
        var copy = CopyLayer();
        var path = Path.Combine(copy, file);
        var text = File.ReadAllText(path);
        Assert.True(text.Contains(find, StringComparison.Ordinal), $"{file} no longer contains the text this test changes: {find}");
        File.WriteAllText(path, text.Replace(find, replace, StringComparison.Ordinal));

        var findings = new LayerLinter(copy, LayerPaths.RepositoryRoot).All();
        Assert.True(findings.Any(f => f.Contains(expectedFinding, StringComparison.Ordinal)), $"expected a finding with '{expectedFinding}', got:\n" + string.Join('\n', findings));
    }

    [Fact]
    public void Lint_finds_an_unused_local_file()
    {
        var copy = CopyLayer();
        File.WriteAllText(Path.Combine(copy, "recipes-bsp", "edgeupdater-boot", "files", "stale.cfg"), "x\n");
        var findings = new LayerLinter(copy, LayerPaths.RepositoryRoot).LocalFilesAreUsed().ToList();
        Assert.Contains(findings, f => f.Contains("file://stale.cfg", StringComparison.Ordinal));
    }

    [Fact]
    public void Lint_reports_lines_it_cannot_parse()
    {
        var copy = CopyLayer();
        File.AppendAllText(Path.Combine(copy, "classes", "edgeupdater-image.bbclass"), "this is not bitbake\n");
        var findings = new LayerLinter(copy, LayerPaths.RepositoryRoot).ParsesCleanly().ToList();
        Assert.Contains(findings, f => f.Contains("this is not bitbake", StringComparison.Ordinal));
    }

    private static List<string> Run(LayerLinter linter, string rule) =>
        ((IEnumerable<string>)typeof(LayerLinter).GetMethod(rule)!.Invoke(linter, null)!).ToList();

    private string CopyLayer()
    {
        var target = _directory.Combine("meta-edgeupdater-" + Guid.NewGuid().ToString("n"));
        foreach (var file in Directory.EnumerateFiles(LayerPaths.Layer, "*", SearchOption.AllDirectories))
        {
            var destination = Path.Combine(target, Path.GetRelativePath(LayerPaths.Layer, file));
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            File.Copy(file, destination);
        }

        return target;
    }
}
