using System.CommandLine;
using System.Globalization;
using EdgeUpdater.Trust;
using EdgeUpdater.Trust.Envelopes;
using EdgeUpdater.Trust.Keys;
using EdgeUpdater.Trust.KeySets;

namespace EdgeUpdater.Cli.Commands;

/// <summary>A command line that cannot be acted on; the message says what to pass instead (exit code 2).</summary>
internal sealed class CommandUsageException(string message) : Exception(message);

/// <summary>
/// What the <c>keys</c> and <c>release</c> commands share: passphrase options, loading keys and key sets,
/// reading times, and turning failures into messages and exit codes.
/// </summary>
internal static class KeyMaterial
{
    public static Option<string?> PassphraseFileOption() => new("--passphrase-file")
    {
        Description = "Protect the new private key with the passphrase in this file (first line).",
    };

    public static Option<string?> PassphraseEnvOption() => new("--passphrase-env")
    {
        Description = "Protect the new private key with the passphrase in this environment variable.",
    };

    /// <summary>The one passphrase from <c>--passphrase-file</c> or <c>--passphrase-env</c>, or null when neither is given.</summary>
    public static async Task<string?> ReadPassphraseAsync(ParseResult parse, Option<string?> file, Option<string?> env, CancellationToken cancellationToken)
    {
        var path = parse.GetValue(file);
        var variable = parse.GetValue(env);
        if (path is not null && variable is not null)
        {
            throw new CommandUsageException("give --passphrase-file or --passphrase-env, not both");
        }

        if (path is not null)
        {
            return NonEmpty(FirstLine(await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false)), $"--passphrase-file {path}");
        }

        return variable is null
            ? null
            : NonEmpty(
                Environment.GetEnvironmentVariable(variable) ?? throw new CommandUsageException($"environment variable {variable} (from --passphrase-env) is not set"),
                $"--passphrase-env {variable}");
    }

    public static Option<string[]> PassphraseFilesOption() => new("--passphrase-file")
    {
        Description = "Read a passphrase for the encrypted private key(s) from this file (first line); repeat for keys with different passphrases.",
    };

    public static Option<string[]> PassphraseEnvsOption() => new("--passphrase-env")
    {
        Description = "Read a passphrase for the encrypted private key(s) from this environment variable; repeatable.",
    };

    /// <summary>Every passphrase given with the repeatable <c>--passphrase-file</c> and <c>--passphrase-env</c>.</summary>
    public static async Task<List<string>> ReadPassphrasesAsync(ParseResult parse, Option<string[]> files, Option<string[]> envs, CancellationToken cancellationToken)
    {
        var passphrases = new List<string>();
        foreach (var path in parse.GetValue(files) ?? [])
        {
            passphrases.Add(NonEmpty(FirstLine(await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false)), $"--passphrase-file {path}"));
        }

        foreach (var variable in parse.GetValue(envs) ?? [])
        {
            passphrases.Add(NonEmpty(
                Environment.GetEnvironmentVariable(variable) ?? throw new CommandUsageException($"environment variable {variable} (from --passphrase-env) is not set"),
                $"--passphrase-env {variable}"));
        }

        return passphrases;
    }

    private static string FirstLine(string text)
    {
        var newline = text.IndexOf('\n', StringComparison.Ordinal);
        return (newline >= 0 ? text[..newline] : text).TrimEnd('\r');
    }

    private static string NonEmpty(string passphrase, string source)
        => passphrase.Length == 0 ? throw new CommandUsageException($"the passphrase from {source} is empty") : passphrase;

    /// <summary>Loads private keys; each encrypted one is opened with the first of <paramref name="passphrases"/> that fits.</summary>
    public static async Task<List<SigningKey>> LoadSigningKeysAsync(IEnumerable<string> paths, IReadOnlyList<string> passphrases, CancellationToken cancellationToken)
    {
        var keys = new List<SigningKey>();
        try
        {
            foreach (var path in paths)
            {
                keys.Add(await LoadSigningKeyAsync(path, passphrases, cancellationToken).ConfigureAwait(false));
            }

            return keys;
        }
        catch
        {
            Dispose(keys);
            throw;
        }
    }

    private static async Task<SigningKey> LoadSigningKeyAsync(string path, IReadOnlyList<string> passphrases, CancellationToken cancellationToken)
    {
        if (passphrases.Count == 0)
        {
            try
            {
                return await PrivateKeyFile.ReadAsync(path, null, cancellationToken).ConfigureAwait(false);
            }
            catch (TrustException e) when (e.Failure == TrustFailure.PassphraseRequired)
            {
                throw new CommandUsageException($"{e.Message}: pass --passphrase-file or --passphrase-env");
            }
        }

        for (var i = 0; ; i++)
        {
            try
            {
                return await PrivateKeyFile.ReadAsync(path, passphrases[i], cancellationToken).ConfigureAwait(false);
            }
            catch (TrustException e) when (e.Failure == TrustFailure.WrongPassphrase && i + 1 < passphrases.Count)
            {
                // Several keys, several passphrases: try the next one.
            }
        }
    }

    public static void Dispose(IEnumerable<SigningKey> keys)
    {
        foreach (var key in keys)
        {
            key.Dispose();
        }
    }

    /// <summary>A public key from a public key file (PEM/DER) or the public half of a private key file.</summary>
    public static async Task<VerificationKey> LoadPublicKeyAsync(string path, CancellationToken cancellationToken)
    {
        var contents = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        return PrivateKeyFile.LooksLikePrivateKey(contents)
            ? (await PrivateKeyFile.InspectAsync(path, cancellationToken).ConfigureAwait(false)).PublicKey
            : await PublicKeyFile.ReadAsync(path, cancellationToken).ConfigureAwait(false);
    }

    public static async Task<List<VerificationKey>> LoadPublicKeysAsync(IEnumerable<string> paths, CancellationToken cancellationToken)
    {
        var keys = new List<VerificationKey>();
        foreach (var path in paths)
        {
            keys.Add(await LoadPublicKeyAsync(path, cancellationToken).ConfigureAwait(false));
        }

        return keys;
    }

    /// <summary>Reads key set envelopes (oldest first) as given on the command line.</summary>
    public static async Task<List<ReadOnlyMemory<byte>>> LoadChainAsync(IEnumerable<string> paths, CancellationToken cancellationToken)
    {
        var chain = new List<ReadOnlyMemory<byte>>();
        foreach (var path in paths)
        {
            chain.Add(await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false));
        }

        return chain;
    }

    /// <summary>
    /// Reads a key set file and checks that it is consistent on its own (signed by its own root threshold);
    /// its chain to the pinned roots is checked by the verify commands.
    /// </summary>
    public static async Task<(KeySet KeySet, byte[] Envelope)> LoadKeySetAsync(string path, CancellationToken cancellationToken)
    {
        var bytes = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        var envelope = SignedEnvelope.Parse(bytes);
        if (envelope.PayloadType != PayloadTypes.KeySet)
        {
            throw new TrustException(TrustFailure.WrongPayloadType, $"'{path}' is not a key set (payloadType '{envelope.PayloadType}')");
        }

        var keySet = KeySet.Parse(envelope.Payload.Span);
        KeySetVerifier.VerifyLink(TrustRoot.FromKeySet(keySet), keySet.Version - 1, bytes, $"the root keys of '{path}' itself");
        return (keySet, bytes);
    }

    /// <summary>
    /// An instant: ISO 8601 (<c>2027-01-31</c>, <c>2027-01-31T12:00:00Z</c>; UTC when no offset is given) or a
    /// duration from <paramref name="now"/> (<c>90d</c>, <c>12h</c>, <c>30m</c>).
    /// </summary>
    public static DateTimeOffset ParseWhen(string text, DateTimeOffset now, string option)
    {
        if (text.Length >= 2 && char.IsAsciiDigit(text[0]) && text[^1] is 'd' or 'h' or 'm'
            && int.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var amount))
        {
            return text[^1] switch
            {
                'd' => now.AddDays(amount),
                'h' => now.AddHours(amount),
                _ => now.AddMinutes(amount),
            };
        }

        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var instant)
            ? instant.ToUniversalTime()
            : throw new CommandUsageException($"{option} '{text}' is neither a date (2027-01-31, 2027-01-31T12:00:00Z) nor a duration (90d, 12h, 30m)");
    }

    /// <summary>Now in UTC, whole seconds (manifests and key sets carry second precision).</summary>
    public static DateTimeOffset Now()
    {
        var now = DateTimeOffset.UtcNow;
        return new DateTimeOffset(now.Ticks - (now.Ticks % TimeSpan.TicksPerSecond), TimeSpan.Zero);
    }

    /// <summary>Runs a command body, turning the failures a user can cause into a message and an exit code.</summary>
    public static async Task<int> RunAsync(ParseResult parse, Func<TextWriter, Task<int>> body)
    {
        var output = parse.InvocationConfiguration.Output;
        var error = parse.InvocationConfiguration.Error;
        try
        {
            return await body(output).ConfigureAwait(false);
        }
        catch (CommandUsageException e)
        {
            await error.WriteLineAsync($"edgeupdater: {e.Message}").ConfigureAwait(false);
            return ExitCodes.Usage;
        }
        catch (TrustException e)
        {
            await error.WriteLineAsync($"edgeupdater: {e.FailureName}: {e.Message}").ConfigureAwait(false);
            return ExitCodeFor(e.Failure);
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            await error.WriteLineAsync($"edgeupdater: {e.Message}").ConfigureAwait(false);
            return ExitCodes.Usage;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            await error.WriteLineAsync($"edgeupdater: {e.Message}").ConfigureAwait(false);
            return ExitCodes.Failure;
        }
    }

    /// <summary>Malformed input is invalid input (3); key file problems are failures (1); every refusal by policy is 4.</summary>
    public static int ExitCodeFor(TrustFailure failure) => failure switch
    {
        TrustFailure.Malformed or TrustFailure.UnknownSchema => ExitCodes.InvalidInput,
        TrustFailure.InsecureKeyFile or TrustFailure.WrongPassphrase => ExitCodes.Failure,
        TrustFailure.PassphraseRequired => ExitCodes.Usage,
        _ => ExitCodes.VerificationFailed,
    };
}
