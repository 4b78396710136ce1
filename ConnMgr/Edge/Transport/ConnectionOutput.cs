using System.Buffers;
using System.IO.Pipelines;

namespace ConnMgr.Edge.Transport;

/// <summary>
/// <see cref="ClientConnection.Output"/>: the stream layer's own writer. Bytes are staged in a
/// pooled array private to the single owner, so serializing into it needs no lock; a flush queues
/// them in one piece, in order with what <see cref="ClientConnection.TryWrite(ReadOnlySpan{byte})"/>
/// queues from other threads, and hands the array back to the pool (an idle connection keeps none).
/// </summary>
internal sealed class ConnectionOutput(ClientConnection connection) : PipeWriter
{
    /// <summary>First staging array: stream features, SASL steps and stream errors fit in 4 KiB.</summary>
    private const int InitialSize = 4096;

    private byte[]? _buffer;
    private int _written;
    private volatile bool _flushCanceled;

    public override bool CanGetUnflushedBytes => true;

    public override long UnflushedBytes => _written;

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

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) =>
        connection.FlushOutputAsync(cancellationToken);

    public override void CancelPendingFlush()
    {
        _flushCanceled = true;
        connection.ReleaseDrainWaiter();
    }

    /// <summary>Ends the output: staged bytes are queued, and once sent the socket is half-closed (FIN).</summary>
    public override void Complete(Exception? exception = null) => connection.CompleteOutput();

    /// <summary>Queues the staged bytes; the caller holds the connection's write lock.</summary>
    internal bool CommitLocked(ref bool overflow)
    {
        if (_written == 0)
        {
            return connection.TryQueueLocked([], ref overflow);
        }
        var queued = connection.TryQueueLocked(_buffer.AsSpan(0, _written), ref overflow);
        ReleaseBuffer();
        return queued;
    }

    internal bool TakeFlushCanceled()
    {
        var canceled = _flushCanceled;
        _flushCanceled = false;
        return canceled;
    }

    internal void ReleaseBuffer()
    {
        if (_buffer is { } buffer)
        {
            _buffer = null;
            _written = 0;
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void EnsureCapacity(int sizeHint)
    {
        var needed = _written + Math.Max(sizeHint, 1);
        if (_buffer is not null && needed <= _buffer.Length)
        {
            return;
        }
        var grown = ArrayPool<byte>.Shared.Rent(Math.Max(needed, Math.Max(InitialSize, (_buffer?.Length ?? 0) * 2)));
        if (_buffer is not null)
        {
            _buffer.AsSpan(0, _written).CopyTo(grown);
            ArrayPool<byte>.Shared.Return(_buffer);
        }
        _buffer = grown;
    }
}
