using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;

namespace Scheduler.Rpc.Internal;

/// <summary>
/// The memory pool Kestrel's transport and HTTP/2 layer use for their pipes: pinned 4 KiB blocks,
/// like Kestrel's own pool, but keeping at most <c>maxRetained</c> returned blocks. Kestrel's pool
/// keeps every block a burst ever needed (thousands after 10,000 streams open at once: megabytes
/// that a server holding long-lived, mostly idle streams never uses again); blocks returned
/// beyond the bound are left to the garbage collector instead.
/// </summary>
internal sealed class BoundedBlockPool(int maxRetained) : MemoryPool<byte>
{
    public const int BlockSize = 4096;

    private readonly ConcurrentQueue<Block> _free = new();
    private int _freeCount;
    private bool _disposed;

    public override int MaxBufferSize => BlockSize;

    /// <summary>Returned blocks kept for reuse.</summary>
    public int Retained => Volatile.Read(ref _freeCount);

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        if (minBufferSize > BlockSize)
        {
            throw new ArgumentOutOfRangeException(nameof(minBufferSize), minBufferSize, $"This pool hands out blocks of at most {BlockSize} bytes.");
        }
        if (_free.TryDequeue(out var block))
        {
            Interlocked.Decrement(ref _freeCount);
            return block;
        }
        return new Block(this);
    }

    private void Return(Block block)
    {
        if (Volatile.Read(ref _disposed))
        {
            return;
        }
        if (Interlocked.Increment(ref _freeCount) > maxRetained)
        {
            Interlocked.Decrement(ref _freeCount);
            return;
        }
        _free.Enqueue(block);
    }

    protected override void Dispose(bool disposing)
    {
        Volatile.Write(ref _disposed, true);
        _free.Clear();
    }

    private sealed class Block(BoundedBlockPool pool) : IMemoryOwner<byte>
    {
        private readonly byte[] _array = GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true);

        public Memory<byte> Memory => _array;

        public void Dispose() => pool.Return(this);
    }
}

/// <summary>Hands Kestrel <see cref="BoundedBlockPool"/>s (one per transport or connection
/// layer that asks).</summary>
internal sealed class BoundedBlockPoolFactory(int maxRetained) : IMemoryPoolFactory<byte>
{
    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => new BoundedBlockPool(maxRetained);
}
