using System.Buffers;

namespace ConnMgr.Buffers;

/// <summary>
/// An <see cref="IBufferWriter{T}"/> over arrays rented from <see cref="ArrayPool{T}.Shared"/>.
/// Two uses: a stanza rendered once and then written to several routes or handed to the store
/// (create, write, dispose), and a link read loop's scratch buffer (one per link, reused with
/// <see cref="Reset"/>, never shared between threads). <see cref="Rent"/> serves the first use
/// on the relay path: it reuses one instance per thread with its array, so rendering a stanza
/// allocates nothing; disposing hands it back.
/// </summary>
internal sealed class PooledBufferWriter : IBufferWriter<byte>, IDisposable
{
    // Reset returns a larger array to the pool instead of keeping it: most stanzas and route
    // bodies are a few hundred bytes; a rare 1-MiB one should not stay pinned to a link.
    private const int RetainBytes = 64 * 1024;
    private const int MinimumRent = 512;

    /// <summary>A rented writer keeps its array across uses up to this size; 16 KiB covers nearly every stanza.</summary>
    private const int MaxCachedBytes = 16 * 1024;

    [ThreadStatic]
    private static PooledBufferWriter? t_cached;

    private readonly bool _rented;
    private byte[] _buffer;
    private int _written;

    /// <param name="initialSize">Bytes to rent at once; 0 rents on first write.</param>
    public PooledBufferWriter(int initialSize = 0)
        => _buffer = initialSize > 0 ? ArrayPool<byte>.Shared.Rent(Math.Max(initialSize, MinimumRent)) : [];

    private PooledBufferWriter(int initialSize, bool rented)
        : this(initialSize)
        => _rented = rented;

    /// <summary>
    /// An empty writer with room for at least <paramref name="sizeHint"/> bytes, this thread's
    /// cached one when it has it. Use it in a <c>using</c> and never after the dispose.
    /// </summary>
    public static PooledBufferWriter Rent(int sizeHint = MinimumRent)
    {
        var writer = t_cached;
        if (writer is null)
        {
            return new PooledBufferWriter(sizeHint, rented: true);
        }
        t_cached = null;
        if (writer._buffer.Length < sizeHint)
        {
            writer.ReturnBuffer();
            writer._buffer = ArrayPool<byte>.Shared.Rent(Math.Max(sizeHint, MinimumRent));
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

    /// <summary>Forgets what was written; keeps a small array for the next use.</summary>
    public void Reset()
    {
        _written = 0;
        if (_buffer.Length > RetainBytes)
        {
            ReturnBuffer();
        }
    }

    public void Dispose()
    {
        _written = 0;
        if (_rented)
        {
            if (_buffer.Length > MaxCachedBytes)
            {
                ReturnBuffer();
            }
            // Possibly on another thread than the renter's, after an await: that thread keeps it.
            if (t_cached is null)
            {
                t_cached = this;
                return;
            }
        }
        ReturnBuffer();
    }

    private void ReturnBuffer()
    {
        var buffer = _buffer;
        _buffer = [];
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void Ensure(int sizeHint)
    {
        var needed = _written + Math.Max(sizeHint, 1);
        if (needed <= _buffer.Length)
        {
            return;
        }
        var larger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, Math.Max(_buffer.Length * 2, MinimumRent)));
        _buffer.AsSpan(0, _written).CopyTo(larger);
        if (_buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
        }
        _buffer = larger;
    }
}
