namespace EdgeUpdater.Yocto.Tests.Layer;

/// <summary>Paths of the repository and of meta-edgeupdater, found from the test assembly's location.</summary>
internal static class LayerPaths
{
    private static readonly Lazy<string> RepositoryRootValue = new(FindRepositoryRoot);

    /// <summary>The repository root (the directory holding EdgeUpdater.sln).</summary>
    public static string RepositoryRoot => RepositoryRootValue.Value;

    /// <summary><c>yocto/meta-edgeupdater</c>.</summary>
    public static string Layer => Path.Combine(RepositoryRoot, "yocto", "meta-edgeupdater");

    /// <summary>A path inside the layer.</summary>
    public static string InLayer(params string[] relative) => Path.Combine([Layer, .. relative]);

    /// <summary>A path inside the repository.</summary>
    public static string InRepository(params string[] relative) => Path.Combine([RepositoryRoot, .. relative]);

    private static string FindRepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "EdgeUpdater.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"EdgeUpdater.sln not found above {AppContext.BaseDirectory}");
    }
}
