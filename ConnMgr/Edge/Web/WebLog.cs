using Microsoft.Extensions.Logging;

namespace ConnMgr.Edge.Web;

internal static partial class WebLog
{
    [LoggerMessage(1200, LogLevel.Debug, "Web session {Id} ({Transport}) from {Address} opened")]
    public static partial void Opened(ILogger logger, long id, string transport, System.Net.IPAddress address);

    [LoggerMessage(1201, LogLevel.Debug, "Web session {Id} ended: {Reason}")]
    public static partial void Closed(ILogger logger, long id, Transport.CloseReason reason);

    [LoggerMessage(1202, LogLevel.Debug, "Web session {Id}: bad message from the client: {Text}")]
    public static partial void BadMessage(ILogger logger, long id, string text);

    [LoggerMessage(1203, LogLevel.Error, "Web session {Id}: the stream's output cannot be framed: {Text}")]
    public static partial void OutputUnframed(ILogger logger, long id, string? text);

    [LoggerMessage(1204, LogLevel.Information, "Web request refused: origin {Origin} is not in Edge:HttpAllowedOrigins")]
    public static partial void OriginRefused(ILogger logger, string origin);

    [LoggerMessage(1205, LogLevel.Error, "Web session {Id} failed")]
    public static partial void SessionFailed(ILogger logger, Exception exception, long id);

    [LoggerMessage(1206, LogLevel.Debug, "Web session refused: Edge:MaxConnections client connections are open")]
    public static partial void Refused(ILogger logger);
}
