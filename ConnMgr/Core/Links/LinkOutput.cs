using System.Buffers;
using System.IO.Pipelines;

namespace ConnMgr.Core.Links;

/// <summary>
/// The outbound side of one link. Any thread (a session processor, the link's own read loop, the
/// heartbeat) writes whole elements into a pipe under a short lock, without waiting for the
/// socket; one send loop drains the pipe to the socket, so many small routes leave in one write.
/// </summary>
/// <remarks>
/// The pipe never pushes back (pause threshold 0): a writer must never wait for a slow edge,
/// because it may be another session's processor. Instead the bytes waiting are counted, and past
/// <see cref="CoreServerOptions.MaxLinkOutputBytes"/> the link is dropped (its CM's sessions move
/// to its other links). <see cref="IsStalled"/> catches an edge that stops reading altogether.
/// </remarks>
internal sealed class LinkOutput
{
    private static readonly PipeOptions s_pipeOptions = new(
        pool: MemoryPool<byte>.Shared,
        readerScheduler: PipeScheduler.ThreadPool,
        writerScheduler: PipeScheduler.Inline,
        pauseWriterThreshold: 0,
        resumeWriterThreshold: 0,
        minimumSegmentSize: 4096,
        useSynchronizationContext: false);

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_discard;

    private readonly Pipe _pipe = new(s_pipeOptions);
    private readonly Lock _lock = new();
    private readonly long _maxQueuedBytes;
    private readonly Action<LinkOutput, string> _onFault;
    private long _queuedBytes;
    private long _lastProgress = Environment.TickCount64;
    private bool _closed;
    private bool _scopeCompleted;

    /// <param name="onFault">Called (outside the lock) when the output overflows or a write was left unfinished.</param>
    public LinkOutput(long maxQueuedBytes, Action<LinkOutput, string> onFault)
    {
        _maxQueuedBytes = maxQueuedBytes;
        _onFault = onFault;
    }

    /// <summary>Bytes written and not yet accepted by the socket.</summary>
    public long QueuedBytes => Interlocked.Read(ref _queuedBytes);

    /// <summary>
    /// Takes the write lock. Write one or more complete elements to <see cref="Scope.Output"/>,
    /// call <see cref="Scope.Complete"/>, then dispose. Never await while holding it.
    /// </summary>
    public Scope Begin()
    {
        _lock.Enter();
        return new Scope(this);
    }

    /// <summary>True when output has waited longer than <paramref name="timeout"/> without the socket taking any.</summary>
    public bool IsStalled(TimeSpan timeout)
        => Interlocked.Read(ref _queuedBytes) > 0
            && Environment.TickCount64 - Interlocked.Read(ref _lastProgress) > (long)timeout.TotalMilliseconds;

    /// <summary>
    /// Writes what is queued to <paramref name="stream"/> until <see cref="Close"/> and the queue is
    /// empty, or the stream fails (the exception propagates to the caller, which closes the link).
    /// </summary>
    public async Task SendAsync(Stream stream, CancellationToken cancellationToken)
    {
        var reader = _pipe.Reader;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(cancellationToken);
                var buffer = result.Buffer;
                foreach (var segment in buffer)
                {
                    await stream.WriteAsync(segment, cancellationToken);
                }
                if (!buffer.IsEmpty)
                {
                    await stream.FlushAsync(cancellationToken);
                    Interlocked.Add(ref _queuedBytes, -buffer.Length);
                    Interlocked.Exchange(ref _lastProgress, Environment.TickCount64);
                }
                reader.AdvanceTo(buffer.End);
                if (result.IsCompleted)
                {
                    return;
                }
            }
        }
        finally
        {
            await reader.CompleteAsync();
        }
    }

    /// <summary>Stops accepting writes; what was written before still goes out. Idempotent.</summary>
    public void Close()
    {
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }
            _closed = true;
            _pipe.Writer.Complete();
        }
    }

    private void End(bool completed, IBufferWriter<byte> output)
    {
        string? fault = null;
        try
        {
            if (output is ArrayBufferWriter<byte> discard)
            {
                discard.ResetWrittenCount();
                return;
            }
            var writer = _pipe.Writer;
            var written = writer.UnflushedBytes;
            if (!completed)
            {
                // A half-written element would corrupt the stream for every session on the link.
                fault = "an element was left unfinished";
                Close();
                return;
            }
            if (written == 0)
            {
                return;
            }
            // Never waits: the pipe has no pause threshold.
            var flush = writer.FlushAsync();
            if (!flush.IsCompleted)
            {
                throw new InvalidOperationException("A link's output pipe applied back-pressure; it is configured not to.");
            }
            var queued = Interlocked.Add(ref _queuedBytes, written);
            if (queued == written)
            {
                // The socket had caught up; the stall clock starts now.
                Interlocked.Exchange(ref _lastProgress, Environment.TickCount64);
            }
            if (queued > _maxQueuedBytes)
            {
                fault = $"more than {_maxQueuedBytes} bytes waiting to be written (MaxLinkOutputBytes)";
                Close();
            }
        }
        finally
        {
            _lock.Exit();
            if (fault is not null)
            {
                _onFault(this, fault);
            }
        }
    }

    /// <summary>
    /// The write lock and where to write while holding it. A <c>readonly</c> struct, because a
    /// <c>using</c> variable is read-only and a mutating call on it would act on a copy: the state
    /// lives in the owner, which only the lock holder touches.
    /// </summary>
    public readonly ref struct Scope
    {
        private readonly LinkOutput _owner;

        internal Scope(LinkOutput owner)
        {
            _owner = owner;
            owner._scopeCompleted = false;
            Output = owner._closed ? (t_discard ??= new ArrayBufferWriter<byte>()) : owner._pipe.Writer;
        }

        /// <summary>Where to write; writes to a closed link go nowhere.</summary>
        public IBufferWriter<byte> Output { get; }

        /// <summary>Marks the elements as complete; without it, disposing drops the link.</summary>
        public void Complete() => _owner._scopeCompleted = true;

        public void Dispose() => _owner.End(_owner._scopeCompleted, Output);
    }
}
