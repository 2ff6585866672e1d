namespace EdgeUpdater.Trust;

/// <summary>
/// Why the trust layer refused something. Every rejection has exactly one category so that hosts can
/// report it (agent status, server API answer, CLI exit code) without parsing messages.
/// </summary>
public enum TrustFailure
{
    /// <summary>The envelope, payload JSON or key file is not well-formed or breaks a format rule.</summary>
    Malformed,

    /// <summary>The payload carries a schema number this version does not understand.</summary>
    UnknownSchema,

    /// <summary>The envelope holds another kind of document (for example a key set offered as a manifest).</summary>
    WrongPayloadType,

    /// <summary>The envelope carries no signature at all, or a signature that must be present (a new root key's) is absent.</summary>
    MissingSignature,

    /// <summary>A signature by a known key does not verify over the signed bytes.</summary>
    BadSignature,

    /// <summary>The signatures come only from keys that are not authorized for this document.</summary>
    UnknownKey,

    /// <summary>The signing release key's expiry has passed.</summary>
    ExpiredKey,

    /// <summary>The signing release key is marked revoked in the key set.</summary>
    RevokedKey,

    /// <summary>Some signatures verify, but fewer distinct keys than the threshold requires.</summary>
    ThresholdNotMet,

    /// <summary>The key set is not signed by the pinned root keys (or the chain from them is broken).</summary>
    KeySetNotChained,

    /// <summary>The newest key set's expiry has passed.</summary>
    KeySetExpired,

    /// <summary>A key set older than one already accepted (lower version), or a chain that does not move forward.</summary>
    KeySetRollback,

    /// <summary>The manifest's expiry has passed.</summary>
    ManifestExpired,

    /// <summary>The device's hardware id is not among the manifest's compatible hardware.</summary>
    HardwareMismatch,

    /// <summary>The device's architecture is not among the manifest's architectures.</summary>
    ArchitectureMismatch,

    /// <summary>The agent is older than the manifest's minimum agent version.</summary>
    AgentTooOld,

    /// <summary>The version is not newer than the installed one and the manifest does not allow a downgrade.</summary>
    NotNewer,

    /// <summary>The manifest was created before the manifest already installed (replay of an old release).</summary>
    Replay,

    /// <summary>The payload's SHA-256 differs from the manifest's.</summary>
    PayloadHashMismatch,

    /// <summary>The payload's size differs from the manifest's.</summary>
    PayloadSizeMismatch,

    /// <summary>A private key file is readable or writable by group or others.</summary>
    InsecureKeyFile,

    /// <summary>A private key file is passphrase-protected and no passphrase was given.</summary>
    PassphraseRequired,

    /// <summary>The passphrase does not open the private key file.</summary>
    WrongPassphrase,
}
