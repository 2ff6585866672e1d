using System.Text.Json;
using System.Text.Json.Serialization;

namespace EdgeUpdater.Cli.Commands;

/// <summary>What <c>edgeupdater image inspect --json</c> prints.</summary>
internal sealed record ImageInspection
{
    public required string Path { get; init; }

    public required long FileBytes { get; init; }

    public required ulong BytesUsed { get; init; }

    public required string Version { get; init; }

    public required uint BlockSize { get; init; }

    public required DateTimeOffset Created { get; init; }

    public required uint Inodes { get; init; }

    public required uint Fragments { get; init; }

    public required ushort Ids { get; init; }

    public required IReadOnlyList<string> Flags { get; init; }

    public required ImageInspectionCompressor Compressor { get; init; }

    public required IReadOnlyDictionary<string, long?> Tables { get; init; }

    public required bool EdgeUpdaterImage { get; init; }

    public string? LayoutError { get; init; }

    public JsonElement? Config { get; init; }
}

/// <summary>Compressor part of <see cref="ImageInspection"/>.</summary>
internal sealed record ImageInspectionCompressor
{
    public required string Name { get; init; }

    public required string Options { get; init; }

    public required string Library { get; init; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ImageInspection))]
[JsonSerializable(typeof(JsonElement))]
internal sealed partial class ImageInspectionJsonContext : JsonSerializerContext;
