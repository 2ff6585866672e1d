namespace EdgeUpdater.Agent.Bootloader;

/// <summary>GRUB: <c>grub-editenv FILE list</c> / <c>grub-editenv FILE set k=v ...</c> (a whole-file rewrite).</summary>
internal sealed class GrubBootloader : IBootloader
{
    private readonly string _envFile;
    private readonly string _tool;

    public GrubBootloader(string envFile, string? toolDirectory = null)
    {
        _envFile = envFile;
        _tool = ToolRunner.Locate(toolDirectory, "grub-editenv");
    }

    public string Name => "grub";

    public async Task<BootEnvironment> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (!File.Exists(_envFile))
        {
            throw new BootloaderException($"grub environment {_envFile} does not exist (create it with grub-editenv {_envFile} create)");
        }

        return BootEnvironment.Parse(await ToolRunner.RunAsync(_tool, [_envFile, "list"], cancellationToken).ConfigureAwait(false));
    }

    public async Task WriteAsync(IReadOnlyDictionary<string, string> values, CancellationToken cancellationToken = default)
    {
        await ToolRunner.RunAsync(_tool, [_envFile, "set", .. values.Select(v => $"{v.Key}={v.Value}")], cancellationToken).ConfigureAwait(false);
    }
}
