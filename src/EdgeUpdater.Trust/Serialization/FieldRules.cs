namespace EdgeUpdater.Trust.Serialization;

/// <summary>Shared field checks for payloads; each throws <see cref="TrustFailure.Malformed"/> naming the field.</summary>
internal static class FieldRules
{
    public const int MaxNameLength = 128;

    public const int MaxListLength = 256;

    /// <summary>1-128 characters of <c>[A-Za-z0-9._:-]</c>, the same alphabet as device ids in docs/protocol.md.</summary>
    public static bool IsName(string? value)
        => !string.IsNullOrEmpty(value) && value.Length <= MaxNameLength
            && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or ':' or '-');

    public static void RequireName(string field, string? value)
    {
        if (!IsName(value))
        {
            throw new TrustException(TrustFailure.Malformed, $"{field} '{value}' must be 1-{MaxNameLength} characters of [A-Za-z0-9._:-]");
        }
    }

    public static void RequireNameList(string field, IReadOnlyList<string>? values)
    {
        if (values is null || values.Count == 0 || values.Count > MaxListLength)
        {
            throw new TrustException(TrustFailure.Malformed, $"{field} must list 1-{MaxListLength} entries, found {values?.Count ?? 0}");
        }

        for (var i = 0; i < values.Count; i++)
        {
            RequireName($"{field}[{i}]", values[i]);
        }

        if (values.Distinct(StringComparer.Ordinal).Count() != values.Count)
        {
            throw new TrustException(TrustFailure.Malformed, $"{field} lists an entry twice");
        }
    }

    public static void RequireSha256(string field, string? value)
    {
        if (value is null || value.Length != 64 || !value.All(char.IsAsciiHexDigitLower))
        {
            throw new TrustException(TrustFailure.Malformed, $"{field} '{value}' must be 64 lowercase hex characters (a SHA-256)");
        }
    }
}
