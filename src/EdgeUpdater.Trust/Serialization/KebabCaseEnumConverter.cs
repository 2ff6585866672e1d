using System.Text.Json;
using System.Text.Json.Serialization;

namespace EdgeUpdater.Trust.Serialization;

/// <summary>Enum as a kebab-case string; numbers and unknown names are refused.</summary>
internal sealed class KebabCaseEnumConverter<TEnum> : JsonStringEnumConverter<TEnum>
    where TEnum : struct, Enum
{
    public KebabCaseEnumConverter()
        : base(JsonNamingPolicy.KebabCaseLower, allowIntegerValues: false)
    {
    }
}
