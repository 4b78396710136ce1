using System.Net;
using ConnMgr.Core.Links;
using ConnMgr.Core.Sessions;
using ConnMgr.Core.Storage;
using Microsoft.Extensions.Logging;

namespace ConnMgr.Core;

/// <summary>Log events of the embedded core, ids 4000-4099 (the store has 4100-4199).</summary>
internal static partial class CoreLog
{
    [LoggerMessage(EventId = 4000, Level = LogLevel.Information, Message = "Embedded core for {Domain} listening for connection-manager links on {EndPoint}")]
    public static partial void Listening(ILogger logger, string domain, EndPoint endPoint);

    [LoggerMessage(EventId = 4001, Level = LogLevel.Information, Message = "Embedded core stopped")]
    public static partial void Stopped(ILogger logger);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Warning, Message = "Accepting a link failed")]
    public static partial void AcceptFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 4010, Level = LogLevel.Information, Message = "Link {Link} from {Remote} authenticated; its connection manager now has {Links} link(s)")]
    public static partial void LinkAuthenticated(ILogger logger, string link, EndPoint? remote, int links);

    [LoggerMessage(EventId = 4011, Level = LogLevel.Information, Message = "Link {Link} from {Remote} closed: {Reason} {Detail}")]
    public static partial void LinkClosed(ILogger logger, string link, EndPoint? remote, LinkCloseReason reason, string detail);

    [LoggerMessage(EventId = 4012, Level = LogLevel.Error, Message = "Link {Link} failed on unexpected input")]
    public static partial void LinkFailed(ILogger logger, string link, Exception exception);

    [LoggerMessage(EventId = 4013, Level = LogLevel.Warning, Message = "Link {Link} sent a route error for stream {StreamId}")]
    public static partial void RouteErrorReceived(ILogger logger, string link, string streamId);

    [LoggerMessage(EventId = 4014, Level = LogLevel.Warning, Message = "Link {Link} answered an IQ with an error: {Iq}")]
    public static partial void IqErrorReceived(ILogger logger, string link, string iq);

    [LoggerMessage(EventId = 4015, Level = LogLevel.Information, Message = "Connection manager {Cm} lost its last link; ending its {Sessions} session(s)")]
    public static partial void ConnectionManagerGone(ILogger logger, string cm, int sessions);

    [LoggerMessage(EventId = 4020, Level = LogLevel.Debug, Message = "Session {StreamId} created by {Cm} for {Address}")]
    public static partial void SessionCreated(ILogger logger, string streamId, string cm, string? address);

    [LoggerMessage(EventId = 4021, Level = LogLevel.Debug, Message = "Session {StreamId} authenticated as {Jid}")]
    public static partial void Authenticated(ILogger logger, string streamId, string jid);

    [LoggerMessage(EventId = 4022, Level = LogLevel.Debug, Message = "Session {StreamId} bound {Jid}")]
    public static partial void Bound(ILogger logger, string streamId, string jid);

    [LoggerMessage(EventId = 4023, Level = LogLevel.Debug, Message = "Session {StreamId} ({Jid}) ended: {Reason} {Detail}")]
    public static partial void SessionEnded(ILogger logger, string streamId, string jid, SessionEndReason reason, string detail);

    [LoggerMessage(EventId = 4024, Level = LogLevel.Error, Message = "Session {StreamId} failed while handling a stanza")]
    public static partial void SessionFailed(ILogger logger, string streamId, Exception exception);

    [LoggerMessage(EventId = 4025, Level = LogLevel.Error, Message = "Looking up credentials for session {StreamId} failed")]
    public static partial void CredentialLookupFailed(ILogger logger, string streamId, Exception exception);

    [LoggerMessage(EventId = 4026, Level = LogLevel.Warning, Message = "User {User} authenticated but has no valid JID localpart: {Reason}")]
    public static partial void UserNotAddressable(ILogger logger, string user, string reason);

    [LoggerMessage(EventId = 4027, Level = LogLevel.Debug, Message = "Session {StreamId}: undelivered message for {Owner} stored offline: {Result}")]
    public static partial void FailedDeliveryStored(ILogger logger, string streamId, string owner, OfflineStoreResult result);

    [LoggerMessage(EventId = 4028, Level = LogLevel.Information, Message = "User {User} was removed; ending {Sessions} session(s) with not-authorized")]
    public static partial void UserRemovedSessionsEnded(ILogger logger, string user, int sessions);
}
