using System.Diagnostics.CodeAnalysis;
using System.Text.Json.Serialization;
using EdgeUpdater.Trust.Serialization;

namespace EdgeUpdater.Trust.Versioning;

/// <summary>
/// A Semantic Versioning 2.0.0 version (<c>MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]</c>), parsed strictly
/// (no leading zeros in numeric parts, no "v" prefix) and ordered by SemVer precedence.
/// </summary>
/// <remarks>
/// <see cref="CompareTo(SemanticVersion?)"/> and the ordering operators follow SemVer precedence, which
/// ignores build metadata; <see cref="Equals(SemanticVersion?)"/> compares the full text, so
/// <c>1.0.0+a</c> and <c>1.0.0+b</c> are different versions of equal precedence.
/// </remarks>
[JsonConverter(typeof(SemanticVersionJsonConverter))]
public sealed class SemanticVersion : IComparable<SemanticVersion>, IEquatable<SemanticVersion>
{
    private readonly string[] _prerelease;

    private SemanticVersion(ulong major, ulong minor, ulong patch, string[] prerelease, string? build, string text)
    {
        Major = major;
        Minor = minor;
        Patch = patch;
        _prerelease = prerelease;
        Build = build;
        Text = text;
    }

    /// <summary>The major version.</summary>
    public ulong Major { get; }

    /// <summary>The minor version.</summary>
    public ulong Minor { get; }

    /// <summary>The patch version.</summary>
    public ulong Patch { get; }

    /// <summary>The dot-separated pre-release identifiers (empty for a release version).</summary>
    public IReadOnlyList<string> Prerelease => _prerelease;

    /// <summary>True when the version has pre-release identifiers (<c>1.0.0-rc.1</c>).</summary>
    public bool IsPrerelease => _prerelease.Length > 0;

    /// <summary>The build metadata after <c>+</c>, or null.</summary>
    public string? Build { get; }

    /// <summary>The version exactly as parsed.</summary>
    public string Text { get; }

    /// <summary>Parses <paramref name="text"/>; throws <see cref="FormatException"/> naming the broken part.</summary>
    public static SemanticVersion Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return TryParse(text, out var version, out var error)
            ? version
            : throw new FormatException($"'{text}' is not a semantic version (MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]): {error}");
    }

    /// <summary>Parses <paramref name="text"/>, returning false when it is not a valid SemVer 2.0.0 version.</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, [NotNullWhen(true)] out SemanticVersion? version)
        => TryParse(text, out version, out _);

    private static bool TryParse(string? text, [NotNullWhen(true)] out SemanticVersion? version, out string error)
    {
        version = null;
        if (string.IsNullOrEmpty(text))
        {
            error = "empty";
            return false;
        }

        var rest = text.AsSpan();
        string? build = null;
        var plus = rest.IndexOf('+');
        if (plus >= 0)
        {
            var buildPart = rest[(plus + 1)..];
            if (!ValidIdentifiers(buildPart, numericRule: false, out error))
            {
                error = "build metadata: " + error;
                return false;
            }

            build = buildPart.ToString();
            rest = rest[..plus];
        }

        string[] prerelease = [];
        var dash = rest.IndexOf('-');
        if (dash >= 0)
        {
            var prePart = rest[(dash + 1)..];
            if (!ValidIdentifiers(prePart, numericRule: true, out error))
            {
                error = "pre-release: " + error;
                return false;
            }

            prerelease = prePart.ToString().Split('.');
            rest = rest[..dash];
        }

        Span<ulong> numbers = stackalloc ulong[3];
        for (var i = 0; i < 3; i++)
        {
            var dot = rest.IndexOf('.');
            var part = i < 2 ? (dot >= 0 ? rest[..dot] : []) : rest;
            if (i < 2 && dot < 0)
            {
                error = "expected three numbers separated by dots";
                return false;
            }

            if (!TryParseNumber(part, out numbers[i]))
            {
                error = $"'{part}' is not a number without leading zeros";
                return false;
            }

            rest = i < 2 ? rest[(dot + 1)..] : [];
        }

        version = new SemanticVersion(numbers[0], numbers[1], numbers[2], prerelease, build, text);
        error = string.Empty;
        return true;
    }

    private static bool TryParseNumber(ReadOnlySpan<char> part, out ulong value)
    {
        value = 0;
        if (part.IsEmpty || (part.Length > 1 && part[0] == '0'))
        {
            return false;
        }

        foreach (var c in part)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }

            var digit = (ulong)(c - '0');
            if (value > (ulong.MaxValue - digit) / 10)
            {
                return false;
            }

            value = (value * 10) + digit;
        }

        return true;
    }

    private static bool ValidIdentifiers(ReadOnlySpan<char> identifiers, bool numericRule, out string error)
    {
        if (identifiers.IsEmpty)
        {
            error = "empty";
            return false;
        }

        foreach (var range in identifiers.Split('.'))
        {
            var identifier = identifiers[range];
            if (identifier.IsEmpty)
            {
                error = "empty identifier";
                return false;
            }

            var numeric = true;
            foreach (var c in identifier)
            {
                if (!char.IsAsciiLetterOrDigit(c) && c != '-')
                {
                    error = $"'{c}' is not allowed (only [0-9A-Za-z-])";
                    return false;
                }

                numeric &= char.IsAsciiDigit(c);
            }

            if (numericRule && numeric && identifier.Length > 1 && identifier[0] == '0')
            {
                error = $"numeric identifier '{identifier}' has a leading zero";
                return false;
            }
        }

        error = string.Empty;
        return true;
    }

    /// <summary>Orders by SemVer precedence: numbers, then a pre-release sorts before its release, identifier by identifier.</summary>
    public int CompareTo(SemanticVersion? other)
    {
        if (other is null)
        {
            return 1;
        }

        var c = Major.CompareTo(other.Major);
        if (c == 0)
        {
            c = Minor.CompareTo(other.Minor);
        }

        if (c == 0)
        {
            c = Patch.CompareTo(other.Patch);
        }

        return c != 0 ? c : ComparePrerelease(_prerelease, other._prerelease);
    }

    private static int ComparePrerelease(string[] left, string[] right)
    {
        if (left.Length == 0 || right.Length == 0)
        {
            // A release (no identifiers) has higher precedence than any pre-release of it.
            return right.Length.CompareTo(left.Length);
        }

        for (var i = 0; i < Math.Min(left.Length, right.Length); i++)
        {
            var a = left[i];
            var b = right[i];
            var aNumeric = a.All(char.IsAsciiDigit);
            var bNumeric = b.All(char.IsAsciiDigit);
            int c;
            if (aNumeric && bNumeric)
            {
                // No leading zeros, so the longer digit string is the larger number; no overflow possible.
                c = a.Length != b.Length ? a.Length.CompareTo(b.Length) : string.CompareOrdinal(a, b);
            }
            else if (aNumeric != bNumeric)
            {
                c = aNumeric ? -1 : 1;
            }
            else
            {
                c = string.CompareOrdinal(a, b);
            }

            if (c != 0)
            {
                return Math.Sign(c);
            }
        }

        return left.Length.CompareTo(right.Length);
    }

    /// <summary>True when both have the same text (build metadata included).</summary>
    public bool Equals(SemanticVersion? other) => other is not null && string.Equals(Text, other.Text, StringComparison.Ordinal);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is SemanticVersion other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(Text);

    /// <summary>The version text as parsed.</summary>
    public override string ToString() => Text;

    /// <summary>Text equality (build metadata included).</summary>
    public static bool operator ==(SemanticVersion? left, SemanticVersion? right) => left is null ? right is null : left.Equals(right);

    /// <summary>Text inequality.</summary>
    public static bool operator !=(SemanticVersion? left, SemanticVersion? right) => !(left == right);

    /// <summary>Lower precedence.</summary>
    public static bool operator <(SemanticVersion? left, SemanticVersion? right) => Compare(left, right) < 0;

    /// <summary>Lower or equal precedence.</summary>
    public static bool operator <=(SemanticVersion? left, SemanticVersion? right) => Compare(left, right) <= 0;

    /// <summary>Higher precedence.</summary>
    public static bool operator >(SemanticVersion? left, SemanticVersion? right) => Compare(left, right) > 0;

    /// <summary>Higher or equal precedence.</summary>
    public static bool operator >=(SemanticVersion? left, SemanticVersion? right) => Compare(left, right) >= 0;

    private static int Compare(SemanticVersion? left, SemanticVersion? right)
        => left is null ? (right is null ? 0 : -1) : left.CompareTo(right);
}
