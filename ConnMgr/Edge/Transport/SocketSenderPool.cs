using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace ConnMgr.Edge.Transport;

/// <summary>
/// Senders for plain-TCP sockets, shared by all connections of a transport. A send loop rents one
/// for a burst of output and returns it when the burst is on the wire, so an idle connection holds
/// none. <see cref="Socket.SendAsync(ReadOnlyMemory{byte}, SocketFlags, CancellationToken)"/>
/// would instead cache an event-args object on the socket for its whole life (about 300 bytes per
/// connection, measured with idle-memory --edge), which is most of the time idle.
/// </summary>
internal sealed class SocketSenderPool
{
    /// <summary>Free senders kept for reuse: enough for the bursts of a busy edge; more are left to the GC.</summary>
    public const int DefaultMaxRetained = 256;

    private readonly ConcurrentQueue<SocketSender> _free = new();
    private readonly int _maxRetained;
    private int _retained;
    private int _rented;

    public SocketSenderPool(int maxRetained = DefaultMaxRetained)
    {
        _maxRetained = maxRetained;
    }

    /// <summary>Free senders kept for reuse (tests, diagnostics).</summary>
    public int Retained => Volatile.Read(ref _retained);

    /// <summary>Senders in use by send loops now (tests, diagnostics).</summary>
    public int Rented => Volatile.Read(ref _rented);

    public SocketSender Rent()
    {
        Interlocked.Increment(ref _rented);
        if (_free.TryDequeue(out var sender))
        {
            Interlocked.Decrement(ref _retained);
            return sender;
        }
        return new SocketSender();
    }

    /// <summary>Takes a sender back; only once its last send has completed and been awaited.</summary>
    public void Return(SocketSender sender)
    {
        Interlocked.Decrement(ref _rented);
        if (Interlocked.Increment(ref _retained) > _maxRetained)
        {
            Interlocked.Decrement(ref _retained);
            sender.Dispose();
            return;
        }
        _free.Enqueue(sender);
    }
}

/// <summary>
/// One socket send at a time as an awaitable: a reusable <see cref="SocketAsyncEventArgs"/> that is
/// its own <see cref="IValueTaskSource{TResult}"/>, so a send allocates nothing, even when it waits
/// for the kernel buffer. A failure surfaces as a <see cref="SocketException"/>, as from the socket's
/// own SendAsync.
/// </summary>
internal sealed class SocketSender : SocketAsyncEventArgs, IValueTaskSource<int>
{
    private ManualResetValueTaskSourceCore<int> _source;

    public SocketSender()
        : base(unsafeSuppressExecutionContextFlow: true)
    {
        // The send loop continues on the thread pool, not on the socket engine's thread.
        _source.RunContinuationsAsynchronously = true;
    }

    /// <summary>Starts sending; the result is the number of bytes the kernel took.</summary>
    public ValueTask<int> SendAsync(Socket socket, ReadOnlyMemory<byte> buffer)
    {
        _source.Reset();
        SetBuffer(MemoryMarshal.AsMemory(buffer));
        if (socket.SendAsync(this))
        {
            return new ValueTask<int>(this, _source.Version);
        }
        // Completed at once (the usual case: the kernel buffer had room).
        var (error, sent) = (SocketError, BytesTransferred);
        SetBuffer(Memory<byte>.Empty);
        return error == SocketError.Success
            ? new ValueTask<int>(sent)
            : ValueTask.FromException<int>(new SocketException((int)error));
    }

    int IValueTaskSource<int>.GetResult(short token) => _source.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<int>.GetStatus(short token) => _source.GetStatus(token);

    void IValueTaskSource<int>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _source.OnCompleted(continuation, state, token, flags);

    protected override void OnCompleted(SocketAsyncEventArgs e)
    {
        var (error, sent) = (SocketError, BytesTransferred);
        // The buffer is the caller's pipe memory: do not keep it past the send.
        SetBuffer(Memory<byte>.Empty);
        if (error == SocketError.Success)
        {
            _source.SetResult(sent);
        }
        else
        {
            _source.SetException(new SocketException((int)error));
        }
    }
}
