namespace EdgeUpdater.Protocol;

/// <summary>
/// HTTP addresses shared by server, agent and CLI (see docs/protocol.md). Content is addressed by
/// SHA-256 and immutable, so any HTTP cache or CDN can hold it.
/// </summary>
public static class HttpRoutes
{
    /// <summary>Signed manifest envelope by its own SHA-256.</summary>
    public static string Manifest(string manifestSha256) => $"/v1/manifests/{CheckSha256(manifestSha256)}";

    /// <summary>Full image by its SHA-256.</summary>
    public static string Image(string imageSha256) => $"/v1/images/{CheckSha256(imageSha256)}";

    /// <summary>
    /// Delta that turns image <paramref name="fromSha256"/> into <paramref name="toSha256"/>. The query
    /// may carry <c>codecs</c> (what the device recompresses with), <c>format</c> (the newest delta format
    /// version it reads; without it the server writes version 2) and <c>level</c>.
    /// </summary>
    public static string Delta(string fromSha256, string toSha256) => $"/v1/deltas/{CheckSha256(fromSha256)}/{CheckSha256(toSha256)}";

    /// <summary>The <see cref="Delta"/> address with a device's <c>codecs</c>, <c>format</c> and, when it names one, <c>level</c>.</summary>
    public static string DeltaForDevice(string fromSha256, string toSha256, string codecs, int formatVersion, string? level = null) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Delta(fromSha256, toSha256)}?codecs={Uri.EscapeDataString(codecs)}&format={formatVersion}{(level is null ? "" : "&level=" + Uri.EscapeDataString(level))}");

    /// <summary>True when <paramref name="value"/> is 64 lowercase hex digits.</summary>
    public static bool IsSha256(string? value)
    {
        if (value is null || value.Length != 64)
        {
            return false;
        }

        foreach (var c in value)
        {
            if (!(char.IsAsciiDigit(c) || c is >= 'a' and <= 'f'))
            {
                return false;
            }
        }

        return true;
    }

    private static string CheckSha256(string value) =>
        IsSha256(value) ? value : throw new ArgumentException($"'{value}' is not a lowercase hex SHA-256.", nameof(value));
}
