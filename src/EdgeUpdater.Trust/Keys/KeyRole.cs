using System.Text.Json.Serialization;
using EdgeUpdater.Trust.Serialization;

namespace EdgeUpdater.Trust.Keys;

/// <summary>What a key is trusted for. JSON: <c>"root"</c>, <c>"release"</c>.</summary>
[JsonConverter(typeof(KebabCaseEnumConverter<KeyRole>))]
public enum KeyRole
{
    /// <summary>Signs key sets; kept offline; its public half is pinned on devices.</summary>
    Root,

    /// <summary>Signs release manifests; listed in a key set with an expiry.</summary>
    Release,
}
