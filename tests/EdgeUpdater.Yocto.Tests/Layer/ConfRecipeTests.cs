using System.Reflection;
using EdgeUpdater.Testing;
using EdgeUpdater.Trust.KeySets;
using EdgeUpdater.Trust.Keys;
using Xunit;

namespace EdgeUpdater.Yocto.Tests.Layer;

/// <summary>
/// edgeupdater-conf's example trust files: the key id the recipe warns about is the one of the root key
/// it installs, the example key set verifies from that root as a device would verify it, and the
/// example configurations (the layer's agent.json, the release tarball's agent.example.json) load in
/// the agent's own configuration loader.
/// </summary>
public sealed class ConfRecipeTests
{
    private static string Files => LayerPaths.InLayer("recipes-core", "edgeupdater", "files");

    [Fact]
    public async Task Example_root_key_id_in_the_recipe_is_the_installed_root_key()
    {
        var recipe = BitBakeFile.Load(LayerPaths.InLayer("recipes-core", "edgeupdater", "edgeupdater-conf_1.0.bb"));
        var key = await PublicKeyFile.ReadAsync(Path.Combine(Files, "trust", "root.pub"), TestContext.Current.CancellationToken);
        Assert.Equal(key.KeyId, recipe.ValueOf("EDGEUPDATER_EXAMPLE_ROOT_KEY_ID"));
    }

    [Fact]
    public async Task Example_key_set_verifies_from_the_example_root()
    {
        var root = await PublicKeyFile.ReadAsync(Path.Combine(Files, "trust", "root.pub"), TestContext.Current.CancellationToken);
        var keySet = await File.ReadAllBytesAsync(Path.Combine(Files, "trust", "keyset-v1.json"), TestContext.Current.CancellationToken);
        var verified = KeySetVerifier.VerifyChain(new TrustRoot([root]), [keySet], DateTimeOffset.UtcNow);
        Assert.Equal(1, verified.KeySet.Version);
    }

    [Theory]
    [InlineData("yocto/meta-edgeupdater/recipes-core/edgeupdater/files/agent.json")]
    [InlineData("scripts/release/agent.example.json")]
    public void Example_configuration_loads_in_the_agent(string file)
    {
        // The files name /etc/edgeupdater/trust/...: point them at the layer's example trust files.
        using var directory = new TempDirectory("yocto-conf");
        var text = File.ReadAllText(LayerPaths.InRepository(file.Split('/')))
            .Replace("/etc/edgeupdater/trust/", Path.Combine(Files, "trust") + "/", StringComparison.Ordinal);
        var path = directory.Combine("agent.json");
        File.WriteAllText(path, text);

        // AgentConfigLoader is internal to the agent: the same loader `edgeupdater-agent check-config` runs.
        var loader = Assembly.Load(new AssemblyName("edgeupdater-agent")).GetType("EdgeUpdater.Agent.Config.AgentConfigLoader", throwOnError: true)!;
        try
        {
            var config = loader.GetMethod("Load", BindingFlags.Public | BindingFlags.Static)!.Invoke(null, [path]);
            Assert.NotNull(config);
        }
        catch (TargetInvocationException e)
        {
            Assert.Fail($"{file} does not load: {e.InnerException?.Message}");
        }
    }
}
