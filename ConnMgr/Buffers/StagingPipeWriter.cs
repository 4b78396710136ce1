using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.IO.Pipelines;

namespace ConnMgr.Buffers;

/// <summary>
/// A connection's own writer for its single owner (the stream loop): bytes are staged in an array rented
/// from <see cref="ArrayPool{T}.Shared"/>, so serializing needs no lock. The subclass's flush queues
/// <see cref="Staged"/> under its connection's lock, in order with what other threads queue, then calls
/// <see cref="ReleaseBuffer"/>: an idle connection keeps no array.
/// </summary>
internal abstract class StagingPipeWriter(int initialSize) : PipeWriter
{
    private byte[]? _buffer;
    private int _written;

    public override bool CanGetUnflushedBytes => true;

    public override long UnflushedBytes => _written;

    /// <summary>What has been written since the last release.</summary>
    protected ReadOnlySpan<byte> Staged => _buffer.AsSpan(0, _written);

    public override void Advance(int bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bytes, (_buffer?.Length ?? 0) - _written);
        _written += bytes;
    }

    public override Memory<byte> GetMemory(int sizeHint = 0)
    {
        EnsureCapacity(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public override Span<byte> GetSpan(int sizeHint = 0)
    {
        EnsureCapacity(sizeHint);
        return _buffer.AsSpan(_written);
    }

    /// <summary>Drops what is staged and hands the array back to the pool.</summary>
    internal void ReleaseBuffer()
    {
        if (_buffer is { } buffer)
        {
            _buffer = null;
            _written = 0;
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    [MemberNotNull(nameof(_buffer))]
    private void EnsureCapacity(int sizeHint)
    {
        var needed = _written + Math.Max(sizeHint, 1);
        if (_buffer is not null && needed <= _buffer.Length)
        {
            return;
        }
        var grown = ArrayPool<byte>.Shared.Rent(Math.Max(needed, Math.Max(initialSize, (_buffer?.Length ?? 0) * 2)));
        if (_buffer is not null)
        {
            _buffer.AsSpan(0, _written).CopyTo(grown);
            ArrayPool<byte>.Shared.Return(_buffer);
        }
        _buffer = grown;
    }
}
