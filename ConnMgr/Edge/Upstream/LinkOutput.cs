using System.Buffers;
using System.IO.Pipelines;

namespace ConnMgr.Edge.Upstream;

/// <summary>
/// The outbound side of one link. Many client loops and the link's own read loop append
/// whole elements under a short lock; one sender loop writes whatever has accumulated to the
/// socket and flushes once per batch, not once per element. The pipe itself never blocks a
/// writer: the byte count is kept here, and only <see cref="UpstreamSession.RouteAsync"/> waits
/// (for <see cref="WaitForDrainAsync"/>) when the link is over its threshold, so a slow link
/// pushes back on the clients routing through it and never on the read loop. The backlog is
/// therefore bounded by the threshold plus one stanza per client writing at that moment, plus
/// the small control elements of the read loop; a link that cannot send at all is closed by
/// the pool's stall check.
/// </summary>
internal sealed class LinkOutput
{
    // 16 KiB segments: one full TLS record per write (RFC 8446 section 5.1), few syscalls per batch.
    // Pause threshold 0 disables the pipe's own flow control (PipeOptions docs); ours is _pauseBytes.
    private static readonly PipeOptions s_pipeOptions = new(
        readerScheduler: PipeScheduler.ThreadPool,
        writerScheduler: PipeScheduler.Inline,
        pauseWriterThreshold: 0,
        resumeWriterThreshold: 0,
        minimumSegmentSize: 16 * 1024,
        useSynchronizationContext: false);

    private readonly Lock _lock = new();
    private readonly Pipe _pipe = new(s_pipeOptions);
    private readonly int _pauseBytes;
    private readonly int _resumeBytes;
    private long _pendingBytes;
    private long _lastWriteTicks;
    private long _lastProgressTicks;
    private bool _completed;
    private TaskCompletionSource? _drained;

    public LinkOutput(int pauseBytes)
    {
        _pauseBytes = pauseBytes;
        _resumeBytes = pauseBytes / 2;
        _lastWriteTicks = _lastProgressTicks = Environment.TickCount64;
    }

    /// <summary>Bytes appended but not yet handed to the socket.</summary>
    public long PendingBytes => Volatile.Read(ref _pendingBytes);

    public bool IsOverThreshold => Volatile.Read(ref _pendingBytes) > _pauseBytes;

    /// <summary>No more writes are accepted: the link is closing or gone.</summary>
    public bool IsCompleted => Volatile.Read(ref _completed);

    /// <summary>When something was last appended (keepalive, spec 8.3).</summary>
    public long LastWriteTicks => Volatile.Read(ref _lastWriteTicks);

    /// <summary>Takes the lock for one element. Dispose the scope to commit it; nothing may await in between.</summary>
    public WriteScope Begin() => new(this, _lock.EnterScope());

    /// <summary>
    /// Waits until the backlog is back under half the threshold, or the output is closed (the
    /// caller then looks at its session's link again: it may have been moved, spec 8.1).
    /// </summary>
    public Task WaitForDrainAsync(CancellationToken ct)
    {
        lock (_lock)
        {
            if (_completed || _pendingBytes <= _pauseBytes)
            {
                return Task.CompletedTask;
            }
            _drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _drained.Task.WaitAsync(ct);
        }
    }

    /// <summary>True when output has been waiting for the socket for longer than the limit.</summary>
    public bool IsStalled(long nowTicks, long limitMs)
        => Volatile.Read(ref _pendingBytes) > 0 && nowTicks - Volatile.Read(ref _lastProgressTicks) > limitMs;

    /// <summary>
    /// Refuses further writes. What was appended before still goes out if the sender is
    /// running and the socket is alive (graceful close); waiters are released.
    /// </summary>
    public void Complete()
    {
        lock (_lock)
        {
            if (_completed)
            {
                return;
            }
            _completed = true;
            _pipe.Writer.Complete();
            ReleaseWaitersLocked();
        }
    }

    /// <summary>Writes batches to <paramref name="stream"/> until <see cref="Complete"/> and drained, or until the socket fails.</summary>
    public async Task RunSenderAsync(Stream stream, CancellationToken ct)
    {
        var reader = _pipe.Reader;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(ct).ConfigureAwait(false);
                var buffer = result.Buffer;
                // Read before AdvanceTo: the segments go back to the pool there.
                var length = buffer.Length;
                if (!buffer.IsEmpty)
                {
                    foreach (var segment in buffer)
                    {
                        await stream.WriteAsync(segment, ct).ConfigureAwait(false);
                    }
                    await stream.FlushAsync(ct).ConfigureAwait(false);
                }
                reader.AdvanceTo(buffer.End);
                OnSent(length);
                if (result.IsCompleted)
                {
                    return;
                }
            }
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
            Complete();
        }
    }

    private void OnSent(long bytes)
    {
        lock (_lock)
        {
            _pendingBytes -= bytes;
            _lastProgressTicks = Environment.TickCount64;
            if (_pendingBytes <= _resumeBytes)
            {
                ReleaseWaitersLocked();
            }
        }
    }

    private void CommitLocked()
    {
        var writer = _pipe.Writer;
        var bytes = writer.UnflushedBytes;
        if (bytes == 0)
        {
            return;
        }
        var now = Environment.TickCount64;
        if (_pendingBytes == 0)
        {
            // Stall time counts from when output started waiting, not from the last batch.
            _lastProgressTicks = now;
        }
        _pendingBytes += bytes;
        _lastWriteTicks = now;
        // Never pauses (threshold 0), so this completes synchronously: it only publishes the
        // bytes to the sender loop.
        _ = writer.FlushAsync();
    }

    private void ReleaseWaitersLocked()
    {
        _drained?.TrySetResult();
        _drained = null;
    }

    /// <summary>Exclusive access to the link's output for one element; a closed link discards the write.</summary>
    internal ref struct WriteScope
    {
        private readonly LinkOutput _output;
        private Lock.Scope _lockScope;

        public WriteScope(LinkOutput output, Lock.Scope lockScope)
        {
            _output = output;
            _lockScope = lockScope;
        }

        /// <summary>False once the link is closing: write nothing.</summary>
        public readonly bool IsOpen => _output is not null && !_output._completed;

        public readonly IBufferWriter<byte> Writer => _output._pipe.Writer;

        public readonly void Write(ReadOnlySpan<byte> bytes)
        {
            if (!_output._completed)
            {
                _output._pipe.Writer.Write(bytes);
            }
        }

        public readonly void Write(in ReadOnlySequence<byte> bytes)
        {
            if (_output._completed)
            {
                return;
            }
            foreach (var segment in bytes)
            {
                _output._pipe.Writer.Write(segment.Span);
            }
        }

        public void Dispose()
        {
            if (_output is null)
            {
                return;
            }
            if (!_output._completed)
            {
                _output.CommitLocked();
            }
            _lockScope.Dispose();
        }
    }
}
