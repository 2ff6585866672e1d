using System.Text.Json.Nodes;
using EdgeUpdater.Testing;
using EdgeUpdater.Trust.Keys;
using Xunit;

namespace EdgeUpdater.Trust.Tests.Keys;

public sealed class PrivateKeyFileTests : IDisposable
{
    // Cheap Argon2id for tests; one test below uses the production defaults.
    private static readonly PrivateKeyFileOptions Fast = new() { Argon2MemoryKiB = 1024, Argon2Passes = 1 };

    private readonly TempDirectory _dir = new("trust-keys");

    public void Dispose() => _dir.Dispose();

    private static UnixFileMode ModeOf(string path) => File.GetUnixFileMode(path);

    [Fact]
    public async Task Written_key_file_has_mode_0600_and_round_trips()
    {
        using var key = SigningKey.Generate();
        var path = _dir.Combine("release.key");

        await PrivateKeyFile.WriteAsync(path, key, KeyRole.Release, cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, ModeOf(path));
        using var read = await PrivateKeyFile.ReadAsync(path, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(key.PublicKey, read.PublicKey);
        Assert.True(read.PublicKey.Verify("m"u8, key.Sign("m"u8)));
        var info = await PrivateKeyFile.InspectAsync(path, TestContext.Current.CancellationToken);
        Assert.Equal((key.KeyId, (KeyRole?)KeyRole.Release, false), (info.KeyId, info.Role, info.IsEncrypted));
    }

    [Fact]
    public async Task Existing_file_is_not_overwritten()
    {
        using var key = SigningKey.Generate();
        var path = _dir.Combine("k.key");
        await File.WriteAllTextAsync(path, "keep", TestContext.Current.CancellationToken);
        await Assert.ThrowsAsync<IOException>(() => PrivateKeyFile.WriteAsync(path, key, KeyRole.Root, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal("keep", await File.ReadAllTextAsync(path, TestContext.Current.CancellationToken));
    }

    [Theory]
    [InlineData(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, "0644")]
    [InlineData(UnixFileMode.UserRead | UnixFileMode.GroupRead, "0440")]
    [InlineData(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherWrite, "0602")]
    public async Task Key_file_accessible_by_group_or_others_is_refused_with_the_fix(UnixFileMode mode, string octal)
    {
        using var key = SigningKey.Generate();
        var path = _dir.Combine("loose.key");
        await PrivateKeyFile.WriteAsync(path, key, KeyRole.Release, cancellationToken: TestContext.Current.CancellationToken);
        File.SetUnixFileMode(path, mode);

        var e = await Assert.ThrowsAsync<TrustException>(() => PrivateKeyFile.ReadAsync(path, cancellationToken: TestContext.Current.CancellationToken));

        Assert.Equal(TrustFailure.InsecureKeyFile, e.Failure);
        Assert.Contains(octal, e.Message, StringComparison.Ordinal);
        Assert.Contains($"chmod 600 '{path}'", e.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<TrustException>(() => PrivateKeyFile.InspectAsync(path, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task Passphrase_protected_key_opens_with_the_right_passphrase_only()
    {
        using var key = SigningKey.Generate();
        var path = _dir.Combine("root.key");
        await PrivateKeyFile.WriteAsync(path, key, KeyRole.Root, "correct horse", Fast, TestContext.Current.CancellationToken);

        var text = await File.ReadAllTextAsync(path, TestContext.Current.CancellationToken);
        Assert.DoesNotContain("\"privateKey\"", text, StringComparison.Ordinal);
        Assert.Contains("argon2id", text, StringComparison.Ordinal);
        Assert.True((await PrivateKeyFile.InspectAsync(path, TestContext.Current.CancellationToken)).IsEncrypted);

        using var opened = await PrivateKeyFile.ReadAsync(path, "correct horse", TestContext.Current.CancellationToken);
        Assert.Equal(key.PublicKey, opened.PublicKey);

        var wrong = await Assert.ThrowsAsync<TrustException>(() => PrivateKeyFile.ReadAsync(path, "correct hors", TestContext.Current.CancellationToken));
        Assert.Equal(TrustFailure.WrongPassphrase, wrong.Failure);
        var none = await Assert.ThrowsAsync<TrustException>(() => PrivateKeyFile.ReadAsync(path, null, TestContext.Current.CancellationToken));
        Assert.Equal(TrustFailure.PassphraseRequired, none.Failure);
    }

    [Fact]
    public void Production_argon2_parameters_work()
    {
        using var key = SigningKey.Generate();
        var contents = PrivateKeyFile.Serialize(key, KeyRole.Root, "pass phrase");
        var encrypted = JsonNode.Parse(contents)!["encrypted"]!;
        Assert.Equal(65536, encrypted["memoryKiB"]!.GetValue<long>());
        Assert.Equal(3, encrypted["passes"]!.GetValue<long>());
        using var opened = PrivateKeyFile.Deserialize(contents, "pass phrase");
        Assert.Equal(key.PublicKey, opened.PublicKey);
    }

    [Fact]
    public void Swapped_public_key_or_altered_ciphertext_does_not_open()
    {
        using var key = SigningKey.Generate();
        using var other = SigningKey.Generate();
        var contents = PrivateKeyFile.Serialize(key, KeyRole.Root, "pw", Fast);

        var swapped = JsonNode.Parse(contents)!;
        swapped["publicKey"] = Convert.ToBase64String(other.PublicKey.RawBytes.Span);
        swapped["keyId"] = other.KeyId;
        Assert.Equal(TrustFailure.WrongPassphrase, Assert.Throws<TrustException>(() => PrivateKeyFile.Deserialize(System.Text.Encoding.UTF8.GetBytes(swapped.ToJsonString()), "pw")).Failure);

        var altered = JsonNode.Parse(contents)!;
        var ciphertext = Convert.FromBase64String(altered["encrypted"]!["ciphertext"]!.GetValue<string>());
        ciphertext[0] ^= 1;
        altered["encrypted"]!["ciphertext"] = Convert.ToBase64String(ciphertext);
        Assert.Equal(TrustFailure.WrongPassphrase, Assert.Throws<TrustException>(() => PrivateKeyFile.Deserialize(System.Text.Encoding.UTF8.GetBytes(altered.ToJsonString()), "pw")).Failure);
    }

    [Fact]
    public void Unencrypted_file_with_a_foreign_private_key_is_malformed()
    {
        using var key = SigningKey.Generate();
        using var other = SigningKey.Generate();
        var node = JsonNode.Parse(PrivateKeyFile.Serialize(key, KeyRole.Release))!;
        node["privateKey"] = JsonNode.Parse(PrivateKeyFile.Serialize(other, KeyRole.Release))!["privateKey"]!.GetValue<string>();
        var e = Assert.Throws<TrustException>(() => PrivateKeyFile.Deserialize(System.Text.Encoding.UTF8.GetBytes(node.ToJsonString()), null));
        Assert.Equal(TrustFailure.Malformed, e.Failure);
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("{\"type\":\"other\",\"version\":1,\"algorithm\":\"ed25519\",\"role\":\"root\",\"keyId\":\"00\",\"publicKey\":\"AA==\"}")]
    [InlineData("garbage")]
    public void Not_a_key_file_is_malformed(string contents)
        => Assert.Equal(TrustFailure.Malformed, Assert.Throws<TrustException>(() => PrivateKeyFile.Deserialize(System.Text.Encoding.UTF8.GetBytes(contents), null)).Failure);

    [Fact]
    public async Task Openssl_generated_pkcs8_key_is_accepted_when_its_mode_is_0600()
    {
        var path = _dir.Combine("openssl.pem");
        await ExternalTool.RunCheckedAsync("openssl", ["genpkey", "-algorithm", "ed25519", "-out", path], cancellationToken: TestContext.Current.CancellationToken);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        Assert.Equal(TrustFailure.InsecureKeyFile, (await Assert.ThrowsAsync<TrustException>(() => PrivateKeyFile.ReadAsync(path, cancellationToken: TestContext.Current.CancellationToken))).Failure);

        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        using var key = await PrivateKeyFile.ReadAsync(path, cancellationToken: TestContext.Current.CancellationToken);
        var pub = await ExternalTool.RunCheckedAsync("openssl", ["pkey", "-in", path, "-pubout"], cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(VerificationKey.FromPem(pub.StandardOutput), key.PublicKey);
        Assert.Null((await PrivateKeyFile.InspectAsync(path, TestContext.Current.CancellationToken)).Role);
    }
}
