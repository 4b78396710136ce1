using System.Net;
using System.Security.Authentication;
using Microsoft.Extensions.Logging;

namespace ConnMgr.Edge.Streams;

/// <summary>
/// Log events of the client stream layer, 2000-2099. The transport logs every connection's close
/// with its reason (1000s); these say what happened on the XMPP stream.
/// </summary>
internal static partial class StreamLog
{
    [LoggerMessage(2000, LogLevel.Debug, "Client {ConnectionId}: stream error {Condition} ({Text})")]
    public static partial void StreamError(ILogger logger, long connectionId, string condition, string? text);

    [LoggerMessage(2001, LogLevel.Debug, "Client {ConnectionId}: bad XML, {Condition}: {Text}")]
    public static partial void BadXml(ILogger logger, long connectionId, string condition, string? text);

    [LoggerMessage(2002, LogLevel.Debug, "Client {ConnectionId}: TLS established ({Protocol})")]
    public static partial void TlsEstablished(ILogger logger, long connectionId, SslProtocols protocol);

    [LoggerMessage(2003, LogLevel.Debug, "Client {ConnectionId}: stanza refused locally with {Condition}")]
    public static partial void StanzaRefused(ILogger logger, long connectionId, string condition);

    [LoggerMessage(2004, LogLevel.Debug, "Client {ConnectionId} closed its stream with an error: {Error}")]
    public static partial void ClientStreamError(ILogger logger, long connectionId, string error);

    [LoggerMessage(2005, LogLevel.Information, "Client {ConnectionId} from {Address} refused: {Count} unauthenticated connections from that address already (Edge:MaxUnauthenticatedPerIp)")]
    public static partial void PerIpLimit(ILogger logger, long connectionId, IPAddress address, int count);

    [LoggerMessage(2006, LogLevel.Information, "Client {ConnectionId}: the core refused the session ({Condition})")]
    public static partial void SessionRefused(ILogger logger, long connectionId, string condition);

    [LoggerMessage(2007, LogLevel.Information, "Client {ConnectionId} cut: its pending output would exceed {Limit} bytes (Edge:MaxPendingOutputBytes)")]
    public static partial void OutputCapReached(ILogger logger, long connectionId, long limit);

    [LoggerMessage(2008, LogLevel.Debug, "Client {ConnectionId}: undelivered message returned to the core for offline storage")]
    public static partial void MessageReturned(ILogger logger, long connectionId);

    [LoggerMessage(2009, LogLevel.Debug, "Client {ConnectionId}: negotiation not done in time (Edge:NegotiationTimeoutSeconds)")]
    public static partial void NegotiationTimedOut(ILogger logger, long connectionId);

    [LoggerMessage(2010, LogLevel.Debug, "Client {ConnectionId}: no answer to the idle ping (Edge:IdleTimeoutSeconds)")]
    public static partial void IdleTimedOut(ILogger logger, long connectionId);

    [LoggerMessage(2011, LogLevel.Error, "Client {ConnectionId}: the stream failed")]
    public static partial void StreamFailed(ILogger logger, Exception exception, long connectionId);

    [LoggerMessage(2012, LogLevel.Error, "Client {ConnectionId}: an element the scanner accepted could not be read: {Message}")]
    public static partial void ReaderDisagrees(ILogger logger, long connectionId, string message);
}
