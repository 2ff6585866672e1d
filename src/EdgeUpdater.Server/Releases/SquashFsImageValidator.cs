using System.Text.Json;
using EdgeUpdater.SquashFs;
using EdgeUpdater.SquashFs.Reader;

namespace EdgeUpdater.Server.Releases;

/// <summary>
/// Checks the EdgeUpdater image layout with the SquashFS reader: exactly two top-level nodes,
/// <c>config.json</c> (a file) and <c>root/</c> (a directory), and reads name and version from
/// config.json so that publish can compare them with the manifest. The full config.json schema is
/// the image library's; this check needs only those two fields.
/// </summary>
internal sealed class SquashFsImageValidator : IImageValidator
{
    private const int MaxConfigBytes = 1 << 20;

    public Task<ImageFacts> ValidateAsync(string imagePath, CancellationToken cancellationToken = default) =>
        Task.Run(() => Validate(imagePath), cancellationToken);

    private static ImageFacts Validate(string imagePath)
    {
        try
        {
            using var image = SquashFsImage.Open(imagePath);
            var top = image.EnumerateDirectory(image.Root).ToList();
            var names = top.Select(e => e.Name).Order(StringComparer.Ordinal).ToList();
            if (names is not ["config.json", "root"])
            {
                throw new ReleaseRejectedException("not-an-image", $"an EdgeUpdater image has exactly 'config.json' and 'root/' at the top; this one has [{string.Join(", ", names)}]");
            }

            var config = top.Single(e => e.Name == "config.json");
            var root = top.Single(e => e.Name == "root");
            if (!config.IsFile || !root.IsDirectory)
            {
                throw new ReleaseRejectedException("not-an-image", "in an EdgeUpdater image 'config.json' must be a file and 'root' a directory");
            }

            if (config.Size > MaxConfigBytes)
            {
                throw new ReleaseRejectedException("not-an-image", $"config.json is {config.Size} bytes; at most {MaxConfigBytes} are allowed");
            }

            using var stream = image.OpenFile(config);
            using var document = JsonDocument.Parse(stream);
            var name = document.RootElement.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
            var version = document.RootElement.TryGetProperty("version", out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            if (name is null || version is null)
            {
                throw new ReleaseRejectedException("not-an-image", "config.json must name the image: {\"name\": ..., \"version\": ...}");
            }

            return new ImageFacts(name, version);
        }
        catch (SquashFsException e)
        {
            throw new ReleaseRejectedException("not-an-image", $"the upload is not a readable SquashFS 4.0 image: {e.Message}", e);
        }
        catch (JsonException e)
        {
            throw new ReleaseRejectedException("not-an-image", $"config.json in the image is not valid JSON: {e.Message}", e);
        }
    }
}
