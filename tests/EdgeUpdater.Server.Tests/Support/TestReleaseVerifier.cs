using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using EdgeUpdater.Server.Releases;

namespace EdgeUpdater.Server.Tests.Support;

/// <summary>
/// Test stand-in for the trust library behind the server's <see cref="IReleaseVerifier"/> seam: a
/// JSON manifest "signed" with an HMAC under a test key. Lets the publish path be tested end to end
/// until the real envelope format is wired.
/// </summary>
internal sealed class TestReleaseVerifier : IReleaseVerifier
{
    private static readonly byte[] Key = Encoding.UTF8.GetBytes("edgeupdater-test-signing-key");

    public static byte[] Sign(TestImage image, bool signed = true, string? imageSha256 = null, long? imageSize = null)
    {
        var sha = imageSha256 ?? image.Sha256;
        var size = imageSize ?? image.Size;
        var signature = signed ? Mac(sha, size, image.Name, image.Version) : null;
        return JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object?>
        {
            ["imageSha256"] = sha,
            ["imageSize"] = size,
            ["name"] = image.Name,
            ["version"] = image.Version,
            ["targetKind"] = "app",
            ["signature"] = signature,
        });
    }

    public VerifiedManifest Verify(ReadOnlySpan<byte> envelope, DateTimeOffset now)
    {
        JsonElement root;
        try
        {
            root = JsonDocument.Parse(envelope.ToArray()).RootElement;
        }
        catch (JsonException e)
        {
            throw new ReleaseRejectedException("malformed-manifest", e.Message);
        }

        var sha = root.GetProperty("imageSha256").GetString()!;
        var size = root.GetProperty("imageSize").GetInt64();
        var name = root.GetProperty("name").GetString()!;
        var version = root.GetProperty("version").GetString()!;
        var signature = root.TryGetProperty("signature", out var s) ? s.GetString() : null;
        if (signature is null || signature != Mac(sha, size, name, version))
        {
            throw new ReleaseRejectedException("bad-signature", "the manifest carries no valid signature by a trusted key");
        }

        return new VerifiedManifest(sha, size, name, version, "app", [], null);
    }

    private static string Mac(string sha, long size, string name, string version) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(Key, Encoding.UTF8.GetBytes($"{sha}\n{size}\n{name}\n{version}")));
}
