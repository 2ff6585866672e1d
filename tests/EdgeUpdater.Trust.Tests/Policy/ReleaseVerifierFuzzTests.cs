using System.Text;
using EdgeUpdater.Trust.Keys;
using EdgeUpdater.Trust.KeySets;
using EdgeUpdater.Trust.Manifests;
using EdgeUpdater.Trust.Policy;
using Xunit;

namespace EdgeUpdater.Trust.Tests.Policy;

/// <summary>
/// Hostile input: thousands of mutated envelopes, payloads and key files (fixed seed, so failures
/// reproduce). Whatever the bytes, the parsers answer with a <see cref="TrustException"/> or a result,
/// never with another exception, and a mutated manifest never verifies.
/// </summary>
public sealed class ReleaseVerifierFuzzTests : IDisposable
{
    private const int Iterations = 3000;
    private const string JsonPunctuation = "{}[]\",:0a\\ -";
    private readonly TrustScenario _s = new();

    public void Dispose() => _s.Dispose();

    private static byte[] Mutate(Random random, byte[] input)
    {
        var bytes = input.ToList();
        var edits = random.Next(1, 4);
        for (var i = 0; i < edits && bytes.Count > 0; i++)
        {
            var at = random.Next(bytes.Count);
            switch (random.Next(5))
            {
                case 0:
                    bytes[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1:
                    bytes.RemoveAt(at);
                    break;
                case 2:
                    bytes.Insert(at, (byte)JsonPunctuation[random.Next(JsonPunctuation.Length)]);
                    break;
                case 3:
                    bytes.RemoveRange(at, bytes.Count - at);
                    break;
                default:
                    bytes[at] = (byte)random.Next(256);
                    break;
            }
        }

        return [.. bytes];
    }

    [Fact]
    public void Mutated_manifest_envelopes_are_refused_with_a_trust_exception()
    {
        var random = new Random(1234);
        var envelope = _s.ManifestEnvelope();
        var context = _s.Context();
        for (var i = 0; i < Iterations; i++)
        {
            var mutated = Mutate(random, envelope);
            try
            {
                var verified = ReleaseVerifier.Verify(mutated, context);

                // Only a change JSON ignores (whitespace, escapes) may still verify, with the same payload.
                Assert.Equal(TrustScenario.PayloadOf(envelope), verified.Manifest.ToPayloadBytes());
            }
            catch (TrustException)
            {
            }
        }
    }

    [Fact]
    public void Mutated_payloads_and_key_files_fail_only_with_trust_exceptions()
    {
        var random = new Random(5678);
        var manifest = TrustScenario.Manifest().ToPayloadBytes();
        var keySet = _s.KeySet().ToPayloadBytes();
        var keyFile = PrivateKeyFile.Serialize(_s.Release, KeyRole.Release, "pw", new PrivateKeyFileOptions { Argon2MemoryKiB = 8, Argon2Passes = 1 });
        for (var i = 0; i < Iterations; i++)
        {
            Survives(() => ReleaseManifest.Parse(Mutate(random, manifest)));
            Survives(() => KeySet.Parse(Mutate(random, keySet)));
            if (i % 10 == 0)
            {
                Survives(() => PrivateKeyFile.Deserialize(Mutate(random, keyFile), "pw"));
            }
        }

        Survives(() => ReleaseManifest.Parse(Encoding.UTF8.GetBytes(new string('[', 100_000))));
    }

    private static void Survives(Func<object> parse)
    {
        try
        {
            parse();
        }
        catch (TrustException)
        {
        }
    }
}
