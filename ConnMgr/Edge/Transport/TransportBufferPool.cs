using System.Buffers;
using System.Collections.Concurrent;

namespace ConnMgr.Edge.Transport;

/// <summary>
/// The 4 KiB blocks behind every client pipe. Each block is its own <see cref="IMemoryOwner{T}"/>
/// and goes back to a free list, so renting allocates nothing once warm (MemoryPool.Shared
/// allocates an owner per rent). It counts what is rented: with zero-byte reads an idle
/// connection holds no block, and <see cref="RentedBlocks"/> shows that (tests, metrics).
/// </summary>
internal sealed class TransportBufferPool : MemoryPool<byte>
{
    /// <summary>One socket read and one pipe segment: a page, and a multiple of typical stanza sizes.</summary>
    public const int BlockSize = 4096;

    /// <summary>Free blocks kept for reuse: 4 MiB. Blocks returned beyond it are left to the GC.</summary>
    public const int DefaultMaxRetainedBlocks = 1024;

    private readonly ConcurrentQueue<Block> _free = new();
    private readonly int _maxRetained;
    private int _rented;
    private int _retained;

    public TransportBufferPool(int maxRetainedBlocks = DefaultMaxRetainedBlocks)
    {
        _maxRetained = maxRetainedBlocks;
    }

    /// <summary>Pipes rent larger buffers straight from ArrayPool, so every request here fits a block.</summary>
    public override int MaxBufferSize => BlockSize;

    /// <summary>Blocks currently in use by pipes.</summary>
    public int RentedBlocks => Volatile.Read(ref _rented);

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, BlockSize);
        Interlocked.Increment(ref _rented);
        if (_free.TryDequeue(out var block))
        {
            Interlocked.Decrement(ref _retained);
            return block;
        }
        return new Block(this);
    }

    protected override void Dispose(bool disposing)
    {
        _free.Clear();
    }

    private void Return(Block block)
    {
        Interlocked.Decrement(ref _rented);
        if (Interlocked.Increment(ref _retained) <= _maxRetained)
        {
            _free.Enqueue(block);
        }
        else
        {
            Interlocked.Decrement(ref _retained);
        }
    }

    private sealed class Block(TransportBufferPool pool) : IMemoryOwner<byte>
    {
        private readonly byte[] _array = GC.AllocateUninitializedArray<byte>(BlockSize);

        public Memory<byte> Memory => _array;

        public void Dispose() => pool.Return(this);
    }
}
