using System.Buffers;

namespace ConnMgr.Core.Stanzas;

/// <summary>
/// An <see cref="IBufferWriter{T}"/> over arrays rented from the shared pool, for a stanza that is
/// rendered once and then written to several routes (a broadcast) or handed to the store.
/// <see cref="Rent"/> reuses one instance per thread with its array, so rendering a stanza on
/// the relay path allocates nothing; disposing hands it back.
/// </summary>
internal sealed class PooledBufferWriter : IBufferWriter<byte>, IDisposable
{
    private const int MinimumSize = 1024;

    /// <summary>A larger array goes back to the pool instead of staying with the thread. 16 KiB covers nearly every stanza.</summary>
    private const int MaxCachedSize = 16 * 1024;

    [ThreadStatic]
    private static PooledBufferWriter? t_cached;

    private byte[] _buffer;
    private int _written;

    private PooledBufferWriter(int initialSize)
        => _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(initialSize, MinimumSize));

    /// <summary>An empty writer with room for at least <paramref name="sizeHint"/> bytes. Use it in a <c>using</c> and never after.</summary>
    public static PooledBufferWriter Rent(int sizeHint = MinimumSize)
    {
        var writer = t_cached;
        if (writer is null)
        {
            return new PooledBufferWriter(sizeHint);
        }
        t_cached = null;
        if (writer._buffer.Length < sizeHint)
        {
            ArrayPool<byte>.Shared.Return(writer._buffer);
            writer._buffer = ArrayPool<byte>.Shared.Rent(sizeHint);
        }
        return writer;
    }

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _written);

    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _written);

    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (_written + count > _buffer.Length)
        {
            throw new InvalidOperationException("Advanced past the end of the buffer.");
        }
        _written += count;
    }

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Ensure(sizeHint);
        return _buffer.AsSpan(_written);
    }

    public void Dispose()
    {
        _written = 0;
        if (_buffer.Length > MaxCachedSize)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = ArrayPool<byte>.Shared.Rent(MinimumSize);
        }
        // Possibly on another thread than the renter's, after an await: that thread caches it.
        if (t_cached is null)
        {
            t_cached = this;
            return;
        }
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }

    private void Ensure(int sizeHint)
    {
        var needed = _written + Math.Max(sizeHint, 1);
        if (needed <= _buffer.Length)
        {
            return;
        }
        var larger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, _buffer.Length * 2));
        _buffer.AsSpan(0, _written).CopyTo(larger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = larger;
    }
}
