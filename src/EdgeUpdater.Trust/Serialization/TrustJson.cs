using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace EdgeUpdater.Trust.Serialization;

/// <summary>
/// Writes the trust layer's JSON documents and reads signed payloads: the <c>schema</c> number is
/// checked first (so a newer schema is reported as unknown, not as malformed), then the document is
/// bound strictly (required fields, no unknown or duplicate properties).
/// </summary>
internal static class TrustJson
{
    /// <summary>
    /// Writes <paramref name="value"/> as UTF-8 JSON. Only the characters JSON requires are escaped (a
    /// <c>+</c> in a version or media type stays <c>+</c>), so the bytes read the way the docs show them.
    /// </summary>
    public static byte[] Serialize<T>(T value, JsonTypeInfo<T> typeInfo, bool indented = false)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = indented, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            JsonSerializer.Serialize(writer, value, typeInfo);
        }

        // Files people read end with a newline; compact payloads are signed exactly as written.
        return indented ? [.. buffer.WrittenSpan, (byte)'\n'] : buffer.WrittenSpan.ToArray();
    }

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
