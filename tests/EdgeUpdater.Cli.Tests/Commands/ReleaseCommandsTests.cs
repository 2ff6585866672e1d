using System.Text.Json.Nodes;
using EdgeUpdater.Cli.Commands;
using EdgeUpdater.Testing;
using EdgeUpdater.Trust.Keys;
using Xunit;

namespace EdgeUpdater.Cli.Tests.Commands;

/// <summary>Round trips through the CLI: keys, key sets, rotation, revocation, signing and verifying.</summary>
public sealed class ReleaseCommandsTests : IDisposable
{
    private readonly TempDirectory _dir = new("cli-release");

    public void Dispose() => _dir.Dispose();

    private string P(params string[] names) => _dir.Combine(names);

    private async Task<string> KeyIdOf(string publicKey)
        => VerificationKey.FromPem(await File.ReadAllTextAsync(P(publicKey), TestContext.Current.CancellationToken)).KeyId;

    /// <summary>Root (passphrase-protected), release key, key set v1, a 64 KiB image and its signed manifest.</summary>
    private async Task SetUpAsync()
    {
        await File.WriteAllTextAsync(P("pw"), "root passphrase\n", TestContext.Current.CancellationToken);
        await KeyReleaseCli.SucceedAsync("keys", "generate", "--role", "root", "-o", P("root1.key"), "--passphrase-file", P("pw"));
        await KeyReleaseCli.SucceedAsync("keys", "generate", "--role", "release", "-o", P("release.key"));
        await KeyReleaseCli.SucceedAsync(
            "keys", "sign-keyset", "--root", P("root1.pub"), "--release", P("release.pub"), "--sign", P("root1.key"), "--passphrase-file", P("pw"), "-o", P("v1.keyset"));
        var image = new byte[64 * 1024];
        new Random(7).NextBytes(image);
        await File.WriteAllBytesAsync(P("app.sqfs"), image, TestContext.Current.CancellationToken);
        await KeyReleaseCli.SucceedAsync(
            "release", "sign", P("app.sqfs"), "--key", P("release.key"), "--keyset", P("v1.keyset"),
            "--name", "sensor-app", "--version", "1.4.0", "--target-kind", "app", "--hardware", "rpi4", "--hardware", "rpi5", "--arch", "arm64",
            "--min-agent-version", "0.1.0", "-o", P("app.manifest"));
    }

    private string[] Verify(params string[] extra)
        => ["release", "verify", P("app.manifest"), "--root", P("root1.pub"), .. extra];

    [Fact]
    public async Task Signed_manifest_verifies_with_the_image_and_device_facts()
    {
        await SetUpAsync();

        var result = await KeyReleaseCli.SucceedAsync(Verify("--keyset", P("v1.keyset"), "--image", P("app.sqfs"), "--hardware", "rpi5", "--arch", "arm64", "--agent-version", "0.2.0"));

        Assert.Contains("verified sensor-app 1.4.0 (app)", result.Output, StringComparison.Ordinal);
        Assert.Contains("65536 bytes), image file matches", result.Output, StringComparison.Ordinal);
        Assert.Contains(await KeyIdOf("release.pub"), result.Output, StringComparison.Ordinal);
        var manifest = JsonNode.Parse(await File.ReadAllTextAsync(P("app.manifest"), TestContext.Current.CancellationToken))!;
        Assert.Equal("application/vnd.edgeupdater.release-manifest+json", manifest["payloadType"]!.GetValue<string>());
    }

    [Fact]
    public async Task Sign_takes_name_version_kind_and_compatibility_from_an_images_config_json()
    {
        await SetUpAsync();
        Directory.CreateDirectory(P("tree", "root", "etc"));
        await File.WriteAllTextAsync(P("tree", "root", "etc", "motd"), "hello\n", TestContext.Current.CancellationToken);
        await File.WriteAllTextAsync(P("config.json"), """
            {"name": "pump-fw", "version": "3.1.0", "target": "system",
             "compatible": {"hardware": ["rpi4"], "architectures": ["arm64"]}}
            """, TestContext.Current.CancellationToken);
        await KeyReleaseCli.SucceedAsync("image", "build", P("tree", "root"), "--config", P("config.json"), "-o", P("fw.sqfs"));

        await KeyReleaseCli.SucceedAsync("release", "sign", P("fw.sqfs"), "--key", P("release.key"), "--keyset", P("v1.keyset"), "-o", P("fw.manifest"));
        var verified = await KeyReleaseCli.SucceedAsync("release", "verify", P("fw.manifest"), "--root", P("root1.pub"), "--keyset", P("v1.keyset"), "--image", P("fw.sqfs"));
        Assert.Contains("verified pump-fw 3.1.0 (system)", verified.Output, StringComparison.Ordinal);
        Assert.Contains("hardware:  rpi4; architectures: arm64", verified.Output, StringComparison.Ordinal);

        // Options override config.json; a plain file has no defaults to offer.
        await KeyReleaseCli.SucceedAsync("release", "sign", P("fw.sqfs"), "--key", P("release.key"), "--keyset", P("v1.keyset"), "--version", "3.1.1", "--arch", "x64", "-o", P("fw2.manifest"));
        var overridden = await KeyReleaseCli.SucceedAsync("release", "verify", P("fw2.manifest"), "--root", P("root1.pub"), "--keyset", P("v1.keyset"));
        Assert.Contains("verified pump-fw 3.1.1 (system)", overridden.Output, StringComparison.Ordinal);
        Assert.Contains("architectures: x64", overridden.Output, StringComparison.Ordinal);
        await KeyReleaseCli.FailAsync(ExitCodes.Usage, "--name is required", "release", "sign", P("app.sqfs"), "--key", P("release.key"), "--keyset", P("v1.keyset"), "--hardware", "rpi4", "--arch", "arm64", "-o", P("x.manifest"));
    }

    [Fact]
    public async Task Verify_reports_each_refusal_with_its_category_and_exit_code()
    {
        await SetUpAsync();
        var image = await File.ReadAllBytesAsync(P("app.sqfs"), TestContext.Current.CancellationToken);
        image[100] ^= 1;
        await File.WriteAllBytesAsync(P("tampered.sqfs"), image, TestContext.Current.CancellationToken);
        await File.WriteAllBytesAsync(P("short.sqfs"), image[..^1], TestContext.Current.CancellationToken);
        var ks = new[] { "--keyset", P("v1.keyset") };

        await KeyReleaseCli.FailAsync(ExitCodes.VerificationFailed, "payload-hash-mismatch", Verify([.. ks, "--image", P("tampered.sqfs")]));
        await KeyReleaseCli.FailAsync(ExitCodes.VerificationFailed, "payload-size-mismatch", Verify([.. ks, "--image", P("short.sqfs")]));
        await KeyReleaseCli.FailAsync(ExitCodes.VerificationFailed, "hardware-mismatch", Verify([.. ks, "--hardware", "imx8", "--arch", "arm64"]));
        await KeyReleaseCli.FailAsync(ExitCodes.VerificationFailed, "architecture-mismatch", Verify([.. ks, "--hardware", "rpi4", "--arch", "x64"]));
        await KeyReleaseCli.FailAsync(ExitCodes.VerificationFailed, "agent-too-old", Verify([.. ks, "--hardware", "rpi4", "--arch", "arm64", "--agent-version", "0.1.0-rc.1"]));
        await KeyReleaseCli.FailAsync(ExitCodes.VerificationFailed, "not-newer", Verify([.. ks, "--installed-version", "1.4.0", "--installed-created", "2020-01-01"]));
        await KeyReleaseCli.FailAsync(ExitCodes.VerificationFailed, "replay", Verify([.. ks, "--installed-version", "1.0.0", "--installed-created", "30d"]));
        await KeyReleaseCli.FailAsync(ExitCodes.VerificationFailed, "manifest-expired", Verify([.. ks, "--now", "91d"]));
        await KeyReleaseCli.FailAsync(ExitCodes.VerificationFailed, "key-set-rollback", Verify([.. ks, "--min-keyset-version", "2"]));
        await KeyReleaseCli.FailAsync(ExitCodes.Usage, "go together", Verify([.. ks, "--hardware", "rpi4"]));

        var envelope = JsonNode.Parse(await File.ReadAllTextAsync(P("app.manifest"), TestContext.Current.CancellationToken))!;
        var payload = Convert.FromBase64String(envelope["payload"]!.GetValue<string>());
        payload[^2] ^= 1;
        envelope["payload"] = Convert.ToBase64String(payload);
        await File.WriteAllTextAsync(P("app.manifest"), envelope.ToJsonString(), TestContext.Current.CancellationToken);
        await KeyReleaseCli.FailAsync(ExitCodes.VerificationFailed, "bad-signature", Verify(ks));

        await File.WriteAllTextAsync(P("app.manifest"), "{\"payloadType\":", TestContext.Current.CancellationToken);
        await KeyReleaseCli.FailAsync(ExitCodes.InvalidInput, "malformed", Verify(ks));
    }

    [Fact]
    public async Task Root_rotation_and_release_key_revocation_through_the_cli()
    {
        await SetUpAsync();
        await File.WriteAllTextAsync(P("pw2"), "second root passphrase", TestContext.Current.CancellationToken);
        await KeyReleaseCli.SucceedAsync("keys", "generate", "--role", "root", "-o", P("root2.key"), "--passphrase-file", P("pw2"));
        await KeyReleaseCli.SucceedAsync("keys", "generate", "--role", "release", "-o", P("release2.key"));

        // The new root must sign too (proof of possession): refused, nothing written.
        await KeyReleaseCli.FailAsync(
            ExitCodes.VerificationFailed, "missing-signature",
            "keys", "rotate", "--previous", P("v1.keyset"), "--new-root", P("root2.pub"), "--sign", P("root1.key"), "--passphrase-file", P("pw"), "-o", P("v2.keyset"));
        Assert.False(File.Exists(P("v2.keyset")));

        // Two roots with different passphrases: each key is opened with the passphrase that fits.
        await KeyReleaseCli.FailAsync(
            ExitCodes.Failure, "wrong-passphrase",
            "keys", "rotate", "--previous", P("v1.keyset"), "--new-root", P("root2.pub"), "--sign", P("root1.key"), P("root2.key"), "--passphrase-file", P("pw"), "-o", P("v2.keyset"));
        await KeyReleaseCli.SucceedAsync(
            "keys", "rotate", "--previous", P("v1.keyset"), "--new-root", P("root2.pub"), "--sign", P("root1.key"), P("root2.key"),
            "--passphrase-file", P("pw2"), "--passphrase-file", P("pw"), "-o", P("v2.keyset"));
        await KeyReleaseCli.SucceedAsync(Verify("--keyset", P("v1.keyset"), P("v2.keyset")));

        // Old root alone can no longer extend the chain.
        await KeyReleaseCli.FailAsync(
            ExitCodes.VerificationFailed, "key-set-not-chained",
            "keys", "sign-keyset", "--previous", P("v2.keyset"), "--release", P("release2.pub"), "--sign", P("root1.key"), "--passphrase-file", P("pw"), "-o", P("v3.keyset"));

        var releaseId = await KeyIdOf("release.pub");
        Environment.SetEnvironmentVariable("EDGEUPDATER_TEST_ROOT2_PASSPHRASE", "second root passphrase");
        await KeyReleaseCli.SucceedAsync(
            "keys", "sign-keyset", "--previous", P("v2.keyset"), "--release", P("release2.pub"), "--revoke", releaseId, "--sign", P("root2.key"), "--passphrase-env", "EDGEUPDATER_TEST_ROOT2_PASSPHRASE", "-o", P("v3.keyset"));
        Assert.Contains("REVOKED", (await KeyReleaseCli.SucceedAsync("keys", "show", P("v3.keyset"))).Output, StringComparison.Ordinal);

        var chain = new[] { "--keyset", P("v1.keyset"), P("v2.keyset"), P("v3.keyset") };
        await KeyReleaseCli.FailAsync(ExitCodes.VerificationFailed, "revoked-key", Verify(chain));
        await KeyReleaseCli.SucceedAsync(["keys", "verify-keyset", P("v1.keyset"), P("v2.keyset"), P("v3.keyset"), "--root", P("root1.pub")]);

        // Signing with the revoked key against the current key set is refused before anything is written.
        await KeyReleaseCli.FailAsync(
            ExitCodes.VerificationFailed, "revoked-key",
            "release", "sign", P("app.sqfs"), "--key", P("release.key"), "--keyset", P("v3.keyset"),
            "--name", "sensor-app", "--version", "1.5.0", "--target-kind", "app", "--hardware", "rpi4", "--arch", "arm64", "-o", P("next.manifest"));
        Assert.False(File.Exists(P("next.manifest")));

        await KeyReleaseCli.SucceedAsync(
            "release", "sign", P("app.sqfs"), "--key", P("release2.key"), "--keyset", P("v3.keyset"),
            "--name", "sensor-app", "--version", "1.5.0", "--target-kind", "app", "--hardware", "rpi4", "--arch", "arm64", "-o", P("app.manifest"));
        await KeyReleaseCli.SucceedAsync(Verify([.. chain, "--image", P("app.sqfs"), "--installed-version", "1.4.0", "--installed-created", "2020-01-01T00:00:00Z"]));
    }

    [Fact]
    public async Task Key_problems_are_reported_with_the_fix()
    {
        await SetUpAsync();
        string[] sign = ["release", "sign", P("app.sqfs"), "--name", "a", "--version", "1.0.0", "--target-kind", "system", "--hardware", "h", "--arch", "arm64", "-o", P("x.manifest")];

        await KeyReleaseCli.FailAsync(ExitCodes.Usage, "--passphrase-file", [.. sign, "--key", P("root1.key")]);
        await File.WriteAllTextAsync(P("wrong"), "not it", TestContext.Current.CancellationToken);
        await KeyReleaseCli.FailAsync(ExitCodes.Failure, "wrong-passphrase", [.. sign, "--key", P("root1.key"), "--passphrase-file", P("wrong")]);
        File.SetUnixFileMode(P("release.key"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        await KeyReleaseCli.FailAsync(ExitCodes.Failure, "chmod 600", [.. sign, "--key", P("release.key")]);
        File.SetUnixFileMode(P("release.key"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        await KeyReleaseCli.FailAsync(ExitCodes.VerificationFailed, "unknown-key", [.. sign, "--key", P("root1.key"), "--passphrase-file", P("pw"), "--keyset", P("v1.keyset")]);
        await KeyReleaseCli.FailAsync(ExitCodes.Usage, "not a semantic version", ["release", "sign", P("app.sqfs"), "--name", "a", "--version", "v1", "--target-kind", "app", "--hardware", "h", "--arch", "arm64", "--key", P("release.key"), "-o", P("x.manifest")]);
        await KeyReleaseCli.FailAsync(ExitCodes.Usage, "--name is required", ["release", "sign", P("app.sqfs"), "--version", "1.0.0", "--target-kind", "app", "--hardware", "h", "--arch", "arm64", "--key", P("release.key"), "-o", P("x.manifest")]);
        Assert.False(File.Exists(P("x.manifest")));
    }

    [Fact]
    public async Task Installed_binary_signs_and_verifies_with_process_exit_codes()
    {
        await SetUpAsync();
        var binary = Path.Combine(AppContext.BaseDirectory, "edgeupdater.dll");
        Assert.True(File.Exists(binary), $"{binary} is not beside the tests");

        var ok = await ExternalTool.RunAsync("dotnet", [binary, "release", "verify", P("app.manifest"), "--root", P("root1.pub"), "--keyset", P("v1.keyset"), "--image", P("app.sqfs")], cancellationToken: TestContext.Current.CancellationToken);
        Assert.True(ok.ExitCode == ExitCodes.Ok, ok.StandardOutput + ok.StandardError);

        var refused = await ExternalTool.RunAsync("dotnet", [binary, "release", "verify", P("app.manifest"), "--root", P("release.pub"), "--keyset", P("v1.keyset")], cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(ExitCodes.VerificationFailed, refused.ExitCode);
        Assert.Contains("key-set-not-chained", refused.StandardError, StringComparison.Ordinal);
    }
}
