using EdgeUpdater.Cli.Commands;
using EdgeUpdater.Testing;
using EdgeUpdater.Trust.Keys;
using Xunit;

namespace EdgeUpdater.Cli.Tests.Commands;

public sealed class KeyCommandsTests : IDisposable
{
    private readonly TempDirectory _dir = new("cli-keys");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Generate_writes_a_0600_private_key_and_a_pem_public_key()
    {
        var result = await KeyReleaseCli.SucceedAsync("keys", "generate", "--role", "release", "--out", _dir.Path);

        var privateKey = Directory.GetFiles(_dir.Path, "release-*.key").Single();
        var publicKey = Path.ChangeExtension(privateKey, ".pub");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(privateKey));
        var pub = VerificationKey.FromPem(await File.ReadAllTextAsync(publicKey, TestContext.Current.CancellationToken));
        Assert.Contains(pub.KeyId, result.Output, StringComparison.Ordinal);
        Assert.StartsWith("release-" + pub.KeyId[..16], Path.GetFileName(privateKey), StringComparison.Ordinal);

        var shown = await KeyReleaseCli.SucceedAsync("keys", "show", privateKey);
        Assert.Contains($"private key {pub.KeyId}", shown.Output, StringComparison.Ordinal);
        Assert.Contains("role:      release", shown.Output, StringComparison.Ordinal);
        Assert.Contains("encrypted: no", shown.Output, StringComparison.Ordinal);
        Assert.Contains(pub.ToPem().Trim(), shown.Output, StringComparison.Ordinal);
        Assert.Contains($"public key {pub.KeyId}", (await KeyReleaseCli.SucceedAsync("keys", "show", publicKey)).Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Generate_with_passphrase_file_protects_the_key_and_refuses_to_overwrite()
    {
        var passphrase = _dir.Combine("pw");
        await File.WriteAllTextAsync(passphrase, "s3cret words\n", TestContext.Current.CancellationToken);
        var key = _dir.Combine("root.key");
        var generated = await KeyReleaseCli.SucceedAsync("keys", "generate", "--role", "root", "-o", key, "--passphrase-file", passphrase);
        Assert.Contains("passphrase-protected", generated.Output, StringComparison.Ordinal);
        Assert.True(File.Exists(_dir.Combine("root.pub")));

        using (var opened = await PrivateKeyFile.ReadAsync(key, "s3cret words", TestContext.Current.CancellationToken))
        {
            Assert.Contains(opened.KeyId, generated.Output, StringComparison.Ordinal);
        }

        Assert.Contains("encrypted: yes", (await KeyReleaseCli.SucceedAsync("keys", "show", key)).Output, StringComparison.Ordinal);
        await KeyReleaseCli.FailAsync(ExitCodes.Failure, "already exists", "keys", "generate", "-o", key);
        await KeyReleaseCli.FailAsync(ExitCodes.Usage, "not both", "keys", "generate", "-o", _dir.Combine("x.key"), "--passphrase-file", passphrase, "--passphrase-env", "HOME");
        await KeyReleaseCli.FailAsync(ExitCodes.Usage, "EDGEUPDATER_TEST_UNSET_VARIABLE", "keys", "generate", "-o", _dir.Combine("y.key"), "--passphrase-env", "EDGEUPDATER_TEST_UNSET_VARIABLE");
    }

    [Fact]
    public async Task Show_refuses_a_private_key_readable_by_others()
    {
        var key = _dir.Combine("k.key");
        await KeyReleaseCli.SucceedAsync("keys", "generate", "-o", key);
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
        await KeyReleaseCli.FailAsync(ExitCodes.Failure, $"chmod 600 '{key}'", "keys", "show", key);
    }

    [Fact]
    public async Task First_key_set_needs_roots_and_a_root_signature()
    {
        await KeyReleaseCli.SucceedAsync("keys", "generate", "--role", "root", "-o", _dir.Combine("root.key"));
        await KeyReleaseCli.SucceedAsync("keys", "generate", "--role", "root", "-o", _dir.Combine("other.key"));
        await KeyReleaseCli.SucceedAsync("keys", "generate", "-o", _dir.Combine("rel.key"));

        await KeyReleaseCli.FailAsync(ExitCodes.Usage, "--root", "keys", "sign-keyset", "--sign", _dir.Combine("root.key"), "-o", _dir.Combine("ks"));
        await KeyReleaseCli.FailAsync(
            ExitCodes.VerificationFailed, "key-set-not-chained",
            "keys", "sign-keyset", "--root", _dir.Combine("root.pub"), "--release", _dir.Combine("rel.pub"), "--sign", _dir.Combine("other.key"), "-o", _dir.Combine("ks"));
        Assert.False(File.Exists(_dir.Combine("ks")));

        var signed = await KeyReleaseCli.SucceedAsync(
            "keys", "sign-keyset", "--root", _dir.Combine("root.pub"), "--release", _dir.Combine("rel.pub"), "--release-expires", "30d", "--expires", "2099-01-01", "--sign", _dir.Combine("root.key"), "-o", _dir.Combine("ks"));
        Assert.Contains("wrote key set v1", signed.Output, StringComparison.Ordinal);

        var shown = await KeyReleaseCli.SucceedAsync("keys", "show", _dir.Combine("ks"));
        Assert.Contains("key set v1", shown.Output, StringComparison.Ordinal);
        Assert.Contains("2099-01-01T00:00:00.0000000+00:00", shown.Output, StringComparison.Ordinal);
        await KeyReleaseCli.SucceedAsync("keys", "verify-keyset", _dir.Combine("ks"), "--root", _dir.Combine("root.pub"));
        await KeyReleaseCli.FailAsync(ExitCodes.VerificationFailed, "key-set-expired", "keys", "verify-keyset", _dir.Combine("ks"), "--root", _dir.Combine("root.pub"), "--now", "2099-01-02");
        await KeyReleaseCli.FailAsync(ExitCodes.VerificationFailed, "key-set-not-chained", "keys", "verify-keyset", _dir.Combine("ks"), "--root", _dir.Combine("other.pub"));
    }

    [Fact]
    public void Times_accept_dates_and_durations()
    {
        var now = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        Assert.Equal(now.AddDays(90), KeyMaterial.ParseWhen("90d", now, "--expires"));
        Assert.Equal(now.AddHours(12), KeyMaterial.ParseWhen("12h", now, "--expires"));
        Assert.Equal(new DateTimeOffset(2027, 1, 31, 0, 0, 0, TimeSpan.Zero), KeyMaterial.ParseWhen("2027-01-31", now, "--expires"));
        Assert.Equal(new DateTimeOffset(2027, 1, 31, 10, 0, 0, TimeSpan.Zero), KeyMaterial.ParseWhen("2027-01-31T12:00:00+02:00", now, "--expires"));
        Assert.Throws<CommandUsageException>(() => KeyMaterial.ParseWhen("soon", now, "--expires"));
    }
}
