using System.Text.Json;
using System.Text.Json.Serialization;
using EdgeUpdater.Trust.Keys;

namespace EdgeUpdater.Trust.Serialization;

/// <summary>A public key in JSON: standard base64 (with padding) of the 32 raw bytes.</summary>
internal sealed class VerificationKeyJsonConverter : JsonConverter<VerificationKey>
{
    public override VerificationKey Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.String || !reader.TryGetBytesFromBase64(out var raw))
        {
            throw new JsonException("expected a public key as a base64 string");
        }

        try
        {
            return VerificationKey.FromRawBytes(raw);
        }
        catch (TrustException e)
        {
            throw new JsonException(e.Message, e);
        }
    }

    public override void Write(Utf8JsonWriter writer, VerificationKey value, JsonSerializerOptions options)
        => writer.WriteBase64StringValue(value.RawBytes.Span);
}
