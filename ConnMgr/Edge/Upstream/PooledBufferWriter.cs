using System.Buffers;

namespace ConnMgr.Edge.Upstream;

/// <summary>
/// A reusable <see cref="IBufferWriter{T}"/> over arrays from <see cref="ArrayPool{T}.Shared"/>,
/// for a link's read loop (one per link, never shared between threads).
/// </summary>
internal sealed class PooledBufferWriter : IBufferWriter<byte>
{
    // Above this, the array goes back to the pool after use instead of staying with the link:
    // most route bodies are a few hundred bytes, a rare 1-MiB one should not stay pinned.
    private const int RetainBytes = 64 * 1024;

    private byte[] _buffer = [];
    private int _written;

    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _written);

    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _written);

    public void Advance(int count) => _written += count;

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
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
        }
    }

    private void Ensure(int sizeHint)
    {
        var needed = _written + Math.Max(sizeHint, 1);
        if (needed <= _buffer.Length)
        {
            return;
        }
        var next = ArrayPool<byte>.Shared.Rent(Math.Max(needed, Math.Max(_buffer.Length * 2, 512)));
        _buffer.AsSpan(0, _written).CopyTo(next);
        if (_buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
        }
        _buffer = next;
    }
}
