using EdgeUpdater.Trust.KeySets;
using EdgeUpdater.Trust.Keys;
using Xunit;

namespace EdgeUpdater.Yocto.Tests.Layer;

/// <summary>
/// edgeupdater-conf's example trust files: the key id the recipe warns about is the one of the root key
/// it installs, and the example key set verifies from that root as a device would verify it.
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
}
