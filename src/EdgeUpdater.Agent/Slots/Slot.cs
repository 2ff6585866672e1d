using System.Security.Cryptography;
using EdgeUpdater.Agent.Interop.Linux;

namespace EdgeUpdater.Agent.Slots;

/// <summary>Not enough room for an update: reported, not retried until something changes.</summary>
internal sealed class InsufficientSpaceException : Exception
{
    public InsufficientSpaceException(string message)
        : base(message)
    {
    }

    public InsufficientSpaceException()
    {
    }

    public InsufficientSpaceException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>One A/B slot: an image file (app targets, tests) or a block device (system targets).</summary>
internal sealed class Slot
{
    public Slot(string name, string path)
    {
        Name = name;
        Path = path;
    }

    /// <summary><c>a</c> or <c>b</c>.</summary>
    public string Name { get; }

    public string Path { get; }

    public bool IsBlockDevice => File.Exists(Path) && (File.GetAttributes(Path) & FileAttributes.Device) != 0;

    /// <summary>Fails unless <paramref name="bytes"/> fit into the slot (and the reserve stays free on a file slot's file system).</summary>
    public void EnsureRoomFor(long bytes, long reserve)
    {
        if (IsBlockDevice)
        {
            using var handle = File.OpenHandle(Path, FileMode.Open, FileAccess.Read);
            var capacity = Libc.BlockDeviceSize(handle, Path);
            if (capacity < bytes)
            {
                throw new InsufficientSpaceException($"slot {Name} ({Path}) holds {capacity} bytes; the image needs {bytes}");
            }

            return;
        }

        var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path))!;
        Directory.CreateDirectory(directory);
        var existing = File.Exists(Path) ? new FileInfo(Path).Length : 0;
        var available = Libc.AvailableBytes(directory) + existing;
        if (available < bytes + reserve)
        {
            throw new InsufficientSpaceException($"slot {Name} ({Path}): {available} bytes available on its file system, the image needs {bytes} plus a reserve of {reserve}");
        }
    }

    /// <summary>SHA-256 (lowercase hex) of the first <paramref name="length"/> bytes.</summary>
    public async Task<string> HashAsync(long length, CancellationToken cancellationToken = default)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.SequentialScan);
        await using (stream.ConfigureAwait(false))
        {
            var buffer = new byte[1024 * 1024];
            var remaining = length;
            while (remaining > 0)
            {
                var read = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, remaining)), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    throw new EndOfStreamException($"slot {Name} ({Path}) ends {remaining} bytes short of {length}");
                }

                hash.AppendData(buffer, 0, read);
                remaining -= read;
            }
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>Length of the image in this slot: the file's size, or the SquashFS bytes_used rounded up to 4 KiB on a device.</summary>
    public long DetectImageLength()
    {
        if (!IsBlockDevice)
        {
            return new FileInfo(Path).Length;
        }

        using var stream = new FileStream(Path, FileMode.Open, FileAccess.Read);
        Span<byte> superblock = stackalloc byte[96];
        stream.ReadExactly(superblock);
        if (System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(superblock) != 0x73717368)
        {
            throw new InvalidDataException($"slot {Name} ({Path}) does not start with a SquashFS superblock");
        }

        var used = (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(superblock[40..]);
        return (used + 4095) / 4096 * 4096;
    }
}
