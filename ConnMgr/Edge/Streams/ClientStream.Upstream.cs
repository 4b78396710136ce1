using ConnMgr.Edge.Transport;
using ConnMgr.Edge.Upstream;
using ConnMgr.Protocol.Xml;

namespace ConnMgr.Edge.Streams;

/// <summary>
/// The stream as the upstream pool and the heartbeat see it. These run on link read loops and on
/// the heartbeat thread: they never wait, never touch the scanner or the staged output, and hand
/// anything that changes the stream's phase to the receive loop as a signal.
/// </summary>
internal sealed partial class ClientStream
{
    public void OnSessionCreated()
    {
    }

    /// <summary>
    /// The core refused the session. Openfire does it for an address on its block list
    /// (<c>xmpp.client.login.blocked</c>, spec 5.2) and answers a blocked client of its own with
    /// <c>not-authorized</c> (LocalClientSession.createSession): the edge says the same.
    /// </summary>
    public void OnSessionRefused(StanzaErrorCondition condition)
    {
        StreamLog.SessionRefused(_handler.Logger, _connection.Id, condition.ToElementName());
        RequestClose(condition == StanzaErrorCondition.NotAllowed
            ? new CloseRequest(StreamErrorCondition.NotAuthorized, CloseReason.CoreRefused, "connections from your address are not allowed")
            : new CloseRequest(StreamErrorCondition.InternalServerError, CloseReason.CoreRefused, null));
    }

    /// <summary>
    /// One element for the client (spec 6.2), written as it came. A stanza that would take the
    /// client's pending output over its cap is not queued: a client that does not read must not
    /// stall the shared link (spec 7.1, Jive's <c>session.stalled.cap</c>), so it is cut, with the
    /// cap named in a <c>policy-violation</c> it may never read, and the message goes back to the
    /// core for offline storage (spec 5.5).
    /// </summary>
    public void Deliver(ReadOnlySpan<byte> stanza, DeliveryKind kind)
    {
        if (Volatile.Read(ref _closeRequest) is not null)
        {
            ReturnUndelivered(stanza, kind);
            return;
        }
        switch (kind)
        {
            case DeliveryKind.SaslSuccess:
                // Before the bytes go out: the client's restart cannot reach the loop before the signal.
                Interlocked.Or(ref _signals, SaslSucceededSignal);
                ReleaseIpSlot();
                _handler.Metrics?.LoginSucceeded();
                break;
            case DeliveryKind.SaslFailure:
                _handler.Metrics?.LoginFailed();
                break;
            case DeliveryKind.Stanza when Volatile.Read(ref _pendingIqId) is { } pendingId:
                if (AnswersPendingIq(stanza, pendingId))
                {
                    OnNegotiationDone();
                }
                break;
        }

        if (_connection.PendingOutputBytes + stanza.Length > _handler.Settings.MaxPendingOutputBytes - StreamSettings.OutputReserveBytes)
        {
            StreamLog.OutputCapReached(_handler.Logger, _connection.Id, _handler.Settings.MaxPendingOutputBytes);
            // <failed/> first: the loop, once woken, closes the session, and the core only takes
            // a failed message for a session it still has (spec 5.5).
            ReturnUndelivered(stanza, kind);
            RequestClose(new CloseRequest(StreamErrorCondition.PolicyViolation, CloseReason.OutputOverflow,
                "too much data waiting for you to read it (Edge:MaxPendingOutputBytes)"));
            return;
        }
        if (!_connection.TryWrite(stanza))
        {
            ReturnUndelivered(stanza, kind);
            return;
        }
        if (kind == DeliveryKind.Stanza)
        {
            _handler.Metrics?.StanzaSent();
        }
    }

    /// <summary>
    /// The core bound a resource (or accepted an iq-auth login, which binds too): the stream is
    /// established. Done here, on the link's thread, because an idle client sends nothing more that
    /// would let the loop notice; the loop moves its phase on at its next element.
    /// </summary>
    private void OnNegotiationDone()
    {
        Volatile.Write(ref _pendingIqId, null);
        Volatile.Write(ref _negotiationDeadline, 0);
        ReleaseIpSlot();
        Interlocked.Or(ref _signals, PendingIqDoneSignal);
        if (Interlocked.Exchange(ref _established, 1) == 0)
        {
            _handler.Metrics?.ConnectionEstablished(_connection.MetricsTransport);
        }
    }

    /// <summary>The core's result for the client's bind or iq-auth request.</summary>
    private static bool AnswersPendingIq(ReadOnlySpan<byte> stanza, string pendingId)
    {
        if (!XmlElementReader.TryCreate(stanza, default, out var iq) || !iq.LocalName.SequenceEqual("iq"u8))
        {
            return false;
        }
        return iq.AttributeEquals("type"u8, "result"u8) && iq.AttributeEquals("id"u8, pendingId);
    }

    /// <summary>
    /// A message the client will not get goes back to the core with <c>failed</c>, for offline
    /// storage (spec 5.5), while the session still exists there; other stanzas are dropped, as
    /// Jive's CM did.
    /// </summary>
    private void ReturnUndelivered(ReadOnlySpan<byte> stanza, DeliveryKind kind)
    {
        if (kind != DeliveryKind.Stanza || _session is not { IsClosed: false } session
            || !XmlElementReader.TryCreate(stanza, default, out var element) || !element.LocalName.SequenceEqual("message"u8))
        {
            return;
        }
        _ = session.SendFailedAsync(stanza);
        StreamLog.MessageReturned(_handler.Logger, _connection.Id);
    }

    /// <summary>
    /// A stream error from the core for this client, e.g. <c>conflict</c> when another login took
    /// the resource (spec 0.1 point 1): written by the edge with the client stream's own prefix,
    /// never the link's bytes, then the stream ends.
    /// </summary>
    public void OnStreamError(StreamErrorCondition condition, string? text)
    {
        var reason = condition switch
        {
            StreamErrorCondition.Conflict => CloseReason.SessionReplaced,
            StreamErrorCondition.SystemShutdown => CloseReason.ServerShutdown,
            _ => CloseReason.CoreClosed,
        };
        if (condition == StreamErrorCondition.None)
        {
            condition = StreamErrorCondition.UndefinedCondition;
        }
        RequestClose(new CloseRequest(condition, reason, text));
    }

    /// <summary>The core ended the session without a stream error: a plain stream end.</summary>
    public void OnClosedByServer() => RequestClose(new CloseRequest(StreamErrorCondition.None, CloseReason.CoreClosed, null));

    public void OnUpstreamLost() => RequestClose(CloseRequest.UpstreamLost);

    /// <summary>
    /// Every second, on the heartbeat thread: shutdown, the negotiation deadline, then for an established
    /// stream the idle check. A client silent for the idle timeout gets an XEP-0199 ping; any byte
    /// from it (the answer, a stanza, a whitespace keepalive) proves it alive, and a client still
    /// silent after <see cref="StreamSettings.IdlePingGrace"/> is closed with <c>connection-timeout</c>.
    /// </summary>
    public void OnHeartbeat(ClientConnection connection, long timestamp) => OnHeartbeat(timestamp);

    /// <summary>The heartbeat hook for any connection (a web session ticks its stream itself).</summary>
    internal void OnHeartbeat(long timestamp)
    {
        var connection = _connection;
        if (_handler.Metrics is { } metrics)
        {
            ReportCounters(metrics, final: false);
        }
        if (Volatile.Read(ref _closeRequest) is not null)
        {
            return;
        }
        if (_handler.IsStopping)
        {
            RequestClose(CloseRequest.Shutdown);
            return;
        }
        var deadline = Volatile.Read(ref _negotiationDeadline);
        if (deadline != 0)
        {
            if (timestamp >= deadline)
            {
                StreamLog.NegotiationTimedOut(_handler.Logger, connection.Id);
                RequestClose(CloseRequest.NegotiationTimeout);
            }
            return;
        }
        if (_handler.IdleTicks == 0)
        {
            return;
        }
        if (_pingSentAt == 0)
        {
            if (timestamp - connection.LastReceiveTimestamp >= _handler.IdleTicks && connection.TryWrite(_handler.PingBytes))
            {
                _bytesAtPing = connection.BytesReceived;
                _pingSentAt = timestamp;
            }
        }
        else if (connection.BytesReceived != _bytesAtPing)
        {
            _pingSentAt = 0;
        }
        else if (timestamp - _pingSentAt >= _handler.PingGraceTicks)
        {
            StreamLog.IdleTimedOut(_handler.Logger, connection.Id);
            RequestClose(CloseRequest.IdleTimeout);
        }
    }
}
