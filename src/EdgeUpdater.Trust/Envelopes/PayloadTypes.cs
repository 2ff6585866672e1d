namespace EdgeUpdater.Trust.Envelopes;

/// <summary>The <c>payloadType</c> values of the envelopes this library signs. Part of the signed bytes.</summary>
public static class PayloadTypes
{
    /// <summary>A release manifest (<see cref="Manifests.ReleaseManifest"/>).</summary>
    public const string ReleaseManifest = "application/vnd.edgeupdater.release-manifest+json";

    /// <summary>A key set (<see cref="KeySets.KeySet"/>).</summary>
    public const string KeySet = "application/vnd.edgeupdater.key-set+json";
}
