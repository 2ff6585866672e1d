namespace EdgeUpdater.Cli.Commands;

/// <summary>Process exit codes shared by every command, documented in docs/cli.md.</summary>
internal static class ExitCodes
{
    /// <summary>Success.</summary>
    public const int Ok = 0;

    /// <summary>Something failed at run time (I/O, network, a tool).</summary>
    public const int Failure = 1;

    /// <summary>The command line was wrong.</summary>
    public const int Usage = 2;

    /// <summary>An input is invalid: corrupt image, bad config, malformed delta.</summary>
    public const int InvalidInput = 3;

    /// <summary>A signature, hash or policy check refused the input.</summary>
    public const int VerificationFailed = 4;

    /// <summary>The server or device said no (HTTP 4xx, control API error).</summary>
    public const int Rejected = 5;
}
