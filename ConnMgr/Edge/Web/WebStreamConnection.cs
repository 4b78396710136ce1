using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Security.Authentication;
using ConnMgr.Buffers;
using ConnMgr.Edge.Streams;
using ConnMgr.Edge.Transport;
using MetricsTransport = ConnMgr.Diagnostics.ClientTransport;

namespace ConnMgr.Edge.Web;

/// <summary>
/// A web session (one WebSocket, or one BOSH session over many requests) as the
/// <see cref="ClientStream"/> sees it: the same two pipes as a TCP connection. The web transport
/// writes the client's stream into <see cref="InputWriter"/> (its framing already turned into
/// stream header, elements and stream end) and reads the stream's bytes from
/// <see cref="OutputReader"/>, one top-level element at a time (<see cref="WebOutputFramer"/>).
/// </summary>
/// <remarks>
/// <para>Input is bounded like a TCP client's: the writer pauses at <c>Edge:MaxStanzaBytes</c>
/// + 64 KiB unread (above the stanza limit, or a maximal stanza could never complete).</para>
/// <para>Output: <see cref="Output"/> stages the receive loop's writes and queues them on flush;
/// <see cref="TryWrite"/> queues from any thread; both under one lock, so they keep their order.
/// Queued bytes are counted until the transport has sent them; a write that would take them
/// over <c>Edge:MaxPendingOutputBytes</c> is refused and the session aborted
/// (<see cref="CloseReason.OutputOverflow"/>): a browser tab that stops reading, or a BOSH client
/// that stops polling, holds at most that much.</para>
/// </remarks>
internal sealed class WebStreamConnection : IClientStreamConnection
{
    private static long s_nextId = 1L << 40; // apart from the TCP transport's numbers in logs

    private readonly Pipe _input;
    private readonly Pipe _output;
    private readonly StagedOutput _staged;
    private readonly long _maxPendingOutput;
    private readonly Lock _lock = new();
    private readonly Action<CloseReason> _abort;

    private bool _outputClosed;  // under _lock
    private long _pendingOutput;
    private long _bytesReceived;
    private long _bytesSent;
    private long _lastReceiveTimestamp;
    private long _deadline;
    private CloseReason _deadlineReason;
    private volatile CloseReason _closeReason;

    /// <param name="abort">Cuts the transport under the session (the WebSocket, the BOSH session) from any thread.</param>
    public WebStreamConnection(WebSettings settings, IPEndPoint remote, bool isSecure, MetricsTransport transport, Action<CloseReason> abort)
    {
        Id = Interlocked.Increment(ref s_nextId);
        RemoteEndPoint = remote;
        IsSecure = isSecure;
        MetricsTransport = transport;
        _abort = abort;
        _maxPendingOutput = settings.MaxPendingOutputBytes;
        var inputPause = settings.MaxStanzaBytes + (64 * 1024);
        _input = new Pipe(new PipeOptions(
            readerScheduler: PipeScheduler.ThreadPool, writerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: inputPause, resumeWriterThreshold: inputPause / 2, useSynchronizationContext: false));
        // Never pauses its writer: the pending-output cap is the bound, and TryWrite must not wait.
        _output = new Pipe(new PipeOptions(
            readerScheduler: PipeScheduler.ThreadPool, writerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: 0, resumeWriterThreshold: 0, useSynchronizationContext: false));
        _staged = new StagedOutput(this);
        _lastReceiveTimestamp = Stopwatch.GetTimestamp();
    }

    public long Id { get; }

    public IPEndPoint RemoteEndPoint { get; }

    public bool IsSecure { get; }

    public bool CanStartTls => false;

    public SslProtocols TlsProtocol => SslProtocols.None;

    public MetricsTransport MetricsTransport { get; }

    public PipeReader Input => _input.Reader;

    public PipeWriter Output => _staged;

    /// <summary>The web transport's side of <see cref="Input"/>.</summary>
    public PipeWriter InputWriter => _input.Writer;

    /// <summary>The web transport's side of the output queue: the stream's bytes, as written.</summary>
    public PipeReader OutputReader => _output.Reader;

    public long PendingOutputBytes => Volatile.Read(ref _pendingOutput);

    public long BytesReceived => Volatile.Read(ref _bytesReceived);

    public long BytesSent => Volatile.Read(ref _bytesSent);

    public long LastReceiveTimestamp => Volatile.Read(ref _lastReceiveTimestamp);

    public IConnectionHeartbeatListener? HeartbeatListener { get; set; }

    public CloseReason CloseReason => _closeReason;

    /// <summary>The stream running on this connection, ticked by the web transport's heartbeat while it listens.</summary>
    public ClientStream? Stream { get; set; }

    public bool TrySetCloseReason(CloseReason reason)
    {
        lock (_lock)
        {
            if (_closeReason != CloseReason.None)
            {
                return false;
            }
            _closeReason = reason;
            return true;
        }
    }

    public void SetDeadline(TimeSpan after, CloseReason reason)
    {
        _deadlineReason = reason;
        Volatile.Write(ref _deadline, Heartbeat.After(Stopwatch.GetTimestamp(), after));
    }

    public ValueTask<bool> UpgradeToTlsAsync(ReadOnlyMemory<byte> proceed, CancellationToken cancellationToken)
        => throw new InvalidOperationException("a web session cannot start TLS");

    /// <summary>Client bytes arrived (counted as received, for the idle policy and the metrics).</summary>
    public void OnReceived(long count)
    {
        Volatile.Write(ref _bytesReceived, _bytesReceived + count);
        Volatile.Write(ref _lastReceiveTimestamp, Stopwatch.GetTimestamp());
    }

    /// <summary>The transport sent <paramref name="count"/> queued bytes (as the stream wrote them).</summary>
    public void OnSent(long count)
    {
        Volatile.Write(ref _bytesSent, _bytesSent + count);
        Interlocked.Add(ref _pendingOutput, -count);
    }

    public bool TryWrite(ReadOnlySpan<byte> data)
    {
        bool queued;
        var overflow = false;
        lock (_lock)
        {
            queued = TryQueueLocked(data, ref overflow);
        }
        if (overflow)
        {
            Abort(CloseReason.OutputOverflow);
        }
        return queued;
    }

    /// <summary>No more output: staged bytes are queued and the output queue ends after them.</summary>
    public void CompleteOutput()
    {
        var overflow = false;
        lock (_lock)
        {
            _staged.CommitLocked(ref overflow);
            if (!_outputClosed)
            {
                _outputClosed = true;
                _output.Writer.Complete();
            }
        }
        if (overflow)
        {
            Abort(CloseReason.OutputOverflow);
        }
    }

    /// <summary>Cuts the session now, from any thread: the first reason is kept, the transport is told.</summary>
    public void Abort(CloseReason reason)
    {
        TrySetCloseReason(reason);
        lock (_lock)
        {
            if (!_outputClosed)
            {
                _outputClosed = true;
                _output.Writer.Complete();
            }
        }
        _abort(reason);
    }

    /// <summary>Releases what the session holds once its loops are done.</summary>
    public void Release()
    {
        _input.Reader.Complete();
        _input.Writer.Complete();
        _output.Reader.Complete();
        _staged.ReleaseBuffer();
    }

    /// <summary>Deadlines and the stream's own checks, once a second.</summary>
    public void OnHeartbeat(long timestamp)
    {
        var deadline = Volatile.Read(ref _deadline);
        if (deadline != 0 && timestamp >= deadline)
        {
            Abort(_deadlineReason);
        }
        if (HeartbeatListener is not null)
        {
            Stream?.OnHeartbeat(timestamp);
        }
    }

    private bool TryQueueLocked(ReadOnlySpan<byte> data, ref bool overflow)
    {
        if (_outputClosed)
        {
            return false;
        }
        if (Volatile.Read(ref _pendingOutput) + data.Length > _maxPendingOutput)
        {
            overflow = true;
            return false;
        }
        if (data.IsEmpty)
        {
            return true;
        }
        var writer = _output.Writer;
        writer.Write(data);
        Interlocked.Add(ref _pendingOutput, data.Length);
        // Completes at once (the pipe never pauses its writer): it only wakes the transport's reader.
        var flush = writer.FlushAsync();
        Debug.Assert(flush.IsCompleted, "the output pipe must never pause its writer");
        return true;
    }

    /// <summary>
    /// The receive loop's writer: a pooled buffer, queued on flush. Flushes never wait (the stream
    /// loop only writes its own short answers here; relayed stanzas go upstream, deliveries
    /// through <see cref="TryWrite"/>), so cancelling one has nothing to wake.
    /// </summary>
    private sealed class StagedOutput(WebStreamConnection owner) : StagingPipeWriter(MinimumSize)
    {
        private const int MinimumSize = 512;

        public override void CancelPendingFlush()
        {
        }

        public override void Complete(Exception? exception = null)
        {
        }

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            bool queued;
            var overflow = false;
            lock (owner._lock)
            {
                queued = CommitLocked(ref overflow);
            }
            if (overflow)
            {
                owner.Abort(CloseReason.OutputOverflow);
            }
            return new ValueTask<FlushResult>(new FlushResult(isCanceled: false, isCompleted: !queued));
        }

        public bool CommitLocked(ref bool overflow)
        {
            if (UnflushedBytes == 0)
            {
                return !owner._outputClosed;
            }
            var queued = owner.TryQueueLocked(Staged, ref overflow);
            ReleaseBuffer();
            return queued;
        }
    }
}
