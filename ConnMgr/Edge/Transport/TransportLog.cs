using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace ConnMgr.Edge.Transport;

/// <summary>Log events of the client transport: ids 1000-1099 (1090s: heartbeat).</summary>
internal static partial class TransportLog
{
    [LoggerMessage(EventId = 1000, Level = LogLevel.Information, Message = "Listening for {Transport} clients on {EndPoint}")]
    public static partial void ListenerStarted(ILogger logger, TransportKind transport, EndPoint endPoint);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Stopped listening on {EndPoint}")]
    public static partial void ListenerStopped(ILogger logger, EndPoint endPoint);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning, Message = "Accept on {EndPoint} failed ({Error}); retrying in {DelayMilliseconds} ms")]
    public static partial void AcceptFailed(ILogger logger, EndPoint endPoint, SocketError error, int delayMilliseconds);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Warning, Message = "Connection cap of {MaxConnections} reached: {Rejected} clients turned away since the last such warning")]
    public static partial void ConnectionCapReached(ILogger logger, int maxConnections, long rejected);

    [LoggerMessage(EventId = 1016, Level = LogLevel.Debug, Message = "Over the connection cap: closing connection {ConnectionId} from {RemoteEndPoint}")]
    public static partial void ConnectionRejected(ILogger logger, long connectionId, IPEndPoint remoteEndPoint);

    [LoggerMessage(EventId = 1017, Level = LogLevel.Error, Message = "Closing connection {ConnectionId} failed")]
    public static partial void CloseFailed(ILogger logger, Exception exception, long connectionId);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Debug, Message = "Connection {ConnectionId} from {RemoteEndPoint} accepted on {Transport} port {LocalPort}")]
    public static partial void ConnectionAccepted(ILogger logger, long connectionId, IPEndPoint remoteEndPoint, TransportKind transport, int localPort);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Debug, Message = "Connection {ConnectionId} from {RemoteEndPoint} closed: {Reason}, {BytesReceived} bytes in, {BytesSent} bytes out")]
    public static partial void ConnectionClosed(ILogger logger, long connectionId, IPEndPoint remoteEndPoint, CloseReason reason, long bytesReceived, long bytesSent);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Error, Message = "The handler of connection {ConnectionId} failed")]
    public static partial void HandlerFailed(ILogger logger, Exception exception, long connectionId);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Information, Message = "Invalid PROXY header on connection {ConnectionId} from {RemoteEndPoint}: {Problem}")]
    public static partial void ProxyHeaderInvalid(ILogger logger, long connectionId, IPEndPoint remoteEndPoint, string problem);

    [LoggerMessage(EventId = 1008, Level = LogLevel.Debug, Message = "TLS handshake failed on connection {ConnectionId} from {RemoteEndPoint}: {Problem}")]
    public static partial void TlsHandshakeFailed(ILogger logger, long connectionId, IPEndPoint remoteEndPoint, string problem);

    [LoggerMessage(EventId = 1009, Level = LogLevel.Information, Message = "Connection {ConnectionId} from {RemoteEndPoint} cut: it does not read and its pending output would exceed {MaxPendingBytes} bytes")]
    public static partial void OutputOverflow(ILogger logger, long connectionId, IPEndPoint remoteEndPoint, long maxPendingBytes);

    [LoggerMessage(EventId = 1010, Level = LogLevel.Information, Message = "Shutting down: draining {Count} client connections for up to {DrainTimeout}")]
    public static partial void Draining(ILogger logger, int count, TimeSpan drainTimeout);

    [LoggerMessage(EventId = 1011, Level = LogLevel.Warning, Message = "Drain deadline passed: aborting {Count} client connections")]
    public static partial void Aborting(ILogger logger, int count);

    [LoggerMessage(EventId = 1012, Level = LogLevel.Error, Message = "{Count} client connections were still running {Grace} after being aborted")]
    public static partial void ConnectionsStuck(ILogger logger, int count, TimeSpan grace);

    [LoggerMessage(EventId = 1013, Level = LogLevel.Warning, Message = "Unexpected I/O failure on connection {ConnectionId}")]
    public static partial void IoFailed(ILogger logger, Exception exception, long connectionId);

    [LoggerMessage(EventId = 1014, Level = LogLevel.Error, Message = "Heartbeat of connection {ConnectionId} failed")]
    public static partial void HeartbeatFailed(ILogger logger, Exception exception, long connectionId);

    [LoggerMessage(EventId = 1015, Level = LogLevel.Error, Message = "Cancelling the stopping token threw")]
    public static partial void StoppingCallbackFailed(ILogger logger, Exception exception);
}
