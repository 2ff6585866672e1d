using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace EdgeUpdater.Trust.Serialization;

/// <summary>
/// Reads and writes signed payloads: the <c>schema</c> number is checked first (so a newer schema is
/// reported as unknown, not as malformed), then the document is bound strictly (required fields, no
/// unknown or duplicate properties).
/// </summary>
internal static class PayloadJson
{
    public static byte[] Serialize<T>(T value, JsonTypeInfo<T> typeInfo) => JsonSerializer.SerializeToUtf8Bytes(value, typeInfo);

    public static T Deserialize<T>(ReadOnlySpan<byte> payload, int expectedSchema, string what, JsonTypeInfo<T> typeInfo)
    {
        var schema = ReadSchema(payload, what);
        if (schema != expectedSchema)
        {
            throw new TrustException(TrustFailure.UnknownSchema, $"{what} schema {schema} is not supported; this verifier understands schema {expectedSchema}");
        }

        try
        {
            return JsonSerializer.Deserialize(payload, typeInfo)
                ?? throw new TrustException(TrustFailure.Malformed, $"{what} payload is JSON null; expected an object");
        }
        catch (JsonException e)
        {
            throw new TrustException(TrustFailure.Malformed, $"{what} payload does not match schema {expectedSchema}: {e.Message}", e);
        }
    }

    private static long ReadSchema(ReadOnlySpan<byte> payload, string what)
    {
        try
        {
            var reader = new Utf8JsonReader(payload);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                throw new TrustException(TrustFailure.Malformed, $"{what} payload is not a JSON object");
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isSchema = reader.ValueTextEquals("schema"u8);
                reader.Read();
                if (isSchema)
                {
                    return reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var schema)
                        ? schema
                        : throw new TrustException(TrustFailure.Malformed, $"{what}.schema must be an integer, found {reader.TokenType}");
                }

                reader.Skip();
            }
        }
        catch (JsonException e)
        {
            throw new TrustException(TrustFailure.Malformed, $"{what} payload is not valid JSON: {e.Message}", e);
        }

        throw new TrustException(TrustFailure.Malformed, $"{what} payload has no schema field");
    }
}
