using System.CommandLine;
using System.Text;
using EdgeUpdater.Trust;
using EdgeUpdater.Trust.Envelopes;
using EdgeUpdater.Trust.Keys;
using EdgeUpdater.Trust.KeySets;

namespace EdgeUpdater.Cli.Commands;

/// <summary>
/// <c>edgeupdater keys</c>: generate and show keys, sign key sets, rotate the root keys, check a key set
/// chain. The procedure these commands serve is in docs/keys.md.
/// </summary>
internal static class KeyCommands
{
    /// <summary>Builds the <c>keys</c> command group.</summary>
    public static Command Create()
    {
        var command = new Command("keys", "Generate, show and rotate signing keys; sign and check key sets.");
        command.Subcommands.Add(CreateGenerate());
        command.Subcommands.Add(CreateShow());
        command.Subcommands.Add(CreateSignKeySet());
        command.Subcommands.Add(CreateRotate());
        command.Subcommands.Add(CreateVerifyKeySet());
        return command;
    }

    private static Command CreateGenerate()
    {
        var output = new Option<string>("--out", "-o") { Description = "Directory (file named <role>-<key id>.key) or private key file path; the public key goes beside it as .pub.", Required = true };
        var role = new Option<string>("--role") { Description = "root (signs key sets, keep offline) or release (signs manifests).", DefaultValueFactory = _ => "release" };
        role.AcceptOnlyFromAmong("root", "release");
        var passphraseFile = KeyMaterial.PassphraseFileOption();
        var passphraseEnv = KeyMaterial.PassphraseEnvOption();
        var command = new Command("generate", "Generate an Ed25519 key pair: private key file (mode 0600, optionally passphrase-protected) and PEM public key.")
        {
            output, role, passphraseFile, passphraseEnv,
        };
        command.SetAction((parse, cancellationToken) => KeyMaterial.RunAsync(parse, async stdout =>
        {
            var keyRole = parse.GetValue(role) == "root" ? KeyRole.Root : KeyRole.Release;
            var passphrase = await KeyMaterial.ReadPassphraseAsync(parse, passphraseFile, passphraseEnv, cancellationToken).ConfigureAwait(false);
            using var key = SigningKey.Generate();
            var target = parse.GetValue(output)!;
            var privatePath = Directory.Exists(target) || target.EndsWith('/')
                ? Path.Combine(target, $"{(keyRole == KeyRole.Root ? "root" : "release")}-{key.KeyId[..16]}.key")
                : target;
            var publicPath = PublicPathFor(privatePath);
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(privatePath))!);
            if (File.Exists(publicPath))
            {
                throw new IOException($"'{publicPath}' already exists; not overwriting a key");
            }

            await PrivateKeyFile.WriteAsync(privatePath, key, keyRole, passphrase, cancellationToken: cancellationToken).ConfigureAwait(false);
            await PublicKeyFile.WriteAsync(publicPath, key.PublicKey, cancellationToken).ConfigureAwait(false);
            await stdout.WriteLineAsync($"""
                generated {(keyRole == KeyRole.Root ? "root" : "release")} key {key.KeyId}
                  private key: {privatePath} (mode 0600, {(passphrase is null ? "not encrypted" : "passphrase-protected")})
                  public key:  {publicPath}
                """).ConfigureAwait(false);
            if (keyRole == KeyRole.Root && passphrase is null)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync("edgeupdater: note: this root key is not passphrase-protected; keep it offline (docs/keys.md).").ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    private static string PublicPathFor(string privatePath)
        => privatePath.EndsWith(".key", StringComparison.Ordinal) ? privatePath[..^4] + ".pub" : privatePath + ".pub";

    private static Command CreateShow()
    {
        var file = new Argument<string>("file") { Description = "A private key file, a public key (PEM/DER) or a key set." };
        var command = new Command("show", "Show a key's id and public key, or a key set's contents (signatures are not verified here).") { file };
        command.SetAction((parse, cancellationToken) => KeyMaterial.RunAsync(parse, async stdout =>
        {
            var path = parse.GetValue(file)!;
            var contents = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
            if (PrivateKeyFile.LooksLikePrivateKey(contents))
            {
                var info = await PrivateKeyFile.InspectAsync(path, cancellationToken).ConfigureAwait(false);
                await stdout.WriteLineAsync($"""
                    private key {info.KeyId}
                      algorithm: ed25519
                      role:      {info.Role?.ToString().ToLowerInvariant() ?? "(not recorded)"}
                      encrypted: {(info.IsEncrypted ? "yes (argon2id, xchacha20-poly1305)" : "no")}
                      created:   {info.Created?.ToString("O") ?? "(not recorded)"}
                    {info.PublicKey.ToPem().TrimEnd()}
                    """).ConfigureAwait(false);
            }
            else if (contents.AsSpan().TrimStart(" \t\r\n"u8).StartsWith("{"u8))
            {
                await ShowKeySetAsync(stdout, contents).ConfigureAwait(false);
            }
            else
            {
                var key = PublicKeyFile.Parse(contents);
                await stdout.WriteLineAsync($"public key {key.KeyId}\n  algorithm: ed25519\n{key.ToPem().TrimEnd()}").ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    private static async Task ShowKeySetAsync(TextWriter stdout, byte[] contents)
    {
        var envelope = SignedEnvelope.Parse(contents);
        if (envelope.PayloadType != PayloadTypes.KeySet)
        {
            throw new TrustException(TrustFailure.WrongPayloadType, $"not a key set (payloadType '{envelope.PayloadType}'); for a manifest use 'edgeupdater release verify'");
        }

        var keySet = KeySet.Parse(envelope.Payload.Span);
        var text = new StringBuilder();
        text.AppendLine($"key set v{keySet.Version} (signatures not verified; use 'edgeupdater keys verify-keyset')");
        text.AppendLine($"  created:           {keySet.Created:O}");
        text.AppendLine($"  expires:           {keySet.Expires:O}");
        text.AppendLine($"  root threshold:    {keySet.RootThreshold}");
        text.AppendLine($"  release threshold: {keySet.ReleaseThreshold}");
        foreach (var key in keySet.Keys)
        {
            var state = key.Role == KeyRole.Root ? string.Empty : $"  expires {key.Expires:O}{(key.Revoked ? "  REVOKED" : string.Empty)}";
            text.AppendLine($"  {(key.Role == KeyRole.Root ? "root   " : "release")} {key.KeyId}{state}");
        }

        text.Append($"  signed by: {string.Join(", ", envelope.Signatures.Select(s => s.KeyId))}");
        await stdout.WriteLineAsync(text.ToString()).ConfigureAwait(false);
    }

    private sealed record KeySetOptions(
        Option<string> Output,
        Option<string?> Previous,
        Option<string[]> Roots,
        Option<int?> RootThreshold,
        Option<string[]> Release,
        Option<string> ReleaseExpires,
        Option<string[]> Revoke,
        Option<string[]> Remove,
        Option<int?> ReleaseThreshold,
        Option<long?> Version,
        Option<string> Expires,
        Option<string[]> Sign,
        Option<string[]> PassphraseFiles,
        Option<string[]> PassphraseEnvs);

    private static KeySetOptions CreateKeySetOptions(string rootsName, string rootsDescription, bool previousRequired) => new(
        new Option<string>("--out", "-o") { Description = "Where to write the signed key set.", Required = true },
        new Option<string?>("--previous") { Description = "The current key set: the new one starts from its keys, gets the next version and must be signed by its roots.", Required = previousRequired },
        new Option<string[]>(rootsName) { Description = rootsDescription, AllowMultipleArgumentsPerToken = true },
        new Option<int?>("--root-threshold") { Description = "Root signatures the next key set will need (default: the previous set's, or 1)." },
        new Option<string[]>("--release") { Description = "Release public key(s) to add.", AllowMultipleArgumentsPerToken = true },
        new Option<string>("--release-expires") { Description = "Expiry of the added release keys (date or duration such as 365d).", DefaultValueFactory = _ => "365d" },
        new Option<string[]>("--revoke") { Description = "Key id(s) of release keys to mark revoked.", AllowMultipleArgumentsPerToken = true },
        new Option<string[]>("--remove") { Description = "Key id(s) of release keys to drop from the set.", AllowMultipleArgumentsPerToken = true },
        new Option<int?>("--release-threshold") { Description = "Release signatures a manifest needs (default: the previous set's, or 1)." },
        new Option<long?>("--version") { Description = "Key set version (default: previous + 1, or 1)." },
        new Option<string>("--expires") { Description = "Expiry of the key set (date or duration).", DefaultValueFactory = _ => "365d" },
        new Option<string[]>("--sign") { Description = "Private root key file(s) that sign: the previous set's roots (threshold) and every new root.", Required = true, AllowMultipleArgumentsPerToken = true },
        KeyMaterial.PassphraseFilesOption(),
        KeyMaterial.PassphraseEnvsOption());

    private static void AddAll(Command command, KeySetOptions o)
    {
        foreach (var option in new Option[] { o.Output, o.Previous, o.Roots, o.RootThreshold, o.Release, o.ReleaseExpires, o.Revoke, o.Remove, o.ReleaseThreshold, o.Version, o.Expires, o.Sign, o.PassphraseFiles, o.PassphraseEnvs })
        {
            command.Options.Add(option);
        }
    }

    private static Command CreateSignKeySet()
    {
        var options = CreateKeySetOptions("--root", "Root public key(s) of the new set (default: the previous set's roots; required without --previous).", previousRequired: false);
        var command = new Command("sign-keyset", "Create and sign a key set: root keys, release keys with expiry, revocations, thresholds, version.");
        AddAll(command, options);
        command.SetAction((parse, cancellationToken) => KeyMaterial.RunAsync(parse, stdout => SignKeySetAsync(parse, options, stdout, rotate: false, cancellationToken)));
        return command;
    }

    private static Command CreateRotate()
    {
        var options = CreateKeySetOptions("--new-root", "Root public key(s) replacing the current root set (required).", previousRequired: true);
        var command = new Command("rotate", "Replace the root keys: a new key set signed by the current roots (threshold) and by every new root.");
        AddAll(command, options);
        command.SetAction((parse, cancellationToken) => KeyMaterial.RunAsync(parse, stdout => SignKeySetAsync(parse, options, stdout, rotate: true, cancellationToken)));
        return command;
    }

    private static async Task<int> SignKeySetAsync(ParseResult parse, KeySetOptions o, TextWriter stdout, bool rotate, CancellationToken cancellationToken)
    {
        var now = KeyMaterial.Now();
        var previousPath = parse.GetValue(o.Previous);
        (KeySet KeySet, byte[] Envelope)? previous = previousPath is null ? null : await KeyMaterial.LoadKeySetAsync(previousPath, cancellationToken).ConfigureAwait(false);
        var rootPaths = parse.GetValue(o.Roots) ?? [];
        if (rotate && rootPaths.Length == 0)
        {
            throw new CommandUsageException("keys rotate needs --new-root with the public key(s) of the new root set");
        }

        if (previous is null && rootPaths.Length == 0)
        {
            throw new CommandUsageException("a first key set needs --root with its root public key(s) (or --previous to start from an existing set)");
        }

        var roots = rootPaths.Length > 0
            ? (await KeyMaterial.LoadPublicKeysAsync(rootPaths, cancellationToken).ConfigureAwait(false)).Select(k => KeySetEntry.For(k, KeyRole.Root)).ToList()
            : [.. previous!.Value.KeySet.Roots];

        var releaseExpires = KeyMaterial.ParseWhen(parse.GetValue(o.ReleaseExpires)!, now, "--release-expires");
        var releases = previous?.KeySet.ReleaseKeys.ToList() ?? [];
        foreach (var id in parse.GetValue(o.Remove) ?? [])
        {
            if (releases.RemoveAll(k => k.KeyId == id) == 0)
            {
                throw new CommandUsageException($"--remove {id}: no release key with that id in the previous key set");
            }
        }

        foreach (var key in await KeyMaterial.LoadPublicKeysAsync(parse.GetValue(o.Release) ?? [], cancellationToken).ConfigureAwait(false))
        {
            releases.RemoveAll(k => k.KeyId == key.KeyId);
            releases.Add(KeySetEntry.For(key, KeyRole.Release, releaseExpires));
        }

        foreach (var id in parse.GetValue(o.Revoke) ?? [])
        {
            var index = releases.FindIndex(k => k.KeyId == id);
            if (index < 0)
            {
                throw new CommandUsageException($"--revoke {id}: no release key with that id (list the key set with 'edgeupdater keys show')");
            }

            releases[index] = releases[index] with { Revoked = true };
        }

        var keySet = new KeySet
        {
            Version = parse.GetValue(o.Version) ?? (previous is { } p ? p.KeySet.Version + 1 : 1),
            Created = now,
            Expires = KeyMaterial.ParseWhen(parse.GetValue(o.Expires)!, now, "--expires"),
            RootThreshold = parse.GetValue(o.RootThreshold) ?? (rootPaths.Length == 0 && previous is { } p2 ? p2.KeySet.RootThreshold : 1),
            ReleaseThreshold = parse.GetValue(o.ReleaseThreshold) ?? previous?.KeySet.ReleaseThreshold ?? 1,
            Keys = [.. roots, .. releases],
        };
        var payload = keySet.ToPayloadBytes();

        var passphrases = await KeyMaterial.ReadPassphrasesAsync(parse, o.PassphraseFiles, o.PassphraseEnvs, cancellationToken).ConfigureAwait(false);
        var signers = await KeyMaterial.LoadSigningKeysAsync(parse.GetValue(o.Sign)!, passphrases, cancellationToken).ConfigureAwait(false);
        byte[] envelope;
        try
        {
            envelope = SignedEnvelope.Create(PayloadTypes.KeySet, payload, signers).ToJsonBytes();
        }
        finally
        {
            KeyMaterial.Dispose(signers);
        }

        // Refuse to write a key set that devices would refuse: same check as theirs for this link.
        var checkRoots = previous is { } prev ? TrustRoot.FromKeySet(prev.KeySet) : TrustRoot.FromKeySet(keySet);
        KeySetVerifier.VerifyLink(checkRoots, previous?.KeySet.Version ?? 0, envelope, previous is null ? "its own root keys" : $"the root keys of key set v{previous.Value.KeySet.Version}");

        var output = parse.GetValue(o.Output)!;
        await File.WriteAllBytesAsync(output, envelope, cancellationToken).ConfigureAwait(false);
        await stdout.WriteLineAsync(
            $"wrote key set v{keySet.Version} to {output}: {keySet.Roots.Count()} root key(s) (threshold {keySet.RootThreshold}), "
            + $"{keySet.ReleaseKeys.Count(k => !k.Revoked)} active release key(s) (threshold {keySet.ReleaseThreshold}), expires {keySet.Expires:O}").ConfigureAwait(false);
        return ExitCodes.Ok;
    }

    private static Command CreateVerifyKeySet()
    {
        var roots = new Option<string[]>("--root") { Description = "Pinned root public key(s).", Required = true, AllowMultipleArgumentsPerToken = true };
        var threshold = new Option<int>("--root-threshold") { Description = "Pinned root signatures required.", DefaultValueFactory = _ => 1 };
        var chain = new Argument<string[]>("keyset") { Description = "Key set files, oldest first.", Arity = ArgumentArity.OneOrMore };
        var now = new Option<string?>("--now") { Description = "Judge expiry at this instant instead of now." };
        var command = new Command("verify-keyset", "Check that a chain of key sets leads from the pinned root keys to a valid newest key set.") { chain, roots, threshold, now };
        command.SetAction((parse, cancellationToken) => KeyMaterial.RunAsync(parse, async stdout =>
        {
            var clock = KeyMaterial.Now();
            var at = parse.GetValue(now) is { } text ? KeyMaterial.ParseWhen(text, clock, "--now") : clock;
            var pinned = new TrustRoot(await KeyMaterial.LoadPublicKeysAsync(parse.GetValue(roots)!, cancellationToken).ConfigureAwait(false), parse.GetValue(threshold));
            var verified = KeySetVerifier.VerifyChain(pinned, await KeyMaterial.LoadChainAsync(parse.GetValue(chain)!, cancellationToken).ConfigureAwait(false), at);
            await stdout.WriteLineAsync($"key set v{verified.Version} verified from the pinned root(s); expires {verified.KeySet.Expires:O}").ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        return command;
    }
}
