using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace EdgeUpdater.Yocto.Tests.Layer;

/// <summary>
/// Offline checks of meta-edgeupdater that a BitBake parse (not available in CI) or a reviewer
/// would otherwise catch. Each method returns findings as "path: line N: what is wrong".
/// </summary>
internal sealed partial class LayerLinter
{
    /// <summary>
    /// md5 of meta/files/common-licenses/MIT in openembedded-core, the value every recipe quoting
    /// ${COMMON_LICENSE_DIR}/MIT carries (BitBake's do_populate_lic checks it against the real file).
    /// </summary>
    public const string CommonMitLicenseMd5 = "0835ade698e0bcf8506ecda2f7b4f302";

    /// <summary>Classes of openembedded-core (scarthgap) the layer may inherit.</summary>
    private static readonly HashSet<string> CoreClasses = ["features_check", "systemd", "deploy", "kernel-arch", "image", "core-image", "allarch"];

    private readonly string _layer;
    private readonly string _repository;

    /// <param name="layer">The layer root (conf/layer.conf inside).</param>
    /// <param name="repository">The repository root: the release tarball ships its LICENSE.</param>
    public LayerLinter(string layer, string repository)
    {
        _layer = layer;
        _repository = repository;
    }

    public IEnumerable<string> MetadataFiles => Directory.EnumerateFiles(_layer, "*", SearchOption.AllDirectories)
        .Where(f => Path.GetExtension(f) is ".bb" or ".bbappend" or ".bbclass" or ".inc" or ".conf")
        .Where(f => !f.Contains("/files/", StringComparison.Ordinal))
        .Order(StringComparer.Ordinal);

    public IEnumerable<string> Recipes => MetadataFiles.Where(f => f.EndsWith(".bb", StringComparison.Ordinal));

    public List<string> All() =>
    [
        .. ParsesCleanly(),
        .. LayerConfiguration(),
        .. MandatoryRecipeVariables(),
        .. LicenseChecksums(),
        .. DistroFeatureGuards(),
        .. SourceChecksums(),
        .. OverrideSyntax(),
        .. NoNetworkInTasks(),
        .. InheritedClassesExist(),
        .. LocalFilesAreUsed(),
        .. PartitionLayoutAgreesWithBootScripts(),
        .. KasConfiguration(),
    ];

    public IEnumerable<string> ParsesCleanly()
    {
        foreach (var path in MetadataFiles)
        {
            foreach (var line in BitBakeFile.Load(path).Unparsed)
            {
                yield return $"{Relative(path)}: {line}: not an assignment, function or directive";
            }
        }
    }

    public IEnumerable<string> LayerConfiguration()
    {
        var path = Path.Combine(_layer, "conf", "layer.conf");
        if (!File.Exists(path))
        {
            yield return "conf/layer.conf is missing";
            yield break;
        }

        var conf = BitBakeFile.Load(path);
        string? Value(string name) => conf.Assignments.LastOrDefault(a => a.Variable == name && a.Flag is null)?.Value;
        bool Has(string name, string op, Func<string, bool> valueCheck) =>
            conf.Assignments.Any(a => a.Variable == name && a.Operator == op && valueCheck(a.Value));

        if (!Has("BBPATH", ".=", v => v == ":${LAYERDIR}"))
        {
            yield return "conf/layer.conf: BBPATH .= \":${LAYERDIR}\" expected";
        }

        if (!Has("BBFILES", "+=", v => v.Contains("${LAYERDIR}/recipes-*/*/*.bb", StringComparison.Ordinal) && v.Contains("${LAYERDIR}/recipes-*/*/*.bbappend", StringComparison.Ordinal)))
        {
            yield return "conf/layer.conf: BBFILES += must list ${LAYERDIR}/recipes-*/*/*.bb and *.bbappend";
        }

        if (!Has("BBFILE_COLLECTIONS", "+=", v => v.Split(' ', StringSplitOptions.RemoveEmptyEntries).SequenceEqual(["edgeupdater"])))
        {
            yield return "conf/layer.conf: BBFILE_COLLECTIONS += \"edgeupdater\" expected";
        }

        if (Value("BBFILE_PATTERN_edgeupdater") != "^${LAYERDIR}/")
        {
            yield return "conf/layer.conf: BBFILE_PATTERN_edgeupdater must be \"^${LAYERDIR}/\"";
        }

        if (!int.TryParse(Value("BBFILE_PRIORITY_edgeupdater"), out _))
        {
            yield return "conf/layer.conf: BBFILE_PRIORITY_edgeupdater must be a number";
        }

        if (!int.TryParse(Value("LAYERVERSION_edgeupdater"), out _))
        {
            yield return "conf/layer.conf: LAYERVERSION_edgeupdater must be a number";
        }

        if (Value("LAYERDEPENDS_edgeupdater") != "core")
        {
            yield return "conf/layer.conf: LAYERDEPENDS_edgeupdater must be \"core\"";
        }

        var series = Value("LAYERSERIES_COMPAT_edgeupdater")?.Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? [];
        if (!series.Contains("scarthgap"))
        {
            yield return "conf/layer.conf: LAYERSERIES_COMPAT_edgeupdater must name scarthgap, the series the layer is written for";
        }

        if (!conf.Assignments.Any(a => a.Variable == "INHERIT" && a.Operator == "+=" && a.Value.Trim() == "edgeupdater-sanity"))
        {
            yield return "conf/layer.conf: INHERIT += \"edgeupdater-sanity\" expected (warns when the distro feature is missing)";
        }

        foreach (var assignment in conf.Assignments.Where(a => !a.Variable.StartsWith("BB", StringComparison.Ordinal)
                     && !a.Variable.StartsWith("LAYER", StringComparison.Ordinal) && a.Variable != "INHERIT"))
        {
            yield return $"conf/layer.conf: line {assignment.Line}: {assignment.FullName} is set globally; layer.conf may only describe the layer";
        }
    }

    public IEnumerable<string> MandatoryRecipeVariables()
    {
        foreach (var path in Recipes)
        {
            var recipe = BitBakeFile.Load(path);
            foreach (var name in new[] { "SUMMARY", "LICENSE" })
            {
                if (string.IsNullOrWhiteSpace(recipe.ValueOf(name)))
                {
                    yield return $"{Relative(path)}: {name} is not set";
                }
            }

            if (!IsImage(recipe) && string.IsNullOrWhiteSpace(recipe.ValueOf("LIC_FILES_CHKSUM")))
            {
                yield return $"{Relative(path)}: LIC_FILES_CHKSUM is not set";
            }
        }
    }

    public IEnumerable<string> LicenseChecksums()
    {
        foreach (var path in Recipes)
        {
            var recipe = BitBakeFile.Load(path);
            foreach (var entry in Words(recipe.ValueOf("LIC_FILES_CHKSUM")))
            {
                var match = LicenseEntry().Match(entry);
                if (!match.Success)
                {
                    yield return $"{Relative(path)}: LIC_FILES_CHKSUM entry '{entry}' is not file://PATH;md5=32 hex digits";
                    continue;
                }

                var file = match.Groups["file"].Value;
                var expected = match.Groups["md5"].Value;
                string? actual;
                if (file == "${COMMON_LICENSE_DIR}/MIT")
                {
                    actual = CommonMitLicenseMd5;
                }
                else if (file.Contains('$', StringComparison.Ordinal))
                {
                    yield return $"{Relative(path)}: LIC_FILES_CHKSUM file '{file}' cannot be resolved offline";
                    continue;
                }
                else
                {
                    var resolved = ResolveLicenseFile(path, recipe, file);
                    if (resolved is null)
                    {
                        yield return $"{Relative(path)}: LIC_FILES_CHKSUM file '{file}' does not exist";
                        continue;
                    }

                    // md5 is what LIC_FILES_CHKSUM uses; it detects license text changes, it protects nothing.
#pragma warning disable CA5351
                    actual = Convert.ToHexStringLower(MD5.HashData(File.ReadAllBytes(resolved)));
#pragma warning restore CA5351
                }

                if (actual != expected)
                {
                    yield return $"{Relative(path)}: LIC_FILES_CHKSUM md5 of {file} is {actual}, the recipe says {expected}";
                }
            }
        }
    }

    public IEnumerable<string> DistroFeatureGuards()
    {
        foreach (var path in Recipes)
        {
            var recipe = BitBakeFile.Load(path);
            var features = Words(recipe.ValueOf("REQUIRED_DISTRO_FEATURES"));
            if (!recipe.Inherits.Contains("features_check") || !features.Contains("edgeupdater"))
            {
                yield return $"{Relative(path)}: must inherit features_check with \"edgeupdater\" in REQUIRED_DISTRO_FEATURES (nothing may build without the feature)";
            }
        }

        foreach (var path in MetadataFiles.Where(f => f.EndsWith(".bbappend", StringComparison.Ordinal)))
        {
            var parsed = BitBakeFile.Load(path);
            var guarded = parsed.Directives.Where(d => d.Keyword is "require" or "include" && IsGuardedInclude(d.Argument)).ToList();
            var other = parsed.Directives.Count - guarded.Count + parsed.Assignments.Count + parsed.Functions.Count;
            if (guarded.Count == 0 || other > 0)
            {
                yield return $"{Relative(path)}: a bbappend may only require files named through bb.utils.contains('DISTRO_FEATURES', 'edgeupdater', ...)";
            }
        }
    }

    public IEnumerable<string> SourceChecksums()
    {
        foreach (var path in Recipes.Concat(MetadataFiles.Where(f => f.EndsWith(".inc", StringComparison.Ordinal))))
        {
            var recipe = BitBakeFile.Load(path);
            var entries = recipe.Assignments
                .Where(a => a.Variable == "SRC_URI" && a.Flag is null)
                .SelectMany(a => Words(a.Value))
                .ToList();
            foreach (var entry in entries)
            {
                var uri = entry.Split(';')[0];
                var parameters = entry.Split(';').Skip(1)
                    .Select(p => p.Split('=', 2))
                    .ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : string.Empty, StringComparer.Ordinal);
                if (uri.StartsWith("${", StringComparison.Ordinal) && !uri.Contains("://", StringComparison.Ordinal) && uri.EndsWith('}'))
                {
                    // A whole variable (a list of fragments the integrator names); nothing to check.
                    continue;
                }

                if (uri.StartsWith("file://", StringComparison.Ordinal))
                {
                    var local = uri["file://".Length..];
                    if (!local.Contains('$', StringComparison.Ordinal) && FindLocalFile(path, local) is null)
                    {
                        yield return $"{Relative(path)}: SRC_URI file://{local} is not in the recipe's files directories";
                    }

                    continue;
                }

                var name = parameters.GetValueOrDefault("name");
                var flag = name is null ? "sha256sum" : $"{name}.sha256sum";
                var names = name is not null && name.Contains("${", StringComparison.Ordinal)
                    ? recipe.Assignments.Where(a => a.Variable == "SRC_URI" && a.Flag?.EndsWith(".sha256sum", StringComparison.Ordinal) == true).Select(a => a.Flag!).ToList()
                    : [flag];
                if (names.Count == 0)
                {
                    yield return $"{Relative(path)}: SRC_URI {uri} has no SRC_URI[...sha256sum]";
                }

                foreach (var sumFlag in names)
                {
                    var sum = recipe.Assignments.LastOrDefault(a => a.Variable == "SRC_URI" && a.Flag == sumFlag)?.Value;
                    if (sum is null || !Sha256().IsMatch(sum))
                    {
                        yield return $"{Relative(path)}: SRC_URI[{sumFlag}] must be 64 lowercase hex digits, found '{sum}'";
                    }
                    else if (sum.All(c => c == '0'))
                    {
                        yield return $"{Relative(path)}: SRC_URI[{sumFlag}] is a placeholder; run scripts/publish-agent.sh --update-recipe";
                    }
                }
            }
        }
    }

    public IEnumerable<string> OverrideSyntax()
    {
        foreach (var path in MetadataFiles)
        {
            var parsed = BitBakeFile.Load(path);
            foreach (var assignment in parsed.Assignments)
            {
                if (OldOverride().IsMatch(assignment.Variable))
                {
                    yield return $"{Relative(path)}: line {assignment.Line}: {assignment.Variable} uses the old '_' override syntax; write ':' (e.g. :append, :${{PN}})";
                }

                var operation = assignment.Overrides.Count > 0 ? assignment.Overrides[^1] : null;
                if (operation == "append" && !assignment.Value.StartsWith(' '))
                {
                    yield return $"{Relative(path)}: line {assignment.Line}: {assignment.FullName} value must start with a space (:append does not add one)";
                }

                if (operation == "prepend" && !(assignment.Value.EndsWith(' ') || (assignment.Variable == "FILESEXTRAPATHS" && assignment.Value.EndsWith(':'))))
                {
                    yield return $"{Relative(path)}: line {assignment.Line}: {assignment.FullName} value must end with a space (or ':' for FILESEXTRAPATHS)";
                }
            }

            foreach (var function in parsed.Functions.Where(f => OldOverride().IsMatch(f.Name)))
            {
                yield return $"{Relative(path)}: line {function.Line}: function {function.Name} uses the old '_' override syntax";
            }
        }
    }

    public IEnumerable<string> NoNetworkInTasks()
    {
        foreach (var path in MetadataFiles)
        {
            var parsed = BitBakeFile.Load(path);
            foreach (var function in parsed.Functions)
            {
                var match = (function.IsPython ? PythonNetwork() : ShellNetwork()).Match(function.Body);
                if (match.Success)
                {
                    yield return $"{Relative(path)}: function {function.Name} (line {function.Line}) reaches for the network ('{match.Value.Trim()}'); only do_fetch may";
                }
            }

            foreach (var assignment in parsed.Assignments.Where(a => a.Flag == "network"))
            {
                yield return $"{Relative(path)}: line {assignment.Line}: {assignment.Variable}[network] lets a task use the network";
            }
        }
    }

    public IEnumerable<string> InheritedClassesExist()
    {
        foreach (var path in MetadataFiles)
        {
            foreach (var name in BitBakeFile.Load(path).Inherits)
            {
                if (!CoreClasses.Contains(name) && !File.Exists(Path.Combine(_layer, "classes", name + ".bbclass")))
                {
                    yield return $"{Relative(path)}: inherits {name}, which is neither in classes/ nor a known openembedded-core class";
                }
            }
        }

        var conf = BitBakeFile.Load(Path.Combine(_layer, "conf", "layer.conf"));
        foreach (var name in conf.Assignments.Where(a => a.Variable == "INHERIT").SelectMany(a => Words(a.Value)))
        {
            if (!File.Exists(Path.Combine(_layer, "classes", name + ".bbclass")))
            {
                yield return $"conf/layer.conf: INHERIT names {name}, which is not in classes/";
            }
        }
    }

    public IEnumerable<string> LocalFilesAreUsed()
    {
        var kasFiles = Directory.Exists(Path.Combine(_layer, "kas"))
            ? Directory.EnumerateFiles(Path.Combine(_layer, "kas"), "*.yml").Select(File.ReadAllText)
            : [];
        var references = MetadataFiles
            .SelectMany(f => BitBakeFile.Load(f).Assignments.Where(a => a.Flag is null).Select(a => a.Value))
            .Concat(kasFiles.SelectMany(t => t.Split('\n')).Select(l => l.Replace('"', ' ')))
            .SelectMany(Words)
            .Where(w => w.StartsWith("file://", StringComparison.Ordinal))
            .Select(w => w["file://".Length..].Split(';')[0])
            .ToHashSet(StringComparer.Ordinal);
        foreach (var file in Directory.EnumerateFiles(_layer, "*", SearchOption.AllDirectories)
                     .Where(f => f.Contains("/files/", StringComparison.Ordinal)))
        {
            var name = file[(file.LastIndexOf("/files/", StringComparison.Ordinal) + "/files/".Length)..];
            // file://dir/ fetches a whole directory.
            var inReferencedDirectory = references.Any(r => r.EndsWith('/') && name.StartsWith(r, StringComparison.Ordinal));
            if (!references.Contains(name) && !inReferencedDirectory)
            {
                yield return $"{Relative(file)}: no recipe's SRC_URI (or documented fragment variable) names file://{name}";
            }
        }
    }

    public IEnumerable<string> PartitionLayoutAgreesWithBootScripts()
    {
        var bootCommand = File.ReadAllText(Path.Combine(_layer, "recipes-bsp", "edgeupdater-boot", "files", "boot.cmd"));
        var grub = File.ReadAllText(Path.Combine(_layer, "wic", "edgeupdater-grub.cfg"));
        var init = File.ReadAllText(Path.Combine(_layer, "recipes-core", "initrdscripts", "files", "edgeupdater-init.sh"));
        var imageClass = BitBakeFile.Load(Path.Combine(_layer, "classes", "edgeupdater-image.bbclass"));
        foreach (var wks in Directory.EnumerateFiles(Path.Combine(_layer, "wic"), "*.wks.in").Order(StringComparer.Ordinal))
        {
            var parts = File.ReadAllLines(wks).Where(l => l.StartsWith("part ", StringComparison.Ordinal)).ToList();
            int Number(string name) => parts.FindIndex(p => p.Contains($"--part-name {name} ", StringComparison.Ordinal)) + 1;
            foreach (var name in new[] { "boot", "root_a", "root_b", "data" })
            {
                if (Number(name) == 0)
                {
                    yield return $"{Relative(wks)}: no partition named {name}";
                }
            }

            var slotSizes = parts.Where(p => p.Contains("--part-name root_", StringComparison.Ordinal))
                .Select(p => FixedSize().Match(p).Value).Distinct().ToList();
            if (slotSizes.Count != 1 || slotSizes[0].Length == 0)
            {
                yield return $"{Relative(wks)}: root_a and root_b must have the same --fixed-size";
            }

            var isGrub = wks.Contains("efi", StringComparison.Ordinal);
            var script = isGrub ? grub : bootCommand;
            foreach (var slot in new[] { "a", "b" })
            {
                var expected = isGrub ? $"set eu_part_{slot}={Number("root_" + slot)};" : $"setenv eu_part_{slot} {Number("root_" + slot)};";
                if (!script.Contains(expected, StringComparison.Ordinal))
                {
                    yield return $"{Relative(wks)}: root_{slot} is partition {Number("root_" + slot)}, but the {(isGrub ? "GRUB fragment" : "boot script")} does not default eu_part_{slot} to it ('{expected}')";
                }
            }

            foreach (var variable in VariableReference().Matches(File.ReadAllText(wks)).Select(m => m.Groups[1].Value).Distinct())
            {
                if (variable.StartsWith("EDGEUPDATER_", StringComparison.Ordinal) && imageClass.ValueOf(variable) is null)
                {
                    yield return $"{Relative(wks)}: ${{{variable}}} has no default in classes/edgeupdater-image.bbclass";
                }
            }
        }

        // The initramfs defaults: PARTLABEL=root_$slot for the slots and PARTLABEL=data.
        foreach (var expected in new[] { "\"PARTLABEL=root_$slot\"", "\"PARTLABEL=data\"" })
        {
            if (!init.Contains(expected, StringComparison.Ordinal))
            {
                yield return $"initramfs: default {expected} expected, matching the wks partition names";
            }
        }
    }

    public IEnumerable<string> KasConfiguration()
    {
        foreach (var kas in Directory.EnumerateFiles(Path.Combine(_layer, "kas"), "*.yml"))
        {
            var text = File.ReadAllText(kas);
            if (!text.Contains("\n      yocto/meta-edgeupdater:", StringComparison.Ordinal)
                || !Directory.Exists(Path.Combine(_repository, "yocto", "meta-edgeupdater")))
            {
                yield return $"{Relative(kas)}: must add the layer as yocto/meta-edgeupdater of this repository";
            }

            var target = KasTarget().Match(text);
            if (!target.Success || !File.Exists(Path.Combine(_layer, "recipes-core", "images", target.Groups[1].Value + ".bb")))
            {
                yield return $"{Relative(kas)}: target must be an image recipe of the layer";
            }

            foreach (Match wks in KasWksFile().Matches(text))
            {
                if (!File.Exists(Path.Combine(_layer, "wic", wks.Groups[1].Value)))
                {
                    yield return $"{Relative(kas)}: WKS_FILE {wks.Groups[1].Value} is not in wic/";
                }
            }

            if (!text.Contains("branch: scarthgap", StringComparison.Ordinal))
            {
                yield return $"{Relative(kas)}: poky must be the scarthgap branch";
            }
        }
    }

    private static bool IsImage(BitBakeFile recipe) => recipe.Inherits.Any(i => i is "image" or "core-image");

    private static bool IsGuardedInclude(string argument) =>
        GuardedInclude().IsMatch(argument.Replace('"', '\''));

    private static List<string> Words(string? value) =>
        (value ?? string.Empty).Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries).ToList();

    private string? ResolveLicenseFile(string recipePath, BitBakeFile recipe, string file)
    {
        var local = FindLocalFile(recipePath, file);
        if (local is not null)
        {
            return local;
        }

        // The agent's S is the unpacked release tarball, which scripts/publish-agent.sh fills with the
        // repository's LICENSE (the release test checks that).
        var source = recipe.ValueOf("S") ?? string.Empty;
        if (source.StartsWith("${WORKDIR}/edgeupdater-agent-", StringComparison.Ordinal) && file == "LICENSE")
        {
            return Path.Combine(_repository, "LICENSE");
        }

        return null;
    }

    /// <summary>FILESPATH as BitBake builds it for a layer recipe: ${BP}, ${BPN} and files/ next to it.</summary>
    private static string? FindLocalFile(string recipePath, string name)
    {
        var directory = Path.GetDirectoryName(recipePath)!;
        var baseName = Path.GetFileNameWithoutExtension(recipePath);
        var bpn = baseName.Split('_')[0];
        var bp = baseName.Replace('_', '-');
        foreach (var candidate in new[] { bp, bpn, "files" })
        {
            var path = Path.Combine(directory, candidate, name);
            if (File.Exists(path) || Directory.Exists(path))
            {
                return path;
            }
        }

        return null;
    }

    private string Relative(string path) => Path.GetRelativePath(_layer, path);

    [GeneratedRegex(@"^file://(?<file>[^;]+);md5=(?<md5>[0-9a-f]{32})$")]
    private static partial Regex LicenseEntry();

    [GeneratedRegex(@"^[0-9a-f]{64}$")]
    private static partial Regex Sha256();

    [GeneratedRegex(@"_(append|prepend|remove)(_|$)|_\$\{(PN|BPN|PN-\w+)\}|_(pn|virtclass)-")]
    private static partial Regex OldOverride();

    [GeneratedRegex(@"\b(wget|curl)\s|\bgit\s+(clone|fetch|pull|ls-remote)|\bpip3?\s+install|\bnpm\s+(install|ci)\b|\bapt(-get)?\s+(install|update)|\b(scp|rsync)\s.*:|https?://")]
    private static partial Regex ShellNetwork();

    [GeneratedRegex(@"\b(urllib|requests\.|http\.client|socket\.|ftplib|bb\.fetch)|https?://")]
    private static partial Regex PythonNetwork();

    [GeneratedRegex(@"^\$\{@bb\.utils\.(contains|filter)\('DISTRO_FEATURES', 'edgeupdater', '[^']+', '', d\)\}$")]
    private static partial Regex GuardedInclude();

    [GeneratedRegex(@"--fixed-size \S+")]
    private static partial Regex FixedSize();

    [GeneratedRegex(@"\$\{([A-Z0-9_]+)\}")]
    private static partial Regex VariableReference();

    [GeneratedRegex(@"(?m)^target:\s*(\S+)\s*$")]
    private static partial Regex KasTarget();

    [GeneratedRegex(@"WKS_FILE\s*=\s*""([^""]+)""")]
    private static partial Regex KasWksFile();
}
