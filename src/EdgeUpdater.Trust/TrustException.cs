namespace EdgeUpdater.Trust;

/// <summary>
/// The one exception family of the trust layer: something was refused, with a <see cref="TrustFailure"/>
/// category and a message that says what was expected, what was found and where.
/// </summary>
public sealed class TrustException : Exception
{
    /// <summary>Creates an exception for <paramref name="failure"/>.</summary>
    public TrustException(TrustFailure failure, string message)
        : base(message)
    {
        Failure = failure;
    }

    /// <summary>Creates an exception for <paramref name="failure"/> caused by <paramref name="innerException"/>.</summary>
    public TrustException(TrustFailure failure, string message, Exception innerException)
        : base(message, innerException)
    {
        Failure = failure;
    }

    /// <summary>Creates a <see cref="TrustFailure.Malformed"/> exception.</summary>
    public TrustException()
        : this(TrustFailure.Malformed, "malformed input")
    {
    }

    /// <summary>Creates a <see cref="TrustFailure.Malformed"/> exception with a message.</summary>
    public TrustException(string message)
        : this(TrustFailure.Malformed, message)
    {
    }

    /// <summary>Creates a <see cref="TrustFailure.Malformed"/> exception with a message and a cause.</summary>
    public TrustException(string message, Exception innerException)
        : this(TrustFailure.Malformed, message, innerException)
    {
    }

    /// <summary>Why the input was refused.</summary>
    public TrustFailure Failure { get; }

    /// <summary>The category in kebab-case (<c>bad-signature</c>), for status reports and logs.</summary>
    public string FailureName => TrustFailureNames.ToKebabCase(Failure);
}
