using EdgeUpdater.Trust.Versioning;
using Xunit;

namespace EdgeUpdater.Trust.Tests.Versioning;

public sealed class SemanticVersionTests
{
    [Theory]
    [InlineData("0.0.0", 0UL, 0UL, 0UL, "", null)]
    [InlineData("1.2.3", 1UL, 2UL, 3UL, "", null)]
    [InlineData("10.20.30-rc.1+build.5", 10UL, 20UL, 30UL, "rc.1", "build.5")]
    [InlineData("1.0.0-alpha-a.b-c-somethinglong+build.1-aef.1-its-okay", 1UL, 0UL, 0UL, "alpha-a.b-c-somethinglong", "build.1-aef.1-its-okay")]
    [InlineData("1.0.0+0.build.1-rc.10000aaa-kk-0.1", 1UL, 0UL, 0UL, "", "0.build.1-rc.10000aaa-kk-0.1")]
    [InlineData("18446744073709551615.0.0", ulong.MaxValue, 0UL, 0UL, "", null)]
    [InlineData("1.0.0-0A.is.legal", 1UL, 0UL, 0UL, "0A.is.legal", null)]
    public void Parses_valid_versions(string text, ulong major, ulong minor, ulong patch, string prerelease, string? build)
    {
        var v = SemanticVersion.Parse(text);
        Assert.Equal((major, minor, patch), (v.Major, v.Minor, v.Patch));
        Assert.Equal(prerelease, string.Join('.', v.Prerelease));
        Assert.Equal(build, v.Build);
        Assert.Equal(text, v.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("1")]
    [InlineData("1.2")]
    [InlineData("1.2.3.4")]
    [InlineData("v1.2.3")]
    [InlineData("01.2.3")]
    [InlineData("1.02.3")]
    [InlineData("1.2.03")]
    [InlineData("1.2.3-")]
    [InlineData("1.2.3+")]
    [InlineData("1.2.3-01")]
    [InlineData("1.2.3-rc..1")]
    [InlineData("1.2.3-rc_1")]
    [InlineData("1.2.3+build..1")]
    [InlineData("1.2.-3")]
    [InlineData(" 1.2.3")]
    [InlineData("18446744073709551616.0.0")]
    [InlineData("1.2.3-rc.1+b+c")]
    public void Refuses_invalid_versions(string text)
    {
        Assert.False(SemanticVersion.TryParse(text, out _));
        Assert.Throws<FormatException>(() => SemanticVersion.Parse(text));
    }

    [Fact]
    public void Precedence_follows_the_specification_example()
    {
        // The ordering example of semver.org section 11, plus numeric edge cases.
        string[] ordered =
        [
            "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
            "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "1.9.0", "1.10.0", "2.0.0-1", "2.0.0-2", "2.0.0-10", "2.0.0-a", "2.0.0",
        ];
        for (var i = 0; i < ordered.Length; i++)
        {
            for (var j = 0; j < ordered.Length; j++)
            {
                var a = SemanticVersion.Parse(ordered[i]);
                var b = SemanticVersion.Parse(ordered[j]);
                Assert.True(Math.Sign(a.CompareTo(b)) == i.CompareTo(j), $"{a} vs {b}");
                Assert.Equal(i < j, a < b);
                Assert.Equal(i >= j, a >= b);
            }
        }
    }

    [Fact]
    public void Build_metadata_is_ignored_for_precedence_but_not_for_equality()
    {
        var a = SemanticVersion.Parse("1.0.0+a");
        var b = SemanticVersion.Parse("1.0.0+b");
        Assert.Equal(0, a.CompareTo(b));
        Assert.NotEqual(a, b);
        Assert.True(a <= b && a >= b);
        Assert.Equal(SemanticVersion.Parse("1.0.0+a"), a);
    }
}
