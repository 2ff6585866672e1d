using System.Text;
using EdgeUpdater.Trust.Manifests;
using Xunit;

namespace EdgeUpdater.Trust.Tests.Manifests;

public sealed class ReleaseManifestTests
{
    [Fact]
    public void Round_trips_through_its_payload_bytes_with_documented_field_names()
    {
        var manifest = TrustScenario.Manifest() with { Target = "app-slot" };
        var bytes = manifest.ToPayloadBytes();
        var text = Encoding.UTF8.GetString(bytes);

        var parsed = ReleaseManifest.Parse(bytes);

        Assert.Equal(manifest.Version, parsed.Version);
        Assert.Equal(manifest.Hardware, parsed.Hardware);
        Assert.Equal(manifest.Created, parsed.Created);
        Assert.Equal(TargetKind.App, parsed.TargetKind);
        Assert.StartsWith("{\"schema\":1,\"name\":\"sensor-app\",\"version\":\"2.0.0\",\"targetKind\":\"app\",\"target\":\"app-slot\",\"imageSha256\":", text, StringComparison.Ordinal);
        Assert.Contains("\"allowDowngrade\":false", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Optional_fields_are_omitted_and_allow_downgrade_is_required()
    {
        var text = Encoding.UTF8.GetString((TrustScenario.Manifest() with { MinAgentVersion = null }).ToPayloadBytes());
        Assert.DoesNotContain("minAgentVersion", text, StringComparison.Ordinal);
        Assert.DoesNotContain("target\"", text, StringComparison.Ordinal);

        var withoutFlag = text.Replace(",\"allowDowngrade\":false", string.Empty, StringComparison.Ordinal);
        Assert.Equal(TrustFailure.Malformed, Assert.Throws<TrustException>(() => ReleaseManifest.Parse(Encoding.UTF8.GetBytes(withoutFlag))).Failure);
    }

    public static TheoryData<string, string, string> Invalid => new()
    {
        { "name", "\"sensor-app\"", "\"sensor app\"" },
        { "version", "\"2.0.0\"", "\"2.0\"" },
        { "targetKind", "\"app\"", "\"firmware\"" },
        { "targetKind number", "\"app\"", "1" },
        { "imageSha256", $"\"{TrustScenario.ImageSha256}\"", $"\"{TrustScenario.ImageSha256.ToUpperInvariant()}\"" },
        { "imageSize", "\"imageSize\":4", "\"imageSize\":-1" },
        { "hardware", "[\"rpi4\",\"rpi5\"]", "[]" },
        { "hardware duplicate", "[\"rpi4\",\"rpi5\"]", "[\"rpi4\",\"rpi4\"]" },
        { "architectures", "[\"arm64\"]", "[\"arm/64\"]" },
        { "unknown field", "\"allowDowngrade\":false", "\"allowDowngrade\":false,\"priority\":1" },
        { "duplicate field", "\"allowDowngrade\":false", "\"allowDowngrade\":false,\"allowDowngrade\":true" },
        { "null name", "\"sensor-app\"", "null" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Invalid_fields_are_malformed(string label, string find, string replace)
    {
        var text = Encoding.UTF8.GetString(TrustScenario.Manifest().ToPayloadBytes());
        Assert.Contains(find, text, StringComparison.Ordinal);
        var e = Assert.Throws<TrustException>(() => ReleaseManifest.Parse(Encoding.UTF8.GetBytes(text.Replace(find, replace, StringComparison.Ordinal))));
        Assert.True(e.Failure == TrustFailure.Malformed, $"{label}: {e.Failure} {e.Message}");
    }

    [Fact]
    public void Expiry_must_follow_creation()
    {
        var manifest = TrustScenario.Manifest() with { Expires = TrustScenario.Manifest().Created };
        Assert.Equal(TrustFailure.Malformed, Assert.Throws<TrustException>(() => manifest.ToPayloadBytes()).Failure);
    }
}
