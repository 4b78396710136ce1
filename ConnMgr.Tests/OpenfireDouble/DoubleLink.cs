using System.Diagnostics;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace ConnMgr.Tests.OpenfireDouble;

internal enum LinkPhase
{
    /// <summary>Nothing but a <c>&lt;stream:stream</c> header is looked at (spec 3.2).</summary>
    AwaitingHeader,

    /// <summary>TLS is up; the CM's new header is due (spec 3.5).</summary>
    AwaitingRestartHeader,

    Open,
}

/// <summary>
/// One TCP connection from a CM: its socket, stream (plain or TLS), protocol state and the
/// bookkeeping for idle detection. All writes go through one lock so that frames never interleave and
/// so that the STARTTLS switch cannot race a heartbeat. The read side belongs to the link's task in
/// <see cref="OpenfireDoubleServer"/>.
/// </summary>
internal sealed class DoubleLink(int number, Socket socket, TimeSpan writeTimeout)
{
    /// <summary>How long a closing link keeps reading (and discarding) so the stream error reaches the CM before the socket goes.</summary>
    private static readonly TimeSpan s_drainTime = TimeSpan.FromSeconds(2);

    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly CancellationTokenSource _readCancel = new();
    private Stream _stream = new NetworkStream(socket, ownsSocket: true);
    private int _closing;

    public int Number => number;

    public string Label => Jid ?? $"#{number}";

    public string PeerAddress { get; } = (socket.RemoteEndPoint as System.Net.IPEndPoint)?.Address.ToString() ?? "";

    public LinkPhase Phase { get; set; }

    public string? Jid { get; set; }

    /// <summary>Lower-case domain part of the link JID: the CM name (spec 1).</summary>
    public string? CmDomain { get; set; }

    public string? StreamId { get; set; }

    public IReadOnlyDictionary<string, string> HeaderNamespaces { get; set; } = new Dictionary<string, string>();

    public bool IsAuthenticated { get; set; }

    public bool IsEncrypted { get; private set; }

    public bool InPool { get; set; }

    public bool IsClosing => Volatile.Read(ref _closing) != 0;

    public bool IsClosed { get; private set; }

    public LinkCloseReason CloseReason { get; private set; }

    public string? CloseCondition { get; private set; }

    public Task Completion { get; set; } = Task.CompletedTask;

    // Idle detection (spec 8.3): Netty's reader-idle timer at half the idle time, reset by any byte;
    // the flag is set by the first expiry and cleared by a decoded element.
    public long LastReadTimestamp { get; set; } = Stopwatch.GetTimestamp();

    public long LastIdleEventTimestamp { get; set; }

    public bool IdleFlag { get; set; }

    public LinkInfo Snapshot() => new(number, Jid, CmDomain, StreamId, InPool, IsAuthenticated, IsEncrypted, !IsClosing && !IsClosed, CloseReason, CloseCondition);

    public ValueTask<int> ReadAsync(Memory<byte> buffer) => _stream.ReadAsync(buffer, _readCancel.Token);

    /// <summary>
    /// Writes one frame; false when the link is closing or the write failed. <paramref name="logging"/>
    /// runs under the write lock just before the bytes go out, so the log has the frame, in wire order,
    /// before the CM can see it.
    /// </summary>
    public async Task<bool> WriteAsync(string text, Action? logging = null)
    {
        if (IsClosing)
        {
            return false;
        }

        await _writeLock.WaitAsync();
        try
        {
            if (IsClosing)
            {
                return false;
            }

            logging?.Invoke();
            return await WriteLockedAsync(text);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>
    /// Marks the link closing (once), writes <paramref name="finalText"/> if any, sends FIN, and lets the
    /// reader drain for a moment so that unread input cannot turn the close into a reset that loses
    /// the stream error. Returns false if the link was already closing.
    /// </summary>
    public async Task<bool> CloseAsync(LinkCloseReason reason, string? condition, string? finalText, Action? logging = null)
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0)
        {
            return false;
        }

        CloseReason = reason;
        CloseCondition = condition;
        await _writeLock.WaitAsync();
        try
        {
            if (finalText is not null)
            {
                logging?.Invoke();
                await WriteLockedAsync(finalText);
            }

            if (_stream is SslStream tls)
            {
                await tls.ShutdownAsync().WaitAsync(writeTimeout);
            }

            socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or TimeoutException or InvalidOperationException)
        {
            // The CM already went away: nothing left to tell it.
        }
        finally
        {
            _writeLock.Release();
        }

        _readCancel.CancelAfter(s_drainTime);
        return true;
    }

    /// <summary>TCP abort: RST, nothing written (spec 0.1 point 6 for an invalid header <c>to</c>; <see cref="OpenfireDoubleServer.DropLink"/>).</summary>
    public void Abort(LinkCloseReason reason)
    {
        if (Interlocked.Exchange(ref _closing, 1) == 0)
        {
            CloseReason = reason;
        }

        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already gone.
        }

        socket.Dispose();
        _readCancel.Cancel();
    }

    /// <summary>The CM ended the connection first (EOF or reset) without us closing.</summary>
    public void MarkClosedByPeer(LinkCloseReason reason)
    {
        if (Interlocked.Exchange(ref _closing, 1) == 0)
        {
            CloseReason = reason;
        }
    }

    /// <summary>Direct TLS (spec 3.5): the server handshake before any XMPP byte.</summary>
    public async Task AcceptTlsAsync(X509Certificate2 certificate, TimeSpan timeout)
    {
        var tls = new SslStream(_stream, leaveInnerStreamOpen: false);
        await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = certificate }, _readCancel.Token).WaitAsync(timeout);
        _stream = tls;
        IsEncrypted = true;
    }

    /// <summary>
    /// STARTTLS (spec 3.5): writes <c>&lt;proceed/&gt;</c> in clear text and runs the server handshake
    /// while holding the write lock, so that no heartbeat slips in between.
    /// </summary>
    public async Task UpgradeToTlsAsync(string proceed, X509Certificate2 certificate, TimeSpan timeout, Action logging)
    {
        await _writeLock.WaitAsync();
        try
        {
            logging();
            if (!await WriteLockedAsync(proceed))
            {
                throw new IOException("link closed before TLS");
            }

            var tls = new SslStream(_stream, leaveInnerStreamOpen: false);
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = certificate }, _readCancel.Token).WaitAsync(timeout);
            _stream = tls;
            IsEncrypted = true;
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public void Dispose()
    {
        // _readCancel is not disposed: Abort or a drain timer may still touch it; it owns no unmanaged state once its timer fired.
        IsClosed = true;
        _stream.Dispose();
        socket.Dispose();
    }

    private async Task<bool> WriteLockedAsync(string text)
    {
        try
        {
            byte[] bytes = Encoding.UTF8.GetBytes(text);
            await _stream.WriteAsync(bytes).AsTask().WaitAsync(writeTimeout);
            await _stream.FlushAsync();
            return true;
        }
        catch (TimeoutException)
        {
            // Openfire's WriteTimeoutHandler drops a link whose CM stopped reading (spec 2).
            Abort(LinkCloseReason.Dropped);
            return false;
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or NotSupportedException or InvalidOperationException)
        {
            return false;
        }
    }
}
