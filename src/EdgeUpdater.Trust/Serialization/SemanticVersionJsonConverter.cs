using System.Text.Json;
using System.Text.Json.Serialization;
using EdgeUpdater.Trust.Versioning;

namespace EdgeUpdater.Trust.Serialization;

/// <summary>Reads and writes a <see cref="SemanticVersion"/> as its JSON string text.</summary>
internal sealed class SemanticVersionJsonConverter : JsonConverter<SemanticVersion>
{
    public override SemanticVersion Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            throw new JsonException($"expected a semantic version string, found {reader.TokenType}");
        }

        var text = reader.GetString()!;
        return SemanticVersion.TryParse(text, out var version)
            ? version
            : throw new JsonException($"'{text}' is not a semantic version (MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD])");
    }

    public override void Write(Utf8JsonWriter writer, SemanticVersion value, JsonSerializerOptions options)
        => writer.WriteStringValue(value.Text);
}
