using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using ConnMgr.Edge.Streams;

namespace ConnMgr.Edge.Transport;

/// <summary>
/// One client socket, seen by the stream layer as two bounded pipes.
/// </summary>
/// <remarks>
/// <para>Two loops run per connection, each a task held in a field: the receive loop moves socket
/// (or TLS) bytes into <see cref="Input"/>; the send loop moves queued output to the socket.
/// <see cref="DisposeAsync"/> completes both pipes and awaits both loops.</para>
/// <para>Input: the receive loop waits for data with a zero-byte read and only then rents a 4 KiB
/// block, so an idle connection holds no buffer. It stops reading the socket when
/// <see cref="TransportSettings.InputPauseThresholdBytes"/> bytes wait unread, and while the
/// byte-rate shaper has no tokens.</para>
/// <para>Output has two doors onto one ordered queue (a pipe drained by the send loop):
/// <see cref="Output"/>, a <see cref="PipeWriter"/> for the stream layer alone (its bytes join
/// the queue when it flushes, and its flush waits while more than 64 KiB are pending), and
/// <see cref="TryWrite(ReadOnlySpan{byte})"/>, which any thread (the upstream link delivering
/// stanzas) may call: it copies the bytes under a short lock and never waits. Bytes queued
/// while a send is in flight go out together in the next send. Pending bytes are counted; a
/// write that would take them over <see cref="TransportSettings.MaxPendingOutputBytes"/> is
/// refused and the connection is cut with <see cref="CloseReason.OutputOverflow"/>.</para>
/// <para>Closing: <see cref="Abort"/> cuts at once (from any thread). The transport disposes the
/// connection when the handler returns: queued output is flushed within
/// <see cref="TransportSettings.CloseTimeout"/>, then the socket is closed. The first
/// <see cref="CloseReason"/> recorded is the one kept.</para>
/// </remarks>
internal sealed partial class ClientConnection : IAsyncDisposable, IClientStreamConnection
{
    private readonly ClientTransport _transport;
    private readonly Socket _socket;
    private readonly Pipe _input;
    private readonly Pipe _output;
    private readonly ConnectionOutput _outputWriter;

    // Guards the output pipe's writer side and what goes with it (_outputClosed, _bytesQueued).
    private readonly Lock _writeLock = new();

    // Guards the close reason, the abort flag and the STARTTLS hand-over between the loops.
    private readonly Lock _stateLock = new();

    private Task? _receiveTask;
    private Task? _sendTask;
    private volatile SslStream? _tls;
    private volatile CloseReason _closeReason;
    private volatile bool _closed;
    private CancellationTokenSource? _closedSource;

    private long _bytesReceived;
    private long _lastReceiveTimestamp;

    // Deadlines in Stopwatch ticks (0 = none), checked by the heartbeat. The transport's own
    // (PROXY header, TLS handshake, closing flush) and the stream layer's are kept apart.
    private long _transportDeadline;
    private CloseReason _transportDeadlineReason;
    private long _streamDeadline;
    private CloseReason _streamDeadlineReason;

    // Byte-rate shaper: a token bucket refilled by the heartbeat (rate 0 = off).
    private readonly long _rate;
    private readonly long _burst;
    private long _tokens;
    private long _lastRefill;
    private TaskCompletionSource? _tokenWaiter;

    internal ClientConnection(long id, Socket socket, TransportKind transport, ClientTransport owner)
    {
        Id = id;
        Transport = transport;
        _socket = socket;
        _transport = owner;
        RemoteEndPoint = Normalize((IPEndPoint)socket.RemoteEndPoint!);
        LocalEndPoint = Normalize((IPEndPoint)socket.LocalEndPoint!);
        _input = new Pipe(owner.InputPipeOptions);
        _output = new Pipe(owner.OutputPipeOptions);
        _outputWriter = new ConnectionOutput(this);

        var now = Stopwatch.GetTimestamp();
        _lastReceiveTimestamp = now;
        _lastRefill = now;
        _rate = owner.Settings.ClientRateBytesPerSecond;
        _burst = _rate * owner.Settings.ClientRateBurstSeconds;
        _tokens = _burst;
    }

    /// <summary>Process-unique number for logs.</summary>
    public long Id { get; }

    public TransportKind Transport { get; }

    Diagnostics.ClientTransport IClientStreamConnection.MetricsTransport
        => Transport == TransportKind.DirectTls ? Diagnostics.ClientTransport.Tls : Diagnostics.ClientTransport.Tcp;

    /// <summary>The client's address: from the PROXY header when the listener expects one, else the peer's.</summary>
    public IPEndPoint RemoteEndPoint { get; private set; }

    public IPEndPoint LocalEndPoint { get; }

    public int LocalPort => LocalEndPoint.Port;

    public bool IsSecure => _tls is not null;

    public SslProtocols TlsProtocol => _tls?.SslProtocol ?? SslProtocols.None;

    /// <summary>ALPN result: <c>xmpp-client</c> on Direct TLS when the client offered it (XEP-0368).</summary>
    public SslApplicationProtocol NegotiatedApplicationProtocol => _tls?.NegotiatedApplicationProtocol ?? default;

    /// <summary>Whether the stream layer may offer &lt;starttls/&gt;: plain TCP, not yet upgraded, a certificate configured.</summary>
    public bool CanStartTls => Transport == TransportKind.Tcp && _tls is null && _transport.Certificates is not null;

    /// <summary>Bytes from the client, decrypted. Completes when the client is gone; <see cref="CloseReason"/> says why.</summary>
    public PipeReader Input => _input.Reader;

    /// <summary>The stream layer's writer (one owner). Its bytes are queued on flush; see the class remarks.</summary>
    public PipeWriter Output => _outputWriter;

    /// <summary>Bytes queued for this client and not yet written to the socket.</summary>
    public long PendingOutputBytes => Volatile.Read(ref _pendingOutput);

    public long BytesReceived => Volatile.Read(ref _bytesReceived);

    public long BytesSent => Volatile.Read(ref _bytesSent);

    /// <summary>When bytes last arrived (Stopwatch ticks), for the stream layer's idle policy.</summary>
    public long LastReceiveTimestamp => Volatile.Read(ref _lastReceiveTimestamp);

    /// <summary>Called on every heartbeat tick (about once a second); see <see cref="IConnectionHeartbeatListener"/>.</summary>
    public IConnectionHeartbeatListener? HeartbeatListener { get; set; }

    public CloseReason CloseReason => _closeReason;

    /// <summary>Fires when the transport closes the socket (abort or end of connection).</summary>
    public CancellationToken Closed
    {
        get
        {
            lock (_stateLock)
            {
                return _closed ? new CancellationToken(canceled: true) : (_closedSource ??= new CancellationTokenSource()).Token;
            }
        }
    }

    /// <summary>The connection's task in the transport (start, handler, disposal).</summary>
    internal Task? Lifetime { get; set; }

    /// <summary>True while a deadline is armed, the transport's or the stream layer's (tests, diagnostics).</summary>
    internal bool HasDeadline => Volatile.Read(ref _transportDeadline) != 0 || Volatile.Read(ref _streamDeadline) != 0;

    /// <summary>True while the receive loop waits for the shaper to refill (tests, diagnostics).</summary>
    internal bool IsThrottled => Volatile.Read(ref _tokenWaiter) is not null;

    /// <summary>Records why the connection is ending without closing it yet. The first reason wins.</summary>
    public bool TrySetCloseReason(CloseReason reason)
    {
        lock (_stateLock)
        {
            if (_closeReason != CloseReason.None)
            {
                return false;
            }
            _closeReason = reason;
            return true;
        }
    }

    /// <summary>
    /// Cuts the connection now, from any thread: records the reason (if none yet), resets the
    /// socket (queued output is dropped) and wakes every loop so the handler sees Input complete.
    /// </summary>
    public void Abort(CloseReason reason) => Close(reason, reset: true);

    /// <summary>
    /// Starts a deadline for the stream layer (e.g. <see cref="CloseReason.NegotiationTimeout"/>
    /// when the stream opens). When the heartbeat finds it passed, the connection is aborted with
    /// <paramref name="reason"/>. One deadline at a time: a new one replaces the old.
    /// </summary>
    public void SetDeadline(TimeSpan after, CloseReason reason)
    {
        _streamDeadlineReason = reason;
        Volatile.Write(ref _streamDeadline, Heartbeat.After(Stopwatch.GetTimestamp(), after));
    }

    public void ClearDeadline() => Volatile.Write(ref _streamDeadline, 0);

    public async ValueTask DisposeAsync()
    {
        CompleteOutput();
        if (_sendTask is not null)
        {
            // The send loop ends once the queue is on the wire, or when this deadline cuts a
            // client that does not read.
            SetTransportDeadline(_transport.Settings.CloseTimeout, CloseReason.ServerClosed);
            await _sendTask;
        }
        else
        {
            _output.Reader.Complete();
        }

        Close(CloseReason.ServerClosed, reset: false);
        _input.Reader.Complete();
        if (_receiveTask is not null)
        {
            await _receiveTask;
        }
        else
        {
            _input.Writer.Complete();
        }

        if (_tls is { } tls)
        {
            await tls.DisposeAsync();
        }
        _outputWriter.ReleaseBuffer();
        _closedSource?.Dispose();
    }

    /// <summary>Called by the transport's heartbeat: deadlines, shaper refill, the stream layer's hook.</summary>
    internal void OnHeartbeat(long timestamp)
    {
        var deadline = Volatile.Read(ref _transportDeadline);
        if (deadline != 0 && timestamp >= deadline)
        {
            Abort(_transportDeadlineReason);
        }
        deadline = Volatile.Read(ref _streamDeadline);
        if (deadline != 0 && timestamp >= deadline)
        {
            Abort(_streamDeadlineReason);
        }
        if (_rate > 0)
        {
            Refill(timestamp);
        }
        HeartbeatListener?.OnHeartbeat(this, timestamp);
    }

    /// <summary>Runs before the handler: PROXY header, then the Direct TLS handshake, then the loops.</summary>
    internal async Task<bool> StartAsync()
    {
        byte[]? leftover = null;
        if (_transport.Settings.ProxyProtocol)
        {
            (var ok, leftover) = await ReadProxyHeaderAsync();
            if (!ok)
            {
                return false;
            }
        }

        if (Transport == TransportKind.DirectTls)
        {
            Stream socketStream = new NetworkStream(_socket, ownsSocket: false);
            if (leftover is not null)
            {
                socketStream = new PrefixedStream(leftover, socketStream);
            }
            var tls = new SslStream(socketStream, leaveInnerStreamOpen: false);
            if (!await AuthenticateAsync(tls, _transport.Certificates!.Current.DirectTls))
            {
                return false;
            }
            _tls = tls;
        }
        else if (leftover is not null)
        {
            // Client bytes that came with the PROXY header: the stream layer reads them first.
            await _input.Writer.WriteAsync(leftover);
        }

        StartLoops();
        return true;
    }

    /// <summary>Starts the loops without PROXY header or TLS: for a connection turned away at the cap.</summary>
    internal void StartLoops()
    {
        _receiveTask = ReceiveLoopAsync();
        _sendTask = SendLoopAsync();
    }

    private async Task ReceiveLoopAsync()
    {
        var writer = _input.Writer;
        try
        {
            while (true)
            {
                if (_rate > 0 && Volatile.Read(ref _tokens) <= 0 && !await WaitForTokensAsync())
                {
                    break;
                }

                // Zero-byte read: wait until the client sends something before renting a block.
                // SslStream passes it down to the socket (.NET 8+), so TLS idles without a buffer too.
                var tls = _tls;
                if (tls is null)
                {
                    await _socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None);
                }
                else
                {
#pragma warning disable CA2022 // A zero-byte read only waits for data: there is no count to check.
                    await tls.ReadAsync(Memory<byte>.Empty);
#pragma warning restore CA2022
                }

                if (!TryEnterReceive(out var upgrade))
                {
                    if (!await CompleteTlsUpgradeAsync(upgrade))
                    {
                        break;
                    }
                    continue;
                }

                try
                {
                    var memory = writer.GetMemory(TransportBufferPool.BlockSize);
                    var received = tls is null
                        ? await _socket.ReceiveAsync(memory, SocketFlags.None)
                        : await tls.ReadAsync(memory);
                    if (received == 0)
                    {
                        TrySetCloseReason(CloseReason.ClientClosed);
                        break;
                    }

                    writer.Advance(received);
                    Volatile.Write(ref _bytesReceived, _bytesReceived + received);
                    Volatile.Write(ref _lastReceiveTimestamp, Stopwatch.GetTimestamp());
                    if (_rate > 0)
                    {
                        Interlocked.Add(ref _tokens, -received);
                    }

                    var flush = await writer.FlushAsync();
                    if (flush.IsCompleted)
                    {
                        break;
                    }
                }
                finally
                {
                    ExitReceive();
                }
            }
        }
        catch (Exception e)
        {
            OnIoFailure(e);
        }
        finally
        {
            writer.Complete();
        }
    }

    /// <summary>
    /// Waits for the heartbeat to refill the bucket. Over the rate a client is slowed, never cut:
    /// while the loop waits nothing reads the socket, the kernel buffer fills and TCP flow control
    /// makes the client wait (as ejabberd's c2s shaper does). The bucket may go negative by one
    /// read (4 KiB), which the next refill pays back.
    /// </summary>
    private async ValueTask<bool> WaitForTokensAsync()
    {
        while (Volatile.Read(ref _tokens) <= 0 && !_closed)
        {
            var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Interlocked.Exchange(ref _tokenWaiter, waiter);
            // Re-check after publishing the waiter: a refill in between would not have seen it.
            if (Volatile.Read(ref _tokens) > 0 || _closed)
            {
                Interlocked.Exchange(ref _tokenWaiter, null);
                break;
            }
            await waiter.Task;
        }
        return !_closed;
    }

    private void Refill(long timestamp)
    {
        var elapsed = timestamp - _lastRefill;
        if (elapsed <= 0)
        {
            return;
        }
        _lastRefill = timestamp;
        var added = (long)(elapsed * (double)_rate / Stopwatch.Frequency);
        long current, updated;
        do
        {
            current = Volatile.Read(ref _tokens);
            updated = Math.Min(_burst, current + added);
        }
        while (Interlocked.CompareExchange(ref _tokens, updated, current) != current);

        if (updated > 0)
        {
            Interlocked.Exchange(ref _tokenWaiter, null)?.TrySetResult();
        }
    }

    private void SetTransportDeadline(TimeSpan after, CloseReason reason)
    {
        _transportDeadlineReason = reason;
        Volatile.Write(ref _transportDeadline, Heartbeat.After(Stopwatch.GetTimestamp(), after));
    }

    private void ClearTransportDeadline() => Volatile.Write(ref _transportDeadline, 0);

    private void Close(CloseReason reason, bool reset)
    {
        TlsUpgrade? upgrade;
        CancellationTokenSource? closedSource;
        lock (_stateLock)
        {
            if (_closeReason == CloseReason.None)
            {
                _closeReason = reason;
            }
            if (_closed)
            {
                return;
            }
            _closed = true;
            upgrade = _upgrade;
            closedSource = _closedSource;
        }

        lock (_writeLock)
        {
            _outputClosed = true;
        }

        if (reset)
        {
            try
            {
                // RST rather than FIN: the kernel drops what is queued for a client being cut.
                _socket.LingerState = new LingerOption(enable: true, seconds: 0);
            }
            catch (SocketException)
            {
                // The peer is already gone; closing is all that is left to do.
            }
        }
        // Fails the loops' pending socket operations, which then end.
        _socket.Dispose();

        Interlocked.Exchange(ref _tokenWaiter, null)?.TrySetResult();
        Interlocked.Exchange(ref _drainWaiter, null)?.TrySetResult();
        upgrade?.Cancel();
        closedSource?.Cancel();
    }

    /// <summary>A socket or TLS failure in a loop: the reason unless we caused it by closing.</summary>
    private void OnIoFailure(Exception exception)
    {
        if (_closed)
        {
            return;
        }
        if (exception is SocketException or IOException or ObjectDisposedException)
        {
            Abort(CloseReason.ClientReset);
            return;
        }
        TransportLog.IoFailed(_transport.Logger, exception, Id);
        Abort(CloseReason.InternalError);
    }

    private static IPEndPoint Normalize(IPEndPoint endPoint) =>
        endPoint.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(endPoint.Address.MapToIPv4(), endPoint.Port) : endPoint;
}
