using System.Buffers.Binary;
using System.IO.Hashing;
using EdgeUpdater.Delta.Format;

namespace EdgeUpdater.Delta.Apply;

/// <summary>
/// Where an interrupted apply can continue: the delta offset of the next section and the new-image offset
/// reached, tied to the delta by both image hashes and a hash of its header (another delta of the same pair,
/// e.g. of the other level or format, has other sections at other offsets). Stored atomically (temp file,
/// fsync, rename).
/// </summary>
internal sealed record Checkpoint(byte[] BaseSha256, byte[] TargetSha256, ulong HeaderHash, long DeltaOffset, long TargetOffset)
{
    private static ReadOnlySpan<byte> Magic => "EUCKPT2\n"u8;

    private const int Size = 8 + 32 + 32 + 8 + 8 + 8 + 8;

    /// <summary>What ties a checkpoint to its delta besides the image hashes.</summary>
    public static ulong HashOf(DeltaHeader header) => XxHash3.HashToUInt64(header.Encode());

    public static Checkpoint? Load(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        var bytes = File.ReadAllBytes(path);
        if (bytes.Length != Size || !bytes.AsSpan(0, 8).SequenceEqual(Magic)
            || XxHash3.HashToUInt64(bytes.AsSpan(0, Size - 8)) != BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(Size - 8)))
        {
            throw new DeltaException(DeltaErrorCategory.CheckpointMismatch, $"The checkpoint {path} is damaged or of another version ({bytes.Length} bytes); delete it to start over.");
        }

        var deltaOffset = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(80));
        var targetOffset = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(88));
        if (deltaOffset < 0 || targetOffset < 0)
        {
            throw new DeltaException(DeltaErrorCategory.CheckpointMismatch, $"The checkpoint {path} says delta offset {deltaOffset} and new-image offset {targetOffset}; delete it to start over.");
        }

        return new Checkpoint(bytes.AsSpan(8, 32).ToArray(), bytes.AsSpan(40, 32).ToArray(), BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(72)), deltaOffset, targetOffset);
    }

    public void Save(string path)
    {
        var writer = new ByteWriter(Size);
        writer.Bytes(Magic);
        writer.Bytes(BaseSha256);
        writer.Bytes(TargetSha256);
        writer.U64(HeaderHash);
        writer.U64((ulong)DeltaOffset);
        writer.U64((ulong)TargetOffset);
        writer.U64(XxHash3.HashToUInt64(writer.WrittenSpan));
        var temp = path + ".tmp";
        try
        {
            using var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None);
            stream.Write(writer.WrittenSpan);
            stream.Flush(flushToDisk: true);
        }
        catch (IOException e) when (Interop.Libc.IsNoRoom(e.HResult))
        {
            // The checkpoint before this one is still in place (replaced only by the rename below).
            throw new DeltaException(DeltaErrorCategory.OutputFull, $"No room for the checkpoint {temp} ({e.Message}). The base image is untouched; make room and apply again (it resumes from the checkpoint before).", e);
        }

        File.Move(temp, path, overwrite: true);
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null)
        {
            // fsync the directory so that the rename itself survives a power cut.
            try
            {
                using var handle = File.OpenHandle(directory, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                RandomAccess.FlushToDisk(handle);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Some runtimes and file systems refuse a directory handle; the rename is still atomic.
            }
        }
    }

    public static void Delete(string path)
    {
        File.Delete(path);
        File.Delete(path + ".tmp");
    }
}
