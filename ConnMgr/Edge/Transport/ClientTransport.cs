using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using ConnMgr.Edge.Tls;
using Microsoft.Extensions.Logging;

namespace ConnMgr.Edge.Transport;

/// <summary>
/// The edge's client-facing transport: what its listeners share. It holds the live-connection
/// registry (the global cap, the heartbeat walk, shutdown), the buffer pool and the pipe options,
/// built once for all connections. Register it with the <see cref="Heartbeat"/>.
/// </summary>
/// <remarks>
/// Each accepted connection runs as one task held by the connection (<c>Lifetime</c>): PROXY
/// header, Direct TLS handshake, the handler, then disposal and removal from the registry.
/// Shutdown, in order: stop accepting; signal the handlers' <c>stopping</c> token; await every
/// connection's task until the drain deadline; abort those still running and await them again.
/// </remarks>
internal sealed class ClientTransport : IHeartbeatHandler, IAsyncDisposable
{
    /// <summary>How long aborted connections get to finish their tasks before shutdown gives up on them.</summary>
    private static readonly TimeSpan AbortGrace = TimeSpan.FromSeconds(5);

    private readonly ConcurrentDictionary<long, ClientConnection> _connections = new();
    private readonly List<ClientListener> _listeners = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly IClientConnectionHandler _handler;
    private long _lastId;
    private int _admitted;
    private int _shutdown;

    public ClientTransport(
        TransportSettings settings,
        IClientConnectionHandler handler,
        CertificateProvider? certificates,
        ILogger<ClientTransport> logger,
        TransportBufferPool? bufferPool = null,
        ConnectionSlots? slots = null)
    {
        settings.Validate();
        Settings = settings;
        Slots = slots ?? new ConnectionSlots(settings.MaxConnections);
        Certificates = certificates;
        Logger = logger;
        _handler = handler;
        BufferPool = bufferPool ?? new TransportBufferPool();

        // The stream layer runs on the thread pool, not inline in the receive loop.
        InputPipeOptions = new PipeOptions(
            BufferPool,
            readerScheduler: PipeScheduler.ThreadPool,
            writerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: settings.InputPauseThresholdBytes,
            resumeWriterThreshold: settings.InputPauseThresholdBytes / 2,
            minimumSegmentSize: TransportBufferPool.BlockSize,
            useSynchronizationContext: false);
        // No pause threshold on output: TryWrite must never wait; the pending-output cap bounds it.
        // The send loop wakes on the thread pool, never on the thread that queued the bytes (the
        // upstream link's reader). Queuing an async continuation there allocates nothing.
        OutputPipeOptions = new PipeOptions(
            BufferPool,
            readerScheduler: PipeScheduler.ThreadPool,
            writerScheduler: PipeScheduler.Inline,
            pauseWriterThreshold: 0,
            resumeWriterThreshold: 0,
            minimumSegmentSize: TransportBufferPool.BlockSize,
            useSynchronizationContext: false);
    }

    public TransportSettings Settings { get; }

    /// <summary><c>Edge:MaxConnections</c>, shared with the web transports.</summary>
    public ConnectionSlots Slots { get; }

    public CertificateProvider? Certificates { get; }

    public TransportBufferPool BufferPool { get; }

    /// <summary>Senders the plain-TCP send loops rent for a burst of output.</summary>
    internal SocketSenderPool SocketSenders { get; } = new();

    /// <summary>Admitted TCP and Direct TLS connections now open (those turned away at the cap are not counted).</summary>
    public int ConnectionCount => Volatile.Read(ref _admitted);

    internal ILogger Logger { get; }

    internal PipeOptions InputPipeOptions { get; }

    internal PipeOptions OutputPipeOptions { get; }

    /// <summary>Binds and starts accepting. Port 0 picks a free port (see <see cref="ClientListener.LocalEndPoint"/>).</summary>
    public ClientListener Listen(IPEndPoint endPoint, TransportKind kind)
    {
        if (kind == TransportKind.DirectTls && Certificates is null)
        {
            throw new InvalidOperationException("A Direct TLS listener needs a certificate.");
        }
        if (Volatile.Read(ref _shutdown) != 0)
        {
            throw new InvalidOperationException("The transport is shutting down.");
        }
        var listener = new ClientListener(this, endPoint, kind);
        listener.Start();
        lock (_listeners)
        {
            _listeners.Add(listener);
        }
        return listener;
    }

    /// <summary>Live connections, for diagnostics and tests (a snapshot).</summary>
    public IReadOnlyList<ClientConnection> GetConnections()
    {
        var list = new List<ClientConnection>(_connections.Count);
        foreach (var (_, connection) in _connections)
        {
            list.Add(connection);
        }
        return list;
    }

    public void OnHeartbeat(long timestamp)
    {
        foreach (var (_, connection) in _connections)
        {
            try
            {
                connection.OnHeartbeat(timestamp);
            }
            catch (Exception e)
            {
                TransportLog.HeartbeatFailed(Logger, e, connection.Id);
                connection.Abort(CloseReason.InternalError);
            }
        }
    }

    /// <summary>Stops accepting, lets handlers finish within <paramref name="drainTimeout"/>, then aborts the rest.</summary>
    public async Task ShutdownAsync(TimeSpan drainTimeout)
    {
        if (Interlocked.Exchange(ref _shutdown, 1) != 0)
        {
            return;
        }

        ClientListener[] listeners;
        lock (_listeners)
        {
            listeners = [.. _listeners];
        }
        foreach (var listener in listeners)
        {
            await listener.StopAsync();
        }

        try
        {
            await _stopping.CancelAsync();
        }
        catch (AggregateException e)
        {
            TransportLog.StoppingCallbackFailed(Logger, e);
        }

        // Every accept loop has ended, so every registered connection has its Lifetime.
        var lifetimes = new List<Task>(_connections.Count);
        foreach (var (_, connection) in _connections)
        {
            lifetimes.Add(connection.Lifetime!);
        }
        if (lifetimes.Count == 0)
        {
            return;
        }

        TransportLog.Draining(Logger, lifetimes.Count, drainTimeout);
        if (await CompleteWithinAsync(lifetimes, drainTimeout))
        {
            return;
        }

        TransportLog.Aborting(Logger, _connections.Count);
        foreach (var (_, connection) in _connections)
        {
            connection.Abort(CloseReason.ServerShutdown);
        }
        if (!await CompleteWithinAsync(lifetimes, AbortGrace))
        {
            TransportLog.ConnectionsStuck(Logger, _connections.Count, AbortGrace);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await ShutdownAsync(TimeSpan.Zero);
        _stopping.Dispose();
    }

    /// <summary>Called by a listener's accept loop for each new socket.</summary>
    internal void Accept(Socket socket, TransportKind kind)
    {
        ClientConnection connection;
        try
        {
            socket.NoDelay = true;
            connection = new ClientConnection(Interlocked.Increment(ref _lastId), socket, kind, this);
        }
        catch (SocketException)
        {
            // Reset before we could look at it: nothing to serve.
            socket.Dispose();
            return;
        }

        var admitted = Slots.TryTake();
        if (admitted)
        {
            Interlocked.Increment(ref _admitted);
        }
        _connections[connection.Id] = connection;
        connection.Lifetime = RunAsync(connection, admitted);
    }

    private async Task RunAsync(ClientConnection connection, bool admitted)
    {
        // Off the accept loop at once: it goes back to accepting while this connection starts.
        await Task.CompletedTask.ConfigureAwait(ConfigureAwaitOptions.ForceYielding);
        try
        {
            if (admitted)
            {
                TransportLog.ConnectionAccepted(Logger, connection.Id, connection.RemoteEndPoint, connection.Transport, connection.LocalPort);
                if (await connection.StartAsync())
                {
                    await _handler.RunAsync(connection, _stopping.Token);
                }
            }
            else
            {
                connection.TrySetCloseReason(CloseReason.ConnectionCap);
                LogRejected(connection);
                if (connection.Transport == TransportKind.Tcp)
                {
                    connection.StartLoops();
                    await _handler.RejectAsync(connection, _stopping.Token);
                }
            }
        }
        catch (Exception e)
        {
            TransportLog.HandlerFailed(Logger, e, connection.Id);
            connection.TrySetCloseReason(CloseReason.InternalError);
        }
        finally
        {
            try
            {
                await connection.DisposeAsync();
            }
            catch (Exception e)
            {
                TransportLog.CloseFailed(Logger, e, connection.Id);
            }
            _connections.TryRemove(connection.Id, out _);
            if (admitted)
            {
                Interlocked.Decrement(ref _admitted);
                Slots.Return();
            }
            TransportLog.ConnectionClosed(Logger, connection.Id, connection.RemoteEndPoint, connection.CloseReason, connection.BytesReceived, connection.BytesSent);
        }
    }

    /// <summary>Each rejection at debug level, and the cap's warning at most once a minute.</summary>
    private void LogRejected(ClientConnection connection)
    {
        TransportLog.ConnectionRejected(Logger, connection.Id, connection.RemoteEndPoint);
        Slots.Refused(Logger);
    }

    private static async Task<bool> CompleteWithinAsync(List<Task> tasks, TimeSpan timeout)
    {
        try
        {
            await Task.WhenAll(tasks).WaitAsync(timeout);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }
}
