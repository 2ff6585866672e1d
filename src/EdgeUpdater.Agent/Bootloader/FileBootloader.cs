using System.Text;
using EdgeUpdater.Agent.Interop.Linux;

namespace EdgeUpdater.Agent.Bootloader;

/// <summary>A plain <c>key=value</c> file, replaced atomically (temp, fsync, rename, fsync directory).</summary>
internal sealed class FileBootloader : IBootloader
{
    private readonly string _path;

    public FileBootloader(string path)
    {
        _path = path;
    }

    public string Name => "file";

    public async Task<BootEnvironment> ReadAsync(CancellationToken cancellationToken = default) =>
        File.Exists(_path)
            ? BootEnvironment.Parse(await File.ReadAllTextAsync(_path, cancellationToken).ConfigureAwait(false))
            : new BootEnvironment(new Dictionary<string, string>());

    public async Task WriteAsync(IReadOnlyDictionary<string, string> values, CancellationToken cancellationToken = default)
    {
        var current = await ReadAsync(cancellationToken).ConfigureAwait(false);
        var merged = new SortedDictionary<string, string>(current.Values.ToDictionary(), StringComparer.Ordinal);
        foreach (var (name, value) in values)
        {
            merged[name] = value;
        }

        var text = new StringBuilder();
        foreach (var (name, value) in merged)
        {
            text.Append(name).Append('=').Append(value).Append('\n');
        }

        var directory = Path.GetDirectoryName(Path.GetFullPath(_path))!;
        var temp = _path + ".tmp";
        var stream = new FileStream(temp, FileMode.Create, FileAccess.Write);
        await using (stream.ConfigureAwait(false))
        {
            await stream.WriteAsync(Encoding.UTF8.GetBytes(text.ToString()), cancellationToken).ConfigureAwait(false);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temp, _path, overwrite: true);
        Libc.FsyncDirectory(directory);
    }
}
