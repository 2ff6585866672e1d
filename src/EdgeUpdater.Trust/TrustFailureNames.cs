using System.Text;

namespace EdgeUpdater.Trust;

/// <summary>Kebab-case names of <see cref="TrustFailure"/> values, as the hosts report them.</summary>
public static class TrustFailureNames
{
    /// <summary>The kebab-case name: <see cref="TrustFailure.BadSignature"/> gives <c>bad-signature</c>.</summary>
    public static string ToKebabCase(TrustFailure failure)
    {
        var name = failure.ToString();
        var builder = new StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (char.IsUpper(c))
            {
                if (i > 0)
                {
                    builder.Append('-');
                }

                builder.Append(char.ToLowerInvariant(c));
            }
            else
            {
                builder.Append(c);
            }
        }

        return builder.ToString();
    }
}
