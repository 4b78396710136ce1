using Microsoft.Extensions.Logging;

namespace ConnMgr.Edge.Upstream;

/// <summary>
/// Log events of the upstream pool, ids 3000-3999 (stable: operators alert on them). Link
/// lifecycle and operator mistakes are Information or above; anything that can happen once
/// per stanza or per session is Debug.
/// </summary>
internal static partial class UpstreamLog
{
    /// <summary>Elements quoted in logs are cut here: one may be up to 1 MiB (spec 2).</summary>
    private const int ExcerptBytes = 256;

    /// <summary>The start of an element, for a log line.</summary>
    public static string Excerpt(ReadOnlySpan<byte> element)
        => element.Length <= ExcerptBytes
            ? System.Text.Encoding.UTF8.GetString(element)
            : System.Text.Encoding.UTF8.GetString(element[..ExcerptBytes]) + "...";

    // ---- link lifecycle, 3000-3019 ----

    [LoggerMessage(3000, LogLevel.Debug, "Link {LinkJid}: connecting to {Host}:{Port}")]
    public static partial void LinkConnecting(ILogger logger, string linkJid, string host, int port);

    [LoggerMessage(3001, LogLevel.Debug, "Link {LinkJid}: TLS established ({Protocol}, {CipherSuite})")]
    public static partial void LinkTlsEstablished(ILogger logger, string linkJid, string protocol, string cipherSuite);

    [LoggerMessage(3002, LogLevel.Information, "Link {LinkJid} is up ({LinksUp} links up)")]
    public static partial void LinkReady(ILogger logger, string linkJid, int linksUp);

    [LoggerMessage(3003, LogLevel.Warning, "Link {LinkJid} is down ({Reason}); {LinksUp} links up, {Moved} sessions moved to other links, {Lost} lost")]
    public static partial void LinkDown(ILogger logger, string linkJid, LinkCloseReason reason, int linksUp, int moved, int lost);

    [LoggerMessage(3004, LogLevel.Debug, "Link {LinkJid} ended ({Reason}); reconnecting in {DelayMs} ms")]
    public static partial void LinkReconnecting(ILogger logger, string linkJid, LinkCloseReason reason, long delayMs);

    [LoggerMessage(3005, LogLevel.Warning, "Link {LinkJid}: {Reason}: {Message}")]
    public static partial void LinkIoFailed(ILogger logger, string linkJid, LinkCloseReason reason, string message);

    [LoggerMessage(3006, LogLevel.Error, "Link {LinkJid} failed")]
    public static partial void LinkFailed(ILogger logger, string linkJid, Exception exception);

    [LoggerMessage(3007, LogLevel.Debug, "Link {LinkJid}: the server closed the stream")]
    public static partial void LinkEndedByServer(ILogger logger, string linkJid);

    [LoggerMessage(3008, LogLevel.Warning, "Link {LinkJid}: nothing read for {Seconds} s (the server sends whitespace every 30 s); closing it")]
    public static partial void LinkSilent(ILogger logger, string linkJid, double seconds);

    [LoggerMessage(3009, LogLevel.Warning, "Link {LinkJid}: {PendingBytes} bytes could not be sent for {Seconds} s; closing it")]
    public static partial void LinkStalled(ILogger logger, string linkJid, long pendingBytes, double seconds);

    [LoggerMessage(3010, LogLevel.Warning, "Link {LinkJid}: not authenticated within {Seconds} s; closing it")]
    public static partial void LinkNegotiationTimeout(ILogger logger, string linkJid, double seconds);

    [LoggerMessage(3011, LogLevel.Information, "Configuration for clients from the server (link {LinkJid}): {Summary}")]
    public static partial void ConfigurationReceived(ILogger logger, string linkJid, string summary);

    [LoggerMessage(3012, LogLevel.Information, "Stopping upstream: closed {Sessions} sessions, closing links")]
    public static partial void PoolStopping(ILogger logger, int sessions);

    [LoggerMessage(3013, LogLevel.Error, "No link to the server is left: {Sessions} client sessions were ended")]
    public static partial void AllLinksDown(ILogger logger, int sessions);

    [LoggerMessage(3014, LogLevel.Warning, "The server is shutting down (system-shutdown on link {LinkJid}): ending {Sessions} client sessions and reconnecting")]
    public static partial void ServerShuttingDown(ILogger logger, string linkJid, int sessions);

    [LoggerMessage(3015, LogLevel.Information, "Link {LinkJid}: sent close for {Count} sessions lost with the previous links, so the server drops them")]
    public static partial void OrphansClosed(ILogger logger, string linkJid, int count);

    [LoggerMessage(3016, LogLevel.Debug, "Link {LinkJid} closed")]
    public static partial void LinkClosed(ILogger logger, string linkJid);

    // ---- the server refusing a link: what the operator must fix, 3020-3039 ----

    [LoggerMessage(3020, LogLevel.Error, "Link {LinkJid}: the server refused the handshake (not-authorized{Text}). Upstream:Secret must equal the server's shared secret (Openfire: xmpp.multiplex.defaultSecret); if the server requires TLS on the link, set Upstream:LinkTls")]
    public static partial void HandshakeNotAuthorized(ILogger logger, string linkJid, string text);

    [LoggerMessage(3021, LogLevel.Warning, "Link {LinkJid}: the server already has a link with this name (conflict{Text}): another edge uses the same Edge:Name, or a link of a previous run has not timed out yet; retrying under a new link name")]
    public static partial void LinkJidConflict(ILogger logger, string linkJid, string text);

    [LoggerMessage(3022, LogLevel.Error, "Link {LinkJid}: the server refused the link with internal-server-error{Text}; Openfire does this when it has no shared secret: set xmpp.multiplex.defaultSecret on the server")]
    public static partial void ServerHasNoSecret(ILogger logger, string linkJid, string text);

    [LoggerMessage(3023, LogLevel.Error, "Link {LinkJid}: the server refused the link name (bad-format{Text}); Edge:Name must be a plain domain-like name of a-z, 0-9, '.' and '-'")]
    public static partial void LinkJidRefused(ILogger logger, string linkJid, string text);

    [LoggerMessage(3024, LogLevel.Error, "Link {LinkJid}: {Host}:{Port} refused the connection-manager stream (invalid-namespace{Text}); is it the server's connection-manager port (Openfire 5262, or 5263 with Upstream:DirectTls) and not its client port?")]
    public static partial void LinkNamespaceRefused(ILogger logger, string linkJid, string host, int port, string text);

    [LoggerMessage(3025, LogLevel.Error, "Link {LinkJid}: the server refused the link ({Condition}{Text})")]
    public static partial void LinkRefused(ILogger logger, string linkJid, string condition, string text);

    [LoggerMessage(3026, LogLevel.Error, "Link {LinkJid}: the server requires TLS on the link but Upstream:LinkTls is Never")]
    public static partial void LinkTlsRequiredByServer(ILogger logger, string linkJid);

    [LoggerMessage(3027, LogLevel.Error, "Link {LinkJid}: Upstream:LinkTls is Required but the server does not offer STARTTLS (Openfire needs a certificate in its identity store and xmpp.multiplex.tls.policy other than disabled); or use Upstream:DirectTls on port 5263")]
    public static partial void LinkTlsNotOffered(ILogger logger, string linkJid);

    [LoggerMessage(3028, LogLevel.Error, "Link {LinkJid}: TLS with the server failed; check the server's certificate against Upstream:Host (or the configured TLS server name)")]
    public static partial void LinkTlsFailed(ILogger logger, string linkJid, Exception exception);

    [LoggerMessage(3029, LogLevel.Error, "Link {LinkJid}: the server answered STARTTLS with failure")]
    public static partial void LinkTlsRefused(ILogger logger, string linkJid);

    [LoggerMessage(3030, LogLevel.Error, "Link {LinkJid}: the server's stream header has no id, so no handshake is possible")]
    public static partial void LinkNoStreamId(ILogger logger, string linkJid);

    [LoggerMessage(3031, LogLevel.Warning, "Link {LinkJid}: the server closed the link with a stream error ({Condition}{Text})")]
    public static partial void LinkStreamError(ILogger logger, string linkJid, string condition, string text);

    [LoggerMessage(3032, LogLevel.Error, "Link {LinkJid}: unreadable data from the server ({Condition}: {Text}); closing the link")]
    public static partial void LinkUnreadable(ILogger logger, string linkJid, string condition, string text);

    // ---- elements and sessions, 3040-3069 ----

    [LoggerMessage(3040, LogLevel.Warning, "Link {LinkJid}: ignored an unexpected element from the server: {Element}")]
    public static partial void LinkUnexpectedElement(ILogger logger, string linkJid, string element);

    [LoggerMessage(3041, LogLevel.Warning, "Link {LinkJid}: ignored a malformed element from the server: {Message}")]
    public static partial void LinkMalformedElement(ILogger logger, string linkJid, string message);

    [LoggerMessage(3042, LogLevel.Warning, "Link {LinkJid}: ignored a route without streamid")]
    public static partial void RouteWithoutStreamId(ILogger logger, string linkJid);

    [LoggerMessage(3043, LogLevel.Warning, "Link {LinkJid}: ignored a route for stream ID '{StreamId}', which this edge cannot have issued")]
    public static partial void RouteForForeignStreamId(ILogger logger, string linkJid, string streamId);

    [LoggerMessage(3044, LogLevel.Debug, "Session {StreamId} unknown here (message: {IsMessage}); sending close: {SendClose}")]
    public static partial void GhostRoute(ILogger logger, string streamId, bool isMessage, bool sendClose);

    [LoggerMessage(3045, LogLevel.Warning, "Session {StreamId}: the server rejected a routed stanza ({Condition} {AppCondition}); it is lost")]
    public static partial void RouteRejected(ILogger logger, string streamId, string condition, string? appCondition);

    [LoggerMessage(3046, LogLevel.Debug, "Route error {Condition} for unknown session {StreamId}")]
    public static partial void RouteErrorForUnknownSession(ILogger logger, string streamId, string condition);

    [LoggerMessage(3047, LogLevel.Debug, "Session {StreamId}: the server no longer knows it (item-not-found)")]
    public static partial void SessionGone(ILogger logger, string streamId);

    [LoggerMessage(3048, LogLevel.Debug, "Session {StreamId}: the server closed it")]
    public static partial void SessionClosedByServer(ILogger logger, string streamId);

    [LoggerMessage(3049, LogLevel.Debug, "Session {StreamId}: stream error {Condition} from the server")]
    public static partial void SessionStreamError(ILogger logger, string streamId, string condition);

    [LoggerMessage(3050, LogLevel.Debug, "Session {StreamId}: the server refused the create ({Condition})")]
    public static partial void SessionRefused(ILogger logger, string streamId, string condition);

    [LoggerMessage(3051, LogLevel.Debug, "Session {StreamId}: ignored an empty route")]
    public static partial void EmptyRoute(ILogger logger, string streamId);

    [LoggerMessage(3052, LogLevel.Warning, "Session {StreamId}: dropped a raw-text route that is not well-formed XML: {Detail}")]
    public static partial void RawTextInvalid(ILogger logger, string streamId, string detail);

    [LoggerMessage(3053, LogLevel.Warning, "Link {LinkJid}: answered an IQ this edge does not handle: {Iq}")]
    public static partial void UnexpectedIq(ILogger logger, string linkJid, string iq);

    [LoggerMessage(3054, LogLevel.Warning, "Link {LinkJid}: IQ error {Condition} {AppCondition} from the server: {Iq}")]
    public static partial void IqErrorFromServer(ILogger logger, string linkJid, string condition, string? appCondition, string iq);

    [LoggerMessage(3055, LogLevel.Warning, "Session {StreamId}: its owner threw; closing the session")]
    public static partial void OwnerFailed(ILogger logger, string streamId, Exception exception);
}
