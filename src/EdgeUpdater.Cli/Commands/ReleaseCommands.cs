using System.CommandLine;
using System.Security.Cryptography;
using EdgeUpdater.Trust;
using EdgeUpdater.Trust.Envelopes;
using EdgeUpdater.Trust.KeySets;
using EdgeUpdater.Trust.Manifests;
using EdgeUpdater.Trust.Policy;
using EdgeUpdater.Trust.Versioning;

namespace EdgeUpdater.Cli.Commands;

/// <summary><c>edgeupdater release</c>: sign a manifest for an image, and verify one the way a device does.</summary>
internal static class ReleaseCommands
{
    /// <summary>Default lifetime of a manifest.</summary>
    private const string DefaultManifestLifetime = "90d";

    /// <summary>Builds the <c>release</c> command group.</summary>
    public static Command Create()
    {
        var command = new Command("release", "Sign and verify release manifests.");
        command.Subcommands.Add(CreateSign());
        command.Subcommands.Add(CreateVerify());
        return command;
    }

    private static Command CreateSign()
    {
        var image = new Argument<string>("image") { Description = "The image file the manifest describes (its SHA-256 and size are taken from it)." };
        var keys = new Option<string[]>("--key") { Description = "Release private key file(s) that sign.", Required = true, AllowMultipleArgumentsPerToken = true };
        var keySets = new Option<string[]>("--keyset") { Description = "The current key set (or its chain, newest last): signers must be valid release keys in the newest and meet its threshold.", AllowMultipleArgumentsPerToken = true };
        var name = new Option<string?>("--name") { Description = "Image name (default: config.json's name)." };
        var version = new Option<string?>("--version") { Description = "Image version, semantic (default: config.json's version)." };
        var kind = new Option<string?>("--target-kind") { Description = "system (A/B root filesystem) or app (overlay-mounted application) (default: config.json's target)." };
        kind.AcceptOnlyFromAmong("system", "app");
        var target = new Option<string?>("--target") { Description = "Target name on the device, when it differs from the image name." };
        var hardware = new Option<string[]>("--hardware") { Description = "Compatible hardware id(s) (default: config.json's compatible.hardware).", AllowMultipleArgumentsPerToken = true };
        var arch = new Option<string[]>("--arch") { Description = "Compatible architecture(s), e.g. arm64, x64 (default: config.json's compatible.architectures).", AllowMultipleArgumentsPerToken = true };
        var expires = new Option<string>("--expires") { Description = "Expiry (date or duration).", DefaultValueFactory = _ => DefaultManifestLifetime };
        var minAgent = new Option<string?>("--min-agent-version") { Description = "Lowest agent version that may install the image." };
        var allowDowngrade = new Option<bool>("--allow-downgrade") { Description = "Allow installing over a newer or equal version." };
        var output = new Option<string>("--output", "-o") { Description = "Where to write the signed manifest.", Required = true };
        var passphraseFiles = KeyMaterial.PassphraseFilesOption();
        var passphraseEnvs = KeyMaterial.PassphraseEnvsOption();
        var command = new Command("sign", "Write a signed release manifest for an image.")
        {
            image, keys, keySets, name, version, kind, target, hardware, arch, expires, minAgent, allowDowngrade, output, passphraseFiles, passphraseEnvs,
        };
        command.SetAction((parse, cancellationToken) => KeyMaterial.RunAsync(parse, async stdout =>
        {
            var now = KeyMaterial.Now();
            var imagePath = parse.GetValue(image)!;

            // An EdgeUpdater image supplies defaults from its config.json; options override them, and
            // any other file (a raw system image, say) needs them given.
            var config = TryReadImageConfig(imagePath);
            var hardwareIds = parse.GetValue(hardware) is { Length: > 0 } h ? h : config?.Compatible.Hardware.ToArray() ?? [];
            var architectures = parse.GetValue(arch) is { Length: > 0 } a ? a : config?.Compatible.Architectures.ToArray() ?? [];
            var kindName = parse.GetValue(kind) ?? config?.Target switch
            {
                EdgeUpdater.Images.TargetKind.System => "system",
                EdgeUpdater.Images.TargetKind.App => "app",
                _ => null,
            };
            var manifest = new ReleaseManifest
            {
                Name = parse.GetValue(name) ?? config?.Name ?? throw new CommandUsageException("--name is required (the file is not an EdgeUpdater image with a config.json)"),
                Version = SemanticVersion.Parse(parse.GetValue(version) ?? config?.Version ?? throw new CommandUsageException("--version is required (the file is not an EdgeUpdater image with a config.json)")),
                TargetKind = (kindName ?? throw new CommandUsageException("--target-kind is required (system or app)")) == "system" ? TargetKind.System : TargetKind.App,
                Target = parse.GetValue(target),
                ImageSha256 = string.Empty,
                ImageSize = 0,
                Hardware = hardwareIds.Length > 0 ? hardwareIds : throw new CommandUsageException("--hardware is required (config.json names no compatible hardware)"),
                Architectures = architectures.Length > 0 ? architectures : throw new CommandUsageException("--arch is required (config.json names no compatible architectures)"),
                Created = now,
                Expires = KeyMaterial.ParseWhen(parse.GetValue(expires)!, now, "--expires"),
                MinAgentVersion = parse.GetValue(minAgent) is { } min ? SemanticVersion.Parse(min) : null,
                AllowDowngrade = parse.GetValue(allowDowngrade),
            };
            var digest = await PayloadVerifier.ComputeFileAsync(imagePath, cancellationToken).ConfigureAwait(false);
            manifest = manifest with { ImageSha256 = digest.Sha256, ImageSize = digest.Size };
            var payload = manifest.ToPayloadBytes();

            var passphrases = await KeyMaterial.ReadPassphrasesAsync(parse, passphraseFiles, passphraseEnvs, cancellationToken).ConfigureAwait(false);
            var signers = await KeyMaterial.LoadSigningKeysAsync(parse.GetValue(keys)!, passphrases, cancellationToken).ConfigureAwait(false);
            byte[] envelope;
            try
            {
                envelope = SignedEnvelope.Create(PayloadTypes.ReleaseManifest, payload, signers).ToJsonBytes();
            }
            finally
            {
                KeyMaterial.Dispose(signers);
            }

            if (parse.GetValue(keySets) is { Length: > 0 } keySetPaths)
            {
                // The newest key set judged on its own roots: are the signers valid release keys, enough of them?
                var (newest, newestEnvelope) = await KeyMaterial.LoadKeySetAsync(keySetPaths[^1], cancellationToken).ConfigureAwait(false);
                ReleaseVerifier.Verify(envelope, new TrustContext { PinnedRoots = TrustRoot.FromKeySet(newest), KeySetChain = [newestEnvelope], Now = now });
            }

            var outputPath = parse.GetValue(output)!;
            await File.WriteAllBytesAsync(outputPath, envelope, cancellationToken).ConfigureAwait(false);
            await stdout.WriteLineAsync($"""
                wrote manifest {outputPath}
                  {manifest.Name} {manifest.Version} ({(manifest.TargetKind == TargetKind.System ? "system" : "app")}), image {digest.Sha256} ({digest.Size} bytes)
                  manifest sha256: {Convert.ToHexStringLower(SHA256.HashData(envelope))}
                  expires: {manifest.Expires:O}
                """).ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command CreateVerify()
    {
        var manifestPath = new Argument<string>("manifest") { Description = "The signed manifest file." };
        var imagePath = new Option<string?>("--image") { Description = "Also check this image file's SHA-256 and size." };
        var roots = new Option<string[]>("--root") { Description = "Pinned root public key(s).", Required = true, AllowMultipleArgumentsPerToken = true };
        var rootThreshold = new Option<int>("--root-threshold") { Description = "Pinned root signatures required.", DefaultValueFactory = _ => 1 };
        var keySets = new Option<string[]>("--keyset") { Description = "Key set file(s), oldest first; the first is signed by the pinned roots.", Required = true, AllowMultipleArgumentsPerToken = true };
        var minKeySet = new Option<long>("--min-keyset-version") { Description = "Refuse a newest key set older than this version." };
        var hardware = new Option<string?>("--hardware") { Description = "Check compatibility with this hardware id (needs --arch)." };
        var arch = new Option<string?>("--arch") { Description = "Check compatibility with this architecture (needs --hardware)." };
        var agentVersion = new Option<string?>("--agent-version") { Description = "Check the manifest's minimum agent version against this one." };
        var installedVersion = new Option<string?>("--installed-version") { Description = "Version installed now (needs --installed-created): refuse versions not newer unless downgrade is allowed." };
        var installedCreated = new Option<string?>("--installed-created") { Description = "Creation time of the installed release's manifest: refuse older manifests." };
        var now = new Option<string?>("--now") { Description = "Judge expiry at this instant instead of now." };
        var command = new Command("verify", "Verify a manifest as a device would: key set chain, signatures, expiry, compatibility, optionally the image.")
        {
            manifestPath, imagePath, roots, rootThreshold, keySets, minKeySet, hardware, arch, agentVersion, installedVersion, installedCreated, now,
        };
        command.SetAction((parse, cancellationToken) => KeyMaterial.RunAsync(parse, async stdout =>
        {
            var clock = KeyMaterial.Now();
            var at = parse.GetValue(now) is { } nowText ? KeyMaterial.ParseWhen(nowText, clock, "--now") : clock;
            var device = (parse.GetValue(hardware), parse.GetValue(arch)) switch
            {
                (null, null) => null,
                ({ } h, { } a) => new DeviceFacts { Hardware = h, Architecture = a, AgentVersion = ParseOptionalVersion(parse.GetValue(agentVersion)) },
                _ => throw new CommandUsageException("--hardware and --arch go together"),
            };
            var installed = (parse.GetValue(installedVersion), parse.GetValue(installedCreated)) switch
            {
                (null, null) => null,
                ({ } v, { } c) => new InstalledRelease { Version = SemanticVersion.Parse(v), ManifestCreated = KeyMaterial.ParseWhen(c, clock, "--installed-created") },
                _ => throw new CommandUsageException("--installed-version and --installed-created go together"),
            };
            var context = new TrustContext
            {
                PinnedRoots = new TrustRoot(await KeyMaterial.LoadPublicKeysAsync(parse.GetValue(roots)!, cancellationToken).ConfigureAwait(false), parse.GetValue(rootThreshold)),
                KeySetChain = await KeyMaterial.LoadChainAsync(parse.GetValue(keySets)!, cancellationToken).ConfigureAwait(false),
                MinimumKeySetVersion = parse.GetValue(minKeySet),
                Now = at,
                Device = device,
                Installed = installed,
            };

            var envelope = await File.ReadAllBytesAsync(parse.GetValue(manifestPath)!, cancellationToken).ConfigureAwait(false);
            var verified = ReleaseVerifier.Verify(envelope, context);
            var m = verified.Manifest;
            if (parse.GetValue(imagePath) is { } image)
            {
                await PayloadVerifier.VerifyFileAsync(image, m, cancellationToken).ConfigureAwait(false);
            }

            await stdout.WriteLineAsync($"""
                verified {m.Name} {m.Version} ({(m.TargetKind == TargetKind.System ? "system" : "app")})
                  image:     {m.ImageSha256} ({m.ImageSize} bytes){(parse.GetValue(imagePath) is null ? string.Empty : ", image file matches")}
                  hardware:  {string.Join(", ", m.Hardware)}; architectures: {string.Join(", ", m.Architectures)}
                  created:   {m.Created:O}; expires: {m.Expires:O}
                  signed by: {string.Join(", ", verified.SignerKeyIds)} (key set v{verified.KeySet.Version})
                  manifest sha256: {verified.EnvelopeSha256}
                """).ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static EdgeUpdater.Images.ImageConfig? TryReadImageConfig(string imagePath)
    {
        try
        {
            using var image = EdgeUpdater.Images.EdgeUpdaterImage.Open(imagePath);
            return image.Config;
        }
        catch (Exception e) when (e is EdgeUpdater.SquashFs.SquashFsException or EdgeUpdater.Images.ImageException)
        {
            // Not an EdgeUpdater image: every manifest field must then come from the options.
            return null;
        }
    }

    private static SemanticVersion? ParseOptionalVersion(string? text) => text is null ? null : SemanticVersion.Parse(text);
}
