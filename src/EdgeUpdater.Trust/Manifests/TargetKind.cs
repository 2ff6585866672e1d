using System.Text.Json.Serialization;
using EdgeUpdater.Trust.Serialization;

namespace EdgeUpdater.Trust.Manifests;

/// <summary>What a release updates. JSON: <c>"system"</c>, <c>"app"</c>.</summary>
[JsonConverter(typeof(KebabCaseEnumConverter<TargetKind>))]
public enum TargetKind
{
    /// <summary>The root filesystem: A/B slot switch in the bootloader, trial boot, reboot.</summary>
    System,

    /// <summary>An application image: mounted with an overlay and restarted, no reboot.</summary>
    App,
}
