using System.IO.Pipelines;
using ConnMgr.Buffers;

namespace ConnMgr.Edge.Transport;

/// <summary>
/// <see cref="ClientConnection.Output"/>: the stream layer's own writer. Bytes are staged in a
/// pooled array private to the single owner, so serializing into it needs no lock; a flush queues
/// them in one piece, in order with what <see cref="ClientConnection.TryWrite(ReadOnlySpan{byte})"/>
/// queues from other threads, and hands the array back to the pool (an idle connection keeps none).
/// </summary>
internal sealed class ConnectionOutput(ClientConnection connection) : StagingPipeWriter(InitialSize)
{
    /// <summary>First staging array: stream features, SASL steps and stream errors fit in 4 KiB.</summary>
    private const int InitialSize = 4096;

    private volatile bool _flushCanceled;

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
        var queued = connection.TryQueueLocked(Staged, ref overflow);
        ReleaseBuffer();
        return queued;
    }

    internal bool TakeFlushCanceled()
    {
        var canceled = _flushCanceled;
        _flushCanceled = false;
        return canceled;
    }
}
