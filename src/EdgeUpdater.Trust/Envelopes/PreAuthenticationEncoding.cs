using System.Globalization;
using System.Text;

namespace EdgeUpdater.Trust.Envelopes;

/// <summary>
/// The bytes a signature covers: <c>"EUv1" SP len(type) SP type SP len(payload) SP payload</c>, lengths in
/// ASCII decimal byte counts. The type and both lengths are bound into the signature, so a signature
/// made for one kind of document never verifies as another, and no payload can be cut or extended.
/// </summary>
public static class PreAuthenticationEncoding
{
    /// <summary>The domain-separation prefix (4 ASCII bytes).</summary>
    public const string Prefix = "EUv1";

    /// <summary>Builds the signed bytes for <paramref name="payloadType"/> and <paramref name="payload"/>.</summary>
    public static byte[] Encode(string payloadType, ReadOnlySpan<byte> payload)
    {
        ArgumentNullException.ThrowIfNull(payloadType);
        var header = string.Create(
            CultureInfo.InvariantCulture,
            $"{Prefix} {Encoding.UTF8.GetByteCount(payloadType)} {payloadType} {payload.Length} ");
        var headerBytes = Encoding.UTF8.GetBytes(header);
        var result = new byte[headerBytes.Length + payload.Length];
        headerBytes.CopyTo(result, 0);
        payload.CopyTo(result.AsSpan(headerBytes.Length));
        return result;
    }
}
