using EdgeUpdater.Testing;
using EdgeUpdater.Trust.Policy;
using Xunit;

namespace EdgeUpdater.Trust.Tests.Policy;

public sealed class PayloadVerifierTests
{
    // SHA-256("test"), 4 bytes: the scenario manifest's image.
    private static readonly byte[] Image = "test"u8.ToArray();

    [Fact]
    public async Task Matching_payload_passes_from_stream_and_file()
    {
        var manifest = TrustScenario.Manifest();
        await PayloadVerifier.VerifyAsync(new MemoryStream(Image), manifest, TestContext.Current.CancellationToken);

        using var dir = new TempDirectory("trust-payload");
        var path = dir.Combine("image.sqfs");
        await File.WriteAllBytesAsync(path, Image, TestContext.Current.CancellationToken);
        await PayloadVerifier.VerifyFileAsync(path, manifest, TestContext.Current.CancellationToken);
        Assert.Equal(new PayloadDigest(TrustScenario.ImageSha256, 4), await PayloadVerifier.ComputeFileAsync(path, TestContext.Current.CancellationToken));
    }

    [Theory]
    [InlineData("tesT", TrustFailure.PayloadHashMismatch)]
    [InlineData("tes", TrustFailure.PayloadSizeMismatch)]
    [InlineData("test!", TrustFailure.PayloadSizeMismatch)]
    [InlineData("", TrustFailure.PayloadSizeMismatch)]
    public async Task Differing_payload_is_refused(string content, TrustFailure expected)
    {
        var e = await Assert.ThrowsAsync<TrustException>(
            () => PayloadVerifier.VerifyAsync(new MemoryStream(System.Text.Encoding.ASCII.GetBytes(content)), TrustScenario.Manifest(), TestContext.Current.CancellationToken));
        Assert.Equal(expected, e.Failure);
    }

    [Fact]
    public void Incremental_verifier_refuses_an_overrun_as_soon_as_it_happens()
    {
        using var verifier = new IncrementalPayloadVerifier(TrustScenario.ImageSha256, 4);
        verifier.Append("te"u8);
        var e = Assert.Throws<TrustException>(() => verifier.Append("st!"u8));
        Assert.Equal(TrustFailure.PayloadSizeMismatch, e.Failure);
        Assert.Equal(2, verifier.BytesSeen);
    }
}
