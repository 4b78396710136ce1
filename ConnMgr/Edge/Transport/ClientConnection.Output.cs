using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace ConnMgr.Edge.Transport;

internal sealed partial class ClientConnection
{
    private bool _outputClosed;     // under _writeLock: nothing more may be queued
    private bool _outputCompleted;  // under _writeLock: the output pipe's writer is completed
    private long _bytesQueued;      // under _writeLock: total ever queued (the STARTTLS boundary is counted in it)
    private long _bytesSent;        // send loop only
    private long _pendingOutput;    // queued minus sent
    private TaskCompletionSource? _drainWaiter;

    /// <summary>
    /// Queues bytes for the client from any thread, without waiting: the delivery path of the
    /// upstream link. The bytes are copied, so the caller may reuse its buffer at once. Returns
    /// false when nothing was queued: the connection is closing, or these bytes would take the
    /// pending output over <see cref="TransportSettings.MaxPendingOutputBytes"/>, in which case
    /// the client has just been cut with <see cref="CloseReason.OutputOverflow"/>. A stanza is
    /// queued whole or not at all, and calls from one thread keep their order.
    /// </summary>
    public bool TryWrite(ReadOnlySpan<byte> data)
    {
        bool queued;
        var overflow = false;
        lock (_writeLock)
        {
            queued = TryReserveLocked(data.Length, ref overflow);
            if (queued)
            {
                CopyLocked(data);
                queued = PublishLocked(data.Length);
            }
        }
        if (overflow)
        {
            OnOutputOverflow();
        }
        return queued;
    }

    /// <summary><see cref="TryWrite(ReadOnlySpan{byte})"/> for bytes sliced out of another pipe, e.g. a relayed stanza.</summary>
    public bool TryWrite(in ReadOnlySequence<byte> data)
    {
        if (data.IsSingleSegment)
        {
            return TryWrite(data.FirstSpan);
        }

        bool queued;
        var overflow = false;
        lock (_writeLock)
        {
            queued = TryReserveLocked(data.Length, ref overflow);
            if (queued)
            {
                foreach (var segment in data)
                {
                    CopyLocked(segment.Span);
                }
                queued = PublishLocked(data.Length);
            }
        }
        if (overflow)
        {
            OnOutputOverflow();
        }
        return queued;
    }

    /// <summary>Flush of <see cref="Output"/>: queue the staged bytes, then wait while the client is behind.</summary>
    internal ValueTask<FlushResult> FlushOutputAsync(CancellationToken cancellationToken)
    {
        bool queued;
        var overflow = false;
        lock (_writeLock)
        {
            queued = _outputWriter.CommitLocked(ref overflow);
        }
        if (overflow)
        {
            OnOutputOverflow();
        }
        if (!queued)
        {
            return new ValueTask<FlushResult>(new FlushResult(isCanceled: false, isCompleted: true));
        }
        if (Volatile.Read(ref _pendingOutput) <= _transport.Settings.OutputPauseThresholdBytes)
        {
            return default;
        }
        return WaitForDrainAsync(cancellationToken);
    }

    /// <summary>Wakes a flush of <see cref="Output"/> waiting for the client (<see cref="PipeWriter.CancelPendingFlush"/>).</summary>
    internal void ReleaseDrainWaiter() => Interlocked.Exchange(ref _drainWaiter, null)?.TrySetResult();

    /// <summary>No more output: staged bytes are queued, and the send loop ends once the queue is sent.</summary>
    internal void CompleteOutput()
    {
        var overflow = false;
        lock (_writeLock)
        {
            _outputWriter.CommitLocked(ref overflow);
            _outputClosed = true;
            if (!_outputCompleted)
            {
                _outputCompleted = true;
                _output.Writer.Complete();
            }
        }
        if (overflow)
        {
            OnOutputOverflow();
        }
    }

    /// <summary>Queues <paramref name="data"/>; the caller holds the write lock. Used by <see cref="ConnectionOutput"/>.</summary>
    internal bool TryQueueLocked(ReadOnlySpan<byte> data, ref bool overflow)
    {
        if (!TryReserveLocked(data.Length, ref overflow))
        {
            return false;
        }
        CopyLocked(data);
        return PublishLocked(data.Length);
    }

    private bool TryReserveLocked(long length, ref bool overflow)
    {
        if (_outputClosed)
        {
            return false;
        }
        if (Volatile.Read(ref _pendingOutput) + length > _transport.Settings.MaxPendingOutputBytes)
        {
            _outputClosed = true;
            overflow = true;
            return false;
        }
        return true;
    }

    private void CopyLocked(ReadOnlySpan<byte> data)
    {
        var writer = _output.Writer;
        while (!data.IsEmpty)
        {
            var span = writer.GetSpan();
            var count = Math.Min(span.Length, data.Length);
            data[..count].CopyTo(span);
            writer.Advance(count);
            data = data[count..];
        }
    }

    private bool PublishLocked(long length)
    {
        if (length == 0)
        {
            return true;
        }
        // Counted before the flush makes the bytes visible, so the send loop never sees more
        // bytes than are counted (the count cannot go negative).
        Interlocked.Add(ref _pendingOutput, length);
        _bytesQueued += length;
        // The output pipe never pauses its writer (PauseWriterThreshold 0; the cap above is the
        // bound), so this flush completes at once: it only wakes the send loop.
        var flush = _output.Writer.FlushAsync();
        Debug.Assert(flush.IsCompleted, "the output pipe must never pause its writer");
        if (flush.Result.IsCompleted)
        {
            _outputClosed = true;
            return false;
        }
        return true;
    }

    private void OnOutputOverflow()
    {
        TransportLog.OutputOverflow(_transport.Logger, Id, RemoteEndPoint, _transport.Settings.MaxPendingOutputBytes);
        Abort(CloseReason.OutputOverflow);
    }

    private async ValueTask<FlushResult> WaitForDrainAsync(CancellationToken cancellationToken)
    {
        var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Interlocked.Exchange(ref _drainWaiter, waiter)?.TrySetResult();
        // Re-check after publishing: the send loop may have drained in between without seeing it.
        if (Volatile.Read(ref _pendingOutput) <= _transport.Settings.OutputPauseThresholdBytes / 2 || _closed)
        {
            ReleaseDrainWaiter();
        }
        await waiter.Task.WaitAsync(cancellationToken);
        if (_outputWriter.TakeFlushCanceled())
        {
            return new FlushResult(isCanceled: true, isCompleted: false);
        }
        return new FlushResult(isCanceled: false, isCompleted: _closed);
    }

    private async Task SendLoopAsync()
    {
        var reader = _output.Reader;
        try
        {
            // The loop waits here for most of a connection's life, so its state machine keeps little
            // more than the reader; what a burst needs lives in SendBurstAsync's, which is pooled and
            // held only while a send waits for the kernel buffer.
            var step = SendStep.Continue;
            while (step == SendStep.Continue)
            {
                var result = await reader.ReadAsync();
                step = await SendBurstAsync(reader, result);
            }
            if (step == SendStep.Stop)
            {
                return;
            }

            // Everything queued is on its way: close_notify for TLS, then FIN.
            if (_tls is { } closingTls)
            {
                await closingTls.ShutdownAsync();
            }
            _socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e)
        {
            OnIoFailure(e);
        }
        finally
        {
            lock (_writeLock)
            {
                _outputClosed = true;
            }
            reader.Complete();
            ReleaseDrainWaiter();
        }
    }

    /// <summary>What the send loop does after a burst.</summary>
    private enum SendStep : byte
    {
        Continue,

        /// <summary>The queue is complete and on its way: close_notify for TLS, then FIN.</summary>
        Drained,

        /// <summary>The STARTTLS hand-over failed and the connection is being cut: nothing more to send.</summary>
        Stop,
    }

    /// <summary>Sends what one read of the output queue returned.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<SendStep> SendBurstAsync(PipeReader reader, ReadResult result)
    {
        var buffer = result.Buffer;

        // During STARTTLS only the bytes up to <proceed/> go out in clear; the rest waits
        // for the handshake.
        var upgrade = _tls is null ? _upgrade : null;
        var boundary = upgrade is null ? -1 : Volatile.Read(ref upgrade.PlaintextBoundary);
        var toSend = buffer;
        if (boundary >= 0 && boundary - _bytesSent < buffer.Length)
        {
            toSend = buffer.Slice(0, boundary - _bytesSent);
        }

        if (!toSend.IsEmpty)
        {
            var tls = _tls;
            if (tls is null)
            {
                await SendPlainAsync(toSend);
            }
            else
            {
                foreach (var segment in toSend)
                {
                    await tls.WriteAsync(segment);
                }
            }

            Volatile.Write(ref _bytesSent, _bytesSent + toSend.Length);
            var pending = Interlocked.Add(ref _pendingOutput, -toSend.Length);
            if (pending <= _transport.Settings.OutputPauseThresholdBytes / 2 && Volatile.Read(ref _drainWaiter) is not null)
            {
                ReleaseDrainWaiter();
            }
        }
        reader.AdvanceTo(toSend.End);

        if (upgrade is not null && boundary >= 0 && _bytesSent == boundary)
        {
            upgrade.PlaintextSent.TrySetResult(true);
            return await upgrade.Ready.Task ? SendStep.Continue : SendStep.Stop;
        }
        return result.IsCompleted && toSend.Length == buffer.Length ? SendStep.Drained : SendStep.Continue;
    }

    /// <summary>
    /// One burst of clear-text output, through a sender rented from the transport's pool for the
    /// burst only: an idle connection holds no send state (see <see cref="SocketSenderPool"/>).
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendPlainAsync(ReadOnlySequence<byte> data)
    {
        var sender = _transport.SocketSenders.Rent();
        try
        {
            foreach (var segment in data)
            {
                var remaining = segment;
                while (!remaining.IsEmpty)
                {
                    remaining = remaining[await sender.SendAsync(_socket, remaining)..];
                }
            }
        }
        finally
        {
            // Every send on it has completed: the awaits above returned or threw.
            _transport.SocketSenders.Return(sender);
        }
    }
}
