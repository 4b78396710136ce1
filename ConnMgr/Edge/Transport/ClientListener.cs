using System.Net;
using System.Net.Sockets;

namespace ConnMgr.Edge.Transport;

/// <summary>
/// One client port: its own accept loop over a <see cref="Socket"/> (no Kestrel), handing each
/// socket to the <see cref="ClientTransport"/>. Created by <see cref="ClientTransport.Listen"/>.
/// </summary>
internal sealed class ClientListener
{
    /// <summary>
    /// Pause after an accept error such as EMFILE (out of file descriptors): the connection stays
    /// in the backlog, so retrying at once would spin a core. 100 ms lets closing connections free some.
    /// </summary>
    private const int AcceptRetryDelayMilliseconds = 100;

    private readonly ClientTransport _transport;
    private readonly Socket _socket;
    private readonly IPEndPoint _endPoint;
    private Task? _acceptLoop;
    private volatile bool _stopping;

    internal ClientListener(ClientTransport transport, IPEndPoint endPoint, TransportKind kind)
    {
        _transport = transport;
        _endPoint = endPoint;
        Kind = kind;
        _socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        if (endPoint.Address.Equals(IPAddress.IPv6Any))
        {
            // One socket for IPv4 and IPv6 clients; IPv4 peers show as ::ffff:a.b.c.d, which the
            // connection maps back to plain IPv4.
            _socket.DualMode = true;
        }
        LocalEndPoint = endPoint;
    }

    public TransportKind Kind { get; }

    /// <summary>The bound address, with the actual port when 0 was asked.</summary>
    public IPEndPoint LocalEndPoint { get; private set; }

    /// <summary>All addresses on <paramref name="port"/>: IPv6 and IPv4 on one dual-mode socket when the OS has IPv6.</summary>
    public static IPEndPoint AnyAddress(int port) =>
        Socket.OSSupportsIPv6 ? new IPEndPoint(IPAddress.IPv6Any, port) : new IPEndPoint(IPAddress.Any, port);

    internal void Start()
    {
        try
        {
            _socket.Bind(_endPoint);
            _socket.Listen(_transport.Settings.Backlog);
        }
        catch (SocketException e)
        {
            _socket.Dispose();
            throw new InvalidOperationException($"Cannot listen for {Kind} clients on {_endPoint}: {e.Message}", e);
        }
        LocalEndPoint = (IPEndPoint)_socket.LocalEndPoint!;
        TransportLog.ListenerStarted(_transport.Logger, Kind, LocalEndPoint);
        _acceptLoop = AcceptLoopAsync();
    }

    /// <summary>Stops accepting: new clients get "connection refused"; connections already open are untouched.</summary>
    public async Task StopAsync()
    {
        _stopping = true;
        _socket.Dispose();
        if (_acceptLoop is not null)
        {
            await _acceptLoop;
            TransportLog.ListenerStopped(_transport.Logger, LocalEndPoint);
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (true)
        {
            Socket accepted;
            try
            {
                accepted = await _socket.AcceptAsync();
            }
            catch (Exception) when (_stopping)
            {
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
            {
                continue;
            }
            catch (SocketException e)
            {
                TransportLog.AcceptFailed(_transport.Logger, LocalEndPoint, e.SocketErrorCode, AcceptRetryDelayMilliseconds);
                await Task.Delay(AcceptRetryDelayMilliseconds);
                continue;
            }
            _transport.Accept(accepted, Kind);
        }
    }
}
