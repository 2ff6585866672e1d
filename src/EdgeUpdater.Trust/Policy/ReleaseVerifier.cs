using System.Globalization;
using System.Security.Cryptography;
using EdgeUpdater.Trust.Envelopes;
using EdgeUpdater.Trust.Keys;
using EdgeUpdater.Trust.KeySets;
using EdgeUpdater.Trust.Manifests;

namespace EdgeUpdater.Trust.Policy;

/// <summary>
/// The one verification policy the agent, the server and the CLI share: a manifest envelope is accepted
/// only when its key set chains to the pinned roots, enough unexpired, unrevoked release keys signed it,
/// it has not expired, and (on a device) it fits the hardware, architecture, agent and installed release.
/// </summary>
public static class ReleaseVerifier
{
    /// <summary>Verifies <paramref name="envelope"/> (the manifest file bytes) against <paramref name="context"/>.</summary>
    /// <returns>The verified manifest; the image itself is checked afterwards with <see cref="PayloadVerifier"/>.</returns>
    /// <exception cref="TrustException">With the <see cref="TrustFailure"/> of the first check that failed.</exception>
    public static VerifiedRelease Verify(ReadOnlySpan<byte> envelope, TrustContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var signed = SignedEnvelope.Parse(envelope);
        if (signed.PayloadType != PayloadTypes.ReleaseManifest)
        {
            throw new TrustException(TrustFailure.WrongPayloadType, $"expected a release manifest ({PayloadTypes.ReleaseManifest}), found payloadType '{signed.PayloadType}'");
        }

        var keySet = KeySetVerifier.VerifyChain(context.PinnedRoots, context.KeySetChain, context.Now, context.MinimumKeySetVersion);
        var signers = ReleaseSigners(keySet.KeySet, context.Now);
        var signedBy = SignatureCheck.RequireThreshold(
            signed, signers, keySet.KeySet.ReleaseThreshold, "manifest", TrustFailure.UnknownKey, $"the release keys of key set v{keySet.Version}");

        var manifest = ReleaseManifest.Parse(signed.Payload.Span);
        CheckPolicy(manifest, context);
        return new VerifiedRelease(manifest, keySet, [.. signedBy.Order(StringComparer.Ordinal)], Convert.ToHexStringLower(SHA256.HashData(envelope)));
    }

    private static Dictionary<string, KnownSigner> ReleaseSigners(KeySet keySet, DateTimeOffset now)
    {
        var signers = new Dictionary<string, KnownSigner>(StringComparer.Ordinal);
        foreach (var entry in keySet.ReleaseKeys)
        {
            var expires = entry.Expires!.Value;
            var signer = entry.Revoked
                ? new KnownSigner(entry.PublicKey, SignerStanding.Revoked, $"revoked in key set v{keySet.Version}")
                : expires <= now
                    ? new KnownSigner(entry.PublicKey, SignerStanding.Expired, $"release key expired at {expires:O}, now {now:O}")
                    : new KnownSigner(entry.PublicKey, SignerStanding.Valid, "release key");
            signers.Add(entry.KeyId, signer);
        }

        return signers;
    }

    private static void CheckPolicy(ReleaseManifest manifest, TrustContext context)
    {
        var what = $"manifest {manifest.Name} {manifest.Version}";
        if (manifest.Expires <= context.Now)
        {
            throw new TrustException(TrustFailure.ManifestExpired, $"{what} expired at {manifest.Expires:O} (now {context.Now:O})");
        }

        if (context.Device is { } device)
        {
            if (!manifest.Hardware.Contains(device.Hardware, StringComparer.Ordinal))
            {
                throw new TrustException(TrustFailure.HardwareMismatch, $"{what} is for hardware [{string.Join(", ", manifest.Hardware)}]; this device is '{device.Hardware}'");
            }

            if (!manifest.Architectures.Contains(device.Architecture, StringComparer.Ordinal))
            {
                throw new TrustException(TrustFailure.ArchitectureMismatch, $"{what} is for architectures [{string.Join(", ", manifest.Architectures)}]; this device is '{device.Architecture}'");
            }

            if (manifest.MinAgentVersion is { } minimum && device.AgentVersion is { } agent && agent < minimum)
            {
                throw new TrustException(TrustFailure.AgentTooOld, $"{what} needs agent {minimum} or newer; this agent is {agent}");
            }
        }

        if (context.Installed is { } installed)
        {
            if (manifest.Created < installed.ManifestCreated)
            {
                throw new TrustException(
                    TrustFailure.Replay,
                    $"{what} was created at {manifest.Created.ToString("O", CultureInfo.InvariantCulture)}, before the installed release's manifest ({installed.ManifestCreated:O}); an older manifest is not accepted again");
            }

            if (manifest.Version <= installed.Version && !manifest.AllowDowngrade)
            {
                throw new TrustException(
                    TrustFailure.NotNewer,
                    $"{what} is not newer than the installed {installed.Version} and does not set allowDowngrade");
            }
        }
    }
}
