using EdgeUpdater.Server.Hosting;
using EdgeUpdater.Server.Storage;
using EdgeUpdater.Trust;
using EdgeUpdater.Trust.Keys;
using EdgeUpdater.Trust.KeySets;

namespace EdgeUpdater.Server.Releases;

/// <summary>
/// The server's trust anchors: the root public keys it is configured with (files) and the key set
/// chain operators upload (kept in the fleet store, served to devices). A key set is accepted only
/// when the whole chain, with it appended, verifies from the roots.
/// </summary>
internal sealed class TrustStore
{
    private readonly IFleetStore _store;
    private readonly TimeProvider _time;

    public TrustStore(IFleetStore store, TimeProvider time)
    {
        _store = store;
        _time = time;
    }

    /// <summary>The configured roots, or null when none is configured.</summary>
    public TrustRoot? Roots { get; private set; }

    /// <summary>Where the roots came from, for messages.</summary>
    public IReadOnlyList<string> RootFiles { get; private set; } = [];

    /// <summary>Reads the root key files named by the options (or every file in <c>{data}/trusted-roots/</c>).</summary>
    public async Task LoadRootsAsync(ServerOptions options, CancellationToken cancellationToken = default)
    {
        var files = options.Trust.RootKeyFiles.Count > 0
            ? options.Trust.RootKeyFiles.ToList()
            : Directory.Exists(Path.Combine(options.DataDirectory, "trusted-roots"))
                ? Directory.EnumerateFiles(Path.Combine(options.DataDirectory, "trusted-roots")).Order(StringComparer.Ordinal).ToList()
                : [];
        var keys = new List<VerificationKey>();
        foreach (var file in files)
        {
            try
            {
                keys.Add(await PublicKeyFile.ReadAsync(file, cancellationToken).ConfigureAwait(false));
            }
            catch (Exception e) when (e is TrustException or IOException)
            {
                throw new ServerConfigurationException("Trust:RootKeyFiles", $"cannot use '{file}' as a root public key: {e.Message}");
            }
        }

        if (keys.Count > 0 && (options.Trust.RootThreshold < 1 || options.Trust.RootThreshold > keys.Count))
        {
            throw new ServerConfigurationException("Trust:RootThreshold", $"must be 1..{keys.Count} (the number of root keys), found {options.Trust.RootThreshold}");
        }

        Roots = keys.Count == 0 ? null : new TrustRoot(keys, options.Trust.RootThreshold);
        RootFiles = files;
    }

    /// <summary>The stored key set envelopes, oldest first.</summary>
    public async Task<IReadOnlyList<ReadOnlyMemory<byte>>> GetChainAsync(CancellationToken cancellationToken = default) =>
        (await _store.ListKeySetsAsync(cancellationToken).ConfigureAwait(false)).Select(k => (ReadOnlyMemory<byte>)k.Envelope).ToList();

    /// <summary>
    /// Verifies <paramref name="envelope"/> as the next key set of the chain and stores it. Returns false
    /// when exactly this key set is already stored. Throws <see cref="ReleaseRejectedException"/> when it does not chain.
    /// </summary>
    public async Task<(bool Added, VerifiedKeySet KeySet)> AddKeySetAsync(byte[] envelope, CancellationToken cancellationToken = default)
    {
        var roots = Roots ?? throw new ReleaseRejectedException("no-trusted-root", "the server has no trusted root key configured (Trust:RootKeyFiles)", StatusCodes.Status503ServiceUnavailable);
        var existing = await _store.ListKeySetsAsync(cancellationToken).ConfigureAwait(false);
        if (existing.Any(k => k.Envelope.AsSpan().SequenceEqual(envelope)))
        {
            var verified = KeySetVerifier.VerifyChain(roots, existing.Select(k => (ReadOnlyMemory<byte>)k.Envelope).ToList(), _time.GetUtcNow());
            return (false, verified);
        }

        VerifiedKeySet keySet;
        try
        {
            keySet = KeySetVerifier.VerifyChain(roots, [.. existing.Select(k => (ReadOnlyMemory<byte>)k.Envelope), envelope], _time.GetUtcNow());
        }
        catch (TrustException e)
        {
            throw new ReleaseRejectedException(e.FailureName, $"the key set does not extend the server's chain: {e.Message}", e);
        }

        await _store.AddKeySetAsync(new KeySetRecord(keySet.Version, envelope, _time.GetUtcNow()), cancellationToken).ConfigureAwait(false);
        return (true, keySet);
    }
}
