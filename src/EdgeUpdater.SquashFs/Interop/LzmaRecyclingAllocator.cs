using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace EdgeUpdater.SquashFs.Interop;

/// <summary>
/// An <c>lzma_allocator</c> that keeps the blocks liblzma frees and hands them back when the next call
/// asks for the same sizes. Each buffer call of liblzma sets up and frees its whole coder: a metadata
/// codec's encoder and decoder take about 1.6 MiB, most of it the match finder's hash table, which
/// liblzma zeroes on every call. With malloc, a thread's arena returns that memory to the kernel after
/// each call, and the next call pays a page fault and a kernel zeroing per page again: on a small
/// update's apply on xz (64 metadata blocks) that was 13,500 page faults and 30 to 40 ms of CPU.
/// Not thread-safe: one per codec, like the codec.
/// </summary>
internal sealed unsafe class LzmaRecyclingAllocator : IDisposable
{
    /// <summary>Blocks kept at most; liblzma's buffer encoder makes about ten allocations per call.</summary>
    private const int SlotCount = 32;

    /// <summary>
    /// Most bytes held between calls: a codec for 1 MiB blocks (the largest SquashFS allows) holds about
    /// 14 MiB. A stream that asks for more (a hostile header may ask for liblzma's 64 MiB decode
    /// limit) gets its memory freed as usual.
    /// </summary>
    private const ulong MaxHeldBytes = 24 << 20;

    /// <summary>Bytes in front of each block that hold its size; 16 keeps malloc's alignment.</summary>
    private const int HeaderSize = 16;

    private State* _state;

    public LzmaRecyclingAllocator()
    {
        _state = (State*)NativeMemory.AllocZeroed((nuint)sizeof(State));
        _state->Allocator.Alloc = &Allocate;
        _state->Allocator.Free = &Release;
        _state->Allocator.Opaque = _state;
    }

    /// <summary>The <c>const lzma_allocator *</c> to pass to liblzma.</summary>
    public void* Native => &_state->Allocator;

    /// <summary>Blocks held for reuse, their total size, and how many blocks were taken from malloc so far (for tests).</summary>
    public (int Blocks, long Bytes, long Allocated) Statistics
    {
        get
        {
            var blocks = 0;
            for (var i = 0; i < SlotCount; i++)
            {
                blocks += _state->Blocks[i] != 0 ? 1 : 0;
            }

            return (blocks, (long)_state->HeldBytes, (long)_state->Allocated);
        }
    }

    public void Dispose()
    {
        if (_state == null)
        {
            return;
        }

        for (var i = 0; i < SlotCount; i++)
        {
            NativeMemory.Free((void*)_state->Blocks[i]);
        }

        NativeMemory.Free(_state);
        _state = null;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void* Allocate(void* opaque, nuint count, nuint size)
    {
        var state = (State*)opaque;
        if (size != 0 && count > (nuint.MaxValue - HeaderSize) / size)
        {
            return null;
        }

        var length = count * size;
        for (var i = 0; i < SlotCount; i++)
        {
            if (state->Blocks[i] != 0 && state->Sizes[i] == length)
            {
                var reused = (byte*)state->Blocks[i];
                state->Blocks[i] = 0;
                state->HeldBytes -= state->Sizes[i];
                return reused + HeaderSize;
            }
        }

        byte* block;
        try
        {
            block = (byte*)NativeMemory.Alloc(length + HeaderSize);
        }
        catch (OutOfMemoryException)
        {
            // liblzma reports LZMA_MEM_ERROR; an exception must not cross back into native code.
            return null;
        }

        *(nuint*)block = length;
        state->Allocated++;
        return block + HeaderSize;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void Release(void* opaque, void* pointer)
    {
        if (pointer == null)
        {
            return;
        }

        var state = (State*)opaque;
        var block = (byte*)pointer - HeaderSize;
        var length = (ulong)*(nuint*)block;
        for (var i = 0; length <= MaxHeldBytes - state->HeldBytes && i < SlotCount; i++)
        {
            if (state->Blocks[i] == 0)
            {
                state->Blocks[i] = (ulong)block;
                state->Sizes[i] = length;
                state->HeldBytes += length;
                return;
            }
        }

        NativeMemory.Free(block);
    }

    /// <summary>liblzma's <c>lzma_allocator</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct NativeAllocator
    {
        public delegate* unmanaged[Cdecl]<void*, nuint, nuint, void*> Alloc;
        public delegate* unmanaged[Cdecl]<void*, void*, void> Free;
        public void* Opaque;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct State
    {
        public NativeAllocator Allocator;

        /// <summary>Held blocks (their header's address), 0 for an empty slot.</summary>
        public fixed ulong Blocks[SlotCount];
        public fixed ulong Sizes[SlotCount];
        public ulong HeldBytes;
        public ulong Allocated;
    }
}
