using EdgeUpdater.Agent.Interop.Linux;

namespace EdgeUpdater.Agent.Bootloader;

/// <summary>
/// GRUB: <c>grub-editenv FILE list</c> to read. To write, <c>grub-editenv COPY set k=v ...</c> on a copy
/// in the same directory, then fsync, rename over the file, fsync the directory: grub-editenv itself
/// truncates and rewrites its file in place, so a power cut during it could leave the block empty or torn.
/// </summary>
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

    /// <summary>The copy a write edits before it replaces the environment; a cut can leave it behind, torn, and the next write overwrites it.</summary>
    internal string PendingFile => _envFile + ".new";

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
        var pending = PendingFile;
        try
        {
            if (File.Exists(_envFile))
            {
                File.Copy(_envFile, pending, overwrite: true);
            }
            else
            {
                // As before on a missing file: grub-editenv creates a fresh block (not from a torn leftover).
                File.Delete(pending);
            }

            await ToolRunner.RunAsync(_tool, [pending, "set", .. values.Select(v => $"{v.Key}={v.Value}")], cancellationToken).ConfigureAwait(false);
            using (var written = new FileStream(pending, FileMode.Open, FileAccess.ReadWrite))
            {
                written.Flush(flushToDisk: true);
            }

            File.Move(pending, _envFile, overwrite: true);
            Libc.FsyncDirectory(Path.GetDirectoryName(Path.GetFullPath(_envFile))!);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BootloaderException($"cannot replace the grub environment {_envFile}: {e.Message}", e);
        }
        finally
        {
            // Gone after the rename; after a failure the original is untouched and the copy is useless.
            File.Delete(pending);
        }
    }
}
