using EdgeUpdater.Trust;
using EdgeUpdater.Trust.Policy;

namespace EdgeUpdater.Server.Releases;

/// <summary>
/// Publish-time verification with the trust library's one policy function: signatures by release keys
/// of the newest key set, the chain from the configured roots, key and manifest expiry. Device checks
/// (hardware, version order) are the agent's: the server passes no device facts.
/// </summary>
internal sealed class TrustReleaseVerifier : IReleaseVerifier
{
    private readonly TrustStore _trust;

    public TrustReleaseVerifier(TrustStore trust)
    {
        _trust = trust;
    }

    public VerifiedManifest Verify(ReadOnlySpan<byte> envelope, DateTimeOffset now)
    {
        var roots = _trust.Roots
            ?? throw new ReleaseRejectedException("no-trusted-root", "the server has no trusted root key configured (Trust:RootKeyFiles or DATA/trusted-roots/)", StatusCodes.Status503ServiceUnavailable);
        var chain = _trust.GetChainAsync().GetAwaiter().GetResult();
        if (chain.Count == 0)
        {
            throw new ReleaseRejectedException("no-key-set", "the server has no key set yet: upload the chain first (POST /v1/keysets)", StatusCodes.Status409Conflict);
        }

        VerifiedRelease verified;
        try
        {
            verified = ReleaseVerifier.Verify(envelope, new TrustContext { PinnedRoots = roots, KeySetChain = chain, Now = now });
        }
        catch (TrustException e)
        {
            throw new ReleaseRejectedException(e.FailureName, e.Message, e);
        }

        var m = verified.Manifest;
        return new VerifiedManifest(
            m.ImageSha256,
            m.ImageSize,
            m.Name,
            m.Version.ToString(),
            m.TargetKind.ToString().ToLowerInvariant(),
            m.Hardware,
            m.Expires)
        {
            Target = m.Target,
            Architectures = m.Architectures,
        };
    }
}
