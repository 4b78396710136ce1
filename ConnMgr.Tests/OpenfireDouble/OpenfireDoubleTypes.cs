using System.Xml.Linq;

namespace ConnMgr.Tests.OpenfireDouble;

/// <summary>Progress of a client session on the server (spec 5.4: "pre-authenticated" until resource binding).</summary>
public enum ClientSessionState
{
    PreAuthenticated,
    Authenticated,
    Bound,
}

/// <summary>Why a link ended.</summary>
public enum LinkCloseReason
{
    None,

    /// <summary>The CM sent <c>&lt;/stream:stream&gt;</c>.</summary>
    CmClosedStream,

    /// <summary>The CM sent a <c>&lt;stream:error&gt;</c>.</summary>
    CmStreamError,

    /// <summary>The CM closed or reset the TCP connection.</summary>
    CmClosedConnection,

    /// <summary>The double wrote a stream error and closed (see <see cref="LinkInfo.CloseCondition"/>).</summary>
    StreamErrorSent,

    /// <summary>The double dropped the TCP connection without writing (invalid header <c>to</c>, <see cref="OpenfireDoubleServer.DropLink"/>, write stall).</summary>
    Dropped,

    /// <summary>Disposal of the double.</summary>
    Disposed,
}

/// <summary>One decoded top-level item received on a link, in arrival order across all links.</summary>
/// <param name="Sequence">Position in the double's log (shared with <see cref="SentFrame"/>).</param>
/// <param name="Link">Link JID, or <c>#N</c> before the link's header arrived.</param>
/// <param name="Xml">The text as received.</param>
/// <param name="Element">
/// The parsed element with the content namespaces (<c>jabber:connectionmanager</c>, <c>jabber:client</c>,
/// <c>jabber:server</c>) removed, as Openfire's reader does (spec 6.1); null for stream headers and
/// <c>&lt;/stream:stream&gt;</c>.
/// </param>
public sealed record ReceivedElement(long Sequence, string Link, string Xml, XElement? Element)
{
    public string? Name => Element?.Name.LocalName;

    public string? Attr(string name) => Element?.Attribute(name)?.Value;
}

/// <summary>One write of the double on a link (heartbeats included).</summary>
public sealed record SentFrame(long Sequence, string Link, string Text);

/// <summary>Snapshot of one link (open or closed).</summary>
public sealed record LinkInfo(
    int Number,
    string? Jid,
    string? CmDomain,
    string? StreamId,
    bool IsInPool,
    bool IsAuthenticated,
    bool IsEncrypted,
    bool IsOpen,
    LinkCloseReason CloseReason,
    string? CloseCondition);

/// <summary>Snapshot of one client session in the server's table.</summary>
/// <param name="IsGhost">The session's CM has no link left (5.x last-link behaviour, spec 0.1 point 2).</param>
public sealed record SessionInfo(
    string StreamId,
    string CmDomain,
    ClientSessionState State,
    string? Username,
    string? BoundJid,
    string? HostName,
    string? HostAddress,
    int AuthFailures,
    bool IsAvailable,
    bool IsGhost);

/// <summary>A message the server took for offline storage (from a <c>failed</c> IQ, spec 5.5, or for a user with no session).</summary>
public sealed record StoredMessage(string StreamId, string Xml, bool FromFailedIq);

/// <summary>A client session the server ended, and how.</summary>
/// <param name="Reason">e.g. <c>cm-close</c>, <c>conflict</c>, <c>auth-retries</c>, <c>pre-auth-timeout</c>, <c>admin</c>, <c>last-link</c>.</param>
/// <param name="CloseIqSent">Whether a server-initiated <c>&lt;close/&gt;</c> IQ was written (spec 5.4, 0.1 point 1).</param>
public sealed record EndedSession(string StreamId, string CmDomain, string Reason, bool CloseIqSent);

/// <summary>Counters of what the double did, for assertions.</summary>
public sealed record OpenfireDoubleCounters(
    long ConnectionsAccepted,
    long LinksJoinedPool,
    long HandshakesSucceeded,
    long HandshakesFailed,
    long LinksClosed,
    long SessionsCreated,
    long SessionsRefused,
    long SessionsEnded,
    long RoutesReceived,
    long ElementRoutesSent,
    long RawRoutesSent,
    long RouteErrorsSent,
    long IqErrorsSent,
    long CloseIqsSent,
    long HeartbeatsSent,
    long DeliveriesDropped,
    long SaslSuccesses,
    long SaslFailures);
