using System.Buffers;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using ConnMgr.Edge.Tls;
using ConnMgr.Protocol.Proxy;

namespace ConnMgr.Edge.Transport;

internal sealed partial class ClientConnection
{
    private TlsUpgrade? _upgrade;   // set under _stateLock while STARTTLS is under way
    private bool _receiving;        // under _stateLock: the receive loop is between a read and its flush

    /// <summary>Whether OpenSSL frees this connection's record buffers while it idles (see <see cref="OpenSslIdleBuffers"/>).</summary>
    internal bool IdleTlsBuffersReleased { get; private set; }

    /// <summary>
    /// STARTTLS (RFC 6120 section 5.4): sends <paramref name="proceed"/> in clear, then runs the
    /// TLS handshake; afterwards <see cref="Input"/> and <see cref="Output"/> carry decrypted bytes
    /// (same objects). Call it after reading &lt;starttls/&gt;, passing the &lt;proceed/&gt; element,
    /// and do not read Input meanwhile. Returns false when the connection was closed instead:
    /// handshake failure (<see cref="CloseReason.TlsFailed"/>, <see cref="CloseReason.HandshakeTimeout"/>)
    /// or plaintext after &lt;starttls/&gt; (<see cref="CloseReason.ProtocolError"/>).
    /// </summary>
    /// <remarks>
    /// Why this method sends &lt;proceed/&gt; itself: the client starts its handshake as soon as it
    /// reads &lt;proceed/&gt;. Had the stream layer flushed it first, the receive loop could read the
    /// ClientHello into the plaintext pipe before this call. So plaintext reads stop first, then
    /// any unread plaintext is refused (a client must wait for &lt;proceed/&gt;; bytes sent with
    /// &lt;starttls/&gt; would otherwise pass as if they had come over TLS: CVE-2011-0411, the
    /// STARTTLS command injection), and only then does &lt;proceed/&gt; go out. Bytes left unflushed
    /// in <see cref="Output"/> go out before it; bytes queued during the handshake go out encrypted.
    /// </remarks>
    public async ValueTask<bool> UpgradeToTlsAsync(ReadOnlyMemory<byte> proceed, CancellationToken cancellationToken = default)
    {
        var context = _transport.Certificates?.Current
            ?? throw new InvalidOperationException("STARTTLS needs a certificate; none is configured.");
        var upgrade = new TlsUpgrade(context);
        bool receiving;
        lock (_stateLock)
        {
            if (Transport != TransportKind.Tcp || _tls is not null || _upgrade is not null)
            {
                throw new InvalidOperationException("STARTTLS happens once, on a plain TCP connection.");
            }
            if (_closed)
            {
                return false;
            }
            _upgrade = upgrade;
            receiving = _receiving;
        }
        // Covers the wait for the ClientHello too: a client silent after <proceed/> is cut.
        SetTransportDeadline(_transport.Settings.TlsHandshakeTimeout, CloseReason.HandshakeTimeout);

        // From here the receive loop reads no more plaintext; let a read in progress finish.
        if (receiving)
        {
            await upgrade.ReceiverIdle.Task;
        }
        if (_closed)
        {
            return false;
        }
        if (HasUnreadInput())
        {
            Abort(CloseReason.ProtocolError);
            return false;
        }

        var overflow = false;
        bool queued;
        lock (_writeLock)
        {
            queued = _outputWriter.CommitLocked(ref overflow) && TryQueueLocked(proceed.Span, ref overflow);
            Volatile.Write(ref upgrade.PlaintextBoundary, _bytesQueued);
        }
        if (overflow)
        {
            OnOutputOverflow();
        }
        if (!queued)
        {
            // Output was already closed: the connection is ending, and the send loop must not
            // wait at the boundary for a handshake that will not happen.
            Abort(CloseReason.ServerClosed);
            return false;
        }
        // Wakes the send loop even when everything before the boundary is already sent.
        _output.Reader.CancelPendingRead();
        return await upgrade.Ready.Task.WaitAsync(cancellationToken);
    }

    /// <summary>The receive loop asks before each read whether it may read plaintext.</summary>
    private bool TryEnterReceive(out TlsUpgrade? upgrade)
    {
        upgrade = null;
        if (_tls is not null)
        {
            return true;
        }
        lock (_stateLock)
        {
            if (_upgrade is not null)
            {
                upgrade = _upgrade;
                return false;
            }
            _receiving = true;
            return true;
        }
    }

    private void ExitReceive()
    {
        if (!_receiving)
        {
            return;
        }
        TlsUpgrade? upgrade;
        lock (_stateLock)
        {
            _receiving = false;
            upgrade = _upgrade;
        }
        upgrade?.ReceiverIdle.TrySetResult();
    }

    /// <summary>
    /// Receive loop, after STARTTLS was requested and the client sent something (its ClientHello,
    /// normally): waits until &lt;proceed/&gt; is on the wire, then runs the handshake.
    /// </summary>
    private async Task<bool> CompleteTlsUpgradeAsync(TlsUpgrade? upgrade)
    {
        if (upgrade is null || !await upgrade.PlaintextSent.Task)
        {
            return false;
        }
        var tls = new SslStream(new NetworkStream(_socket, ownsSocket: false), leaveInnerStreamOpen: false);
        if (!await AuthenticateAsync(tls, upgrade.Context.StartTls))
        {
            upgrade.Ready.TrySetResult(false);
            return false;
        }
        lock (_stateLock)
        {
            _tls = tls;
            _upgrade = null;
        }
        upgrade.Ready.TrySetResult(true);
        return true;
    }

    private bool HasUnreadInput()
    {
        var reader = _input.Reader;
        if (!reader.TryRead(out var result))
        {
            return false;
        }
        var unread = !result.Buffer.IsEmpty;
        reader.AdvanceTo(result.Buffer.Start);
        return unread;
    }

    private async Task<bool> AuthenticateAsync(SslStream tls, SslServerAuthenticationOptions options)
    {
        SetTransportDeadline(_transport.Settings.TlsHandshakeTimeout, CloseReason.HandshakeTimeout);
        try
        {
            await tls.AuthenticateAsServerAsync(options, CancellationToken.None);
            // Before the loops use the SSL object: an idle client then holds no OpenSSL record buffers.
            IdleTlsBuffersReleased = OpenSslIdleBuffers.TryEnable(tls, _transport.Logger);
            return true;
        }
        catch (Exception e) when (e is AuthenticationException or IOException or SocketException or ObjectDisposedException)
        {
            TransportLog.TlsHandshakeFailed(_transport.Logger, Id, RemoteEndPoint, e.Message);
            // FIN, not RST: the alert OpenSSL queued should reach the client and explain.
            Close(CloseReason.TlsFailed, reset: false);
            await tls.DisposeAsync();
            return false;
        }
        finally
        {
            ClearTransportDeadline();
        }
    }

    /// <summary>
    /// Reads the PROXY header straight from the socket, before any loop runs. Client bytes that
    /// arrived with it are returned, for the input pipe or the TLS handshake.
    /// </summary>
    private async ValueTask<(bool Ok, byte[]? Leftover)> ReadProxyHeaderAsync()
    {
        SetTransportDeadline(_transport.Settings.ProxyHeaderTimeout, CloseReason.HandshakeTimeout);
        // The parser decides within this many bytes (v1 needs at most 107).
        const int window = ProxyProtocolParser.DefaultMaxV2HeaderLength;
        var buffer = ArrayPool<byte>.Shared.Rent(window);
        try
        {
            var filled = 0;
            while (true)
            {
                var received = await _socket.ReceiveAsync(buffer.AsMemory(filled, window - filled), SocketFlags.None);
                if (received == 0)
                {
                    TrySetCloseReason(CloseReason.ClientClosed);
                    return (false, null);
                }
                filled += received;

                var sequence = new ReadOnlySequence<byte>(buffer, 0, filled);
                var consumed = sequence.Start;
                var examined = sequence.End;
                if (!ProxyProtocolParser.TryParse(sequence, ref consumed, ref examined, out var header))
                {
                    continue;
                }
                if (header.Source is { } source)
                {
                    RemoteEndPoint = Normalize(source);
                }
                var used = (int)sequence.GetOffset(consumed);
                return (true, used < filled ? buffer.AsSpan(used, filled - used).ToArray() : null);
            }
        }
        catch (ProxyProtocolException e)
        {
            TransportLog.ProxyHeaderInvalid(_transport.Logger, Id, RemoteEndPoint, e.Message);
            Abort(CloseReason.ProtocolError);
            return (false, null);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            OnIoFailure(e);
            return (false, null);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            ClearTransportDeadline();
        }
    }

    /// <summary>State of one STARTTLS hand-over between the caller, the receive loop and the send loop.</summary>
    private sealed class TlsUpgrade(TlsServerContext context)
    {
        public TlsServerContext Context { get; } = context;

        /// <summary>The receive loop is not between a read and its flush.</summary>
        public TaskCompletionSource ReceiverIdle { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Everything up to <see cref="PlaintextBoundary"/> is sent (false: closed first).</summary>
        public TaskCompletionSource<bool> PlaintextSent { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>The handshake succeeded (false: it failed or the connection closed).</summary>
        public TaskCompletionSource<bool> Ready { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Count of queued bytes that go out in clear, &lt;proceed/&gt; last; -1 until known.</summary>
        public long PlaintextBoundary = -1;

        public void Cancel()
        {
            ReceiverIdle.TrySetResult();
            PlaintextSent.TrySetResult(false);
            Ready.TrySetResult(false);
        }
    }
}
