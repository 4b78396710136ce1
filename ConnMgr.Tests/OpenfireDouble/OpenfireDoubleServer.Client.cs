using System.Xml.Linq;

namespace ConnMgr.Tests.OpenfireDouble;

/// <summary>
/// The c2s server behind the link: what Openfire does with the stanzas a CM routes for its clients
/// (spec 6.1.1, 6.2, 7.3), reduced to what a login and a chat between sessions need.
/// </summary>
public sealed partial class OpenfireDoubleServer
{
    private static readonly XName s_bind = XName.Get("bind", DoubleWire.Bind);
    private static readonly XName s_session = XName.Get("session", DoubleWire.Session);
    private static readonly XName s_ping = XName.Get("ping", DoubleWire.Ping);

    /// <summary>Dispatch by local name only (spec 0.1 point 4); false = not a stanza Openfire accepts (→ unknown-stanza).</summary>
    private async Task<bool> RouteClientElementAsync(DoubleSession session, XElement stanza)
    {
        switch (stanza.Name.LocalName)
        {
            case "auth":
            case "response":
                await HandleSaslAsync(session, stanza);
                return true;
            case "iq":
                await HandleClientIqAsync(session, stanza);
                return true;
            case "message":
                await HandleClientMessageAsync(session, stanza);
                return true;
            case "presence":
                await HandleClientPresenceAsync(session, stanza);
                return true;
            default:
                return false;
        }
    }

    /// <summary>SASL (spec 6.1.1 and 0.1 point 4); every reply is a raw-text route (spec 6.2).</summary>
    private async Task HandleSaslAsync(DoubleSession session, XElement element)
    {
        SaslStep step;
        if (element.Name.NamespaceName != DoubleWire.Sasl)
        {
            step = SaslStep.Fail();
        }
        else if (element.Name.LocalName == "auth")
        {
            string? mechanism = ((string?)element.Attribute("mechanism"))?.ToUpperInvariant();
            SaslExchange? exchange = mechanism is not null && _options.Mechanisms.Contains(mechanism, StringComparer.OrdinalIgnoreCase)
                ? SaslExchange.Create(mechanism, _users)
                : null;
            session.Sasl = exchange;
            step = exchange is null ? SaslStep.Fail("invalid-mechanism") : Evaluate(exchange, element);
        }
        else
        {
            // A response with no auth before it fails like any other SASL error (spec 0.1 point 4).
            step = session.Sasl is null ? SaslStep.Fail() : Evaluate(session.Sasl, element);
        }

        switch (step.Kind)
        {
            case SaslStepKind.Challenge:
                await DeliverRawTextAsync(session.CmDomain, session.StreamId, SaslElement("challenge", step.Data));
                break;

            case SaslStepKind.Success:
                session.Sasl = null;
                lock (_gate)
                {
                    // ANONYMOUS: Openfire makes up the node part (random, like its resources).
                    session.Username = step.Username ?? DoubleWire.RandomBase36(10);
                    session.State = ClientSessionState.Authenticated;
                }

                Count(Counter.SaslSuccesses);
                await DeliverRawTextAsync(session.CmDomain, session.StreamId, SaslElement("success", step.Data));
                break;

            default:
                session.Sasl = null;
                int failures;
                lock (_gate)
                {
                    failures = ++session.AuthFailures;
                }

                Count(Counter.SaslFailures);
                await DeliverRawTextAsync(session.CmDomain, session.StreamId, $"<failure xmlns=\"{DoubleWire.Sasl}\"><{step.Condition}/></failure>");

                // xmpp.auth.retries (spec 5.4): the failure goes out first, then the session is closed.
                if (failures >= _options.AuthRetries)
                {
                    await EndSessionAsync(session, "auth-retries", serverInitiated: true);
                }

                break;
        }

        Notify();
    }

    private static SaslStep Evaluate(SaslExchange exchange, XElement element)
    {
        // Empty text and "=" both mean zero-length data (RFC 6120 6.4.2).
        string text = element.Value.Trim();
        if (text.Length == 0 || text == "=")
        {
            return exchange.Evaluate([]);
        }

        try
        {
            return exchange.Evaluate(Convert.FromBase64String(text));
        }
        catch (FormatException)
        {
            return SaslStep.Fail("incorrect-encoding");
        }
    }

    /// <summary>dom4j's <c>asXML()</c> of a SASL element: self-closed without data, <c>=</c> for zero-length data (spec 7.3).</summary>
    private static string SaslElement(string name, byte[]? data) => data is null
        ? $"<{name} xmlns=\"{DoubleWire.Sasl}\"/>"
        : $"<{name} xmlns=\"{DoubleWire.Sasl}\">{(data.Length == 0 ? "=" : Convert.ToBase64String(data))}</{name}>";

    /// <summary>RFC 6120 7.1 as Openfire applies it ([S28]): before binding, only the server itself (or no <c>to</c>) may be addressed.</summary>
    private bool IsPreBindViolation(DoubleSession session, string? to)
    {
        if (session.State == ClientSessionState.Bound || to is null)
        {
            return false;
        }

        return DoubleWire.SplitJid(to) is not { Local: null, Resource: null } server || server.Domain != _domain;
    }

    private async Task HandleClientIqAsync(DoubleSession session, XElement iq)
    {
        string? to = (string?)iq.Attribute("to");
        if (IsPreBindViolation(session, to))
        {
            // An IQ to anyone else before binding closes the session with not-authorized (spec 6.1.1).
            await EndSessionAsync(session, "pre-bind-iq", serverInitiated: true, streamError: "not-authorized");
            return;
        }

        // Anti-spoofing: from is always the session's address (spec 6.1.1).
        iq.SetAttributeValue("from", session.Address);
        string? type = (string?)iq.Attribute("type");
        XElement? child = iq.Elements().FirstOrDefault();
        var target = to is null ? null : DoubleWire.SplitJid(to);
        if (type is "result" or "error")
        {
            if (to is not null && BoundSession(to) is DoubleSession peer)
            {
                await DeliverToAsync(peer, DoubleWire.Xml(iq));
            }

            return;
        }

        if (type is not ("get" or "set") || child is null)
        {
            await DeliverToAsync(session, DoubleWire.IqReply(iq, "error", child is null ? null : DoubleWire.Xml(child), DoubleWire.StanzaError("bad-request")));
            return;
        }

        // No `to`, the server's domain or the user's own bare JID: the server answers itself (RFC 6120 10.3).
        bool toServer = to is null
            || (target is { Resource: null } bare && (bare.Local is null ? bare.Domain == _domain : $"{bare.Local.ToLowerInvariant()}@{bare.Domain}" == session.BareJid));
        if (toServer)
        {
            await HandleServerIqAsync(session, iq, type, child);
            return;
        }

        if (target is null || target.Value.Domain != _domain)
        {
            await DeliverToAsync(session, DoubleWire.IqReply(iq, "error", DoubleWire.Xml(child), DoubleWire.StanzaError("remote-server-not-found")));
        }
        else if (target.Value.Resource is not null && BoundSession(to!) is DoubleSession peer)
        {
            await DeliverToAsync(peer, DoubleWire.Xml(iq));
        }
        else
        {
            await DeliverToAsync(session, DoubleWire.IqReply(iq, "error", DoubleWire.Xml(child), DoubleWire.StanzaError("service-unavailable")));
        }
    }

    /// <summary>The server's own IQ handlers: bind, session, ping; anything else is service-unavailable.</summary>
    private async Task HandleServerIqAsync(DoubleSession session, XElement iq, string type, XElement child)
    {
        if (type == "set" && child.Name == s_bind)
        {
            await BindAsync(session, iq, child);
        }
        else if ((type == "set" && child.Name == s_session) || (type == "get" && child.Name == s_ping))
        {
            await DeliverToAsync(session, DoubleWire.IqReply(iq, "result", null));
        }
        else
        {
            await DeliverToAsync(session, DoubleWire.IqReply(iq, "error", DoubleWire.Xml(child), DoubleWire.StanzaError("service-unavailable")));
        }
    }

    /// <summary>
    /// Resource binding. A second session binding the same full JID kicks the old one with a raw-text
    /// <c>conflict</c> stream error and, since it was bound, no close IQ (spec 0.1 point 1).
    /// </summary>
    private async Task BindAsync(DoubleSession session, XElement iq, XElement bind)
    {
        if (session.State != ClientSessionState.Authenticated)
        {
            string condition = session.State == ClientSessionState.PreAuthenticated ? "not-authorized" : "bad-request";
            await DeliverToAsync(session, DoubleWire.IqReply(iq, "error", DoubleWire.Xml(bind), DoubleWire.StanzaError(condition)));
            return;
        }

        string? resource = bind.Element(XName.Get("resource", DoubleWire.Bind))?.Value.Trim();
        if (string.IsNullOrEmpty(resource))
        {
            resource = DoubleWire.RandomBase36(10);
        }
        else if (DoubleWire.SplitJid($"x/{resource}") is null)
        {
            await DeliverToAsync(session, DoubleWire.IqReply(iq, "error", DoubleWire.Xml(bind), DoubleWire.StanzaError("jid-malformed")));
            return;
        }

        string fullJid = $"{session.Username}@{_domain}/{resource}";
        if (BoundSession(fullJid) is DoubleSession old && old != session)
        {
            await EndSessionAsync(old, "conflict", serverInitiated: true, streamError: "conflict");
        }

        lock (_gate)
        {
            session.BoundJid = fullJid;
            session.State = ClientSessionState.Bound;
        }

        Notify();

        // The result carries no from (OF-2001); spec 7.3 shows it addressed to the new full JID.
        await DeliverToAsync(session, $"<iq type=\"result\"{DoubleWire.Attr("id", (string?)iq.Attribute("id"))}{DoubleWire.Attr("to", fullJid)}>"
            + $"<bind xmlns=\"{DoubleWire.Bind}\"><jid>{DoubleWire.EscapeText(fullJid)}</jid></bind></iq>");
    }

    private async Task HandleClientMessageAsync(DoubleSession session, XElement message)
    {
        string? to = (string?)message.Attribute("to");
        if (IsPreBindViolation(session, to))
        {
            // Spec 5.4, converse case: a raw not-authorized stream error, and the session stays.
            await DeliverRawTextAsync(session.CmDomain, session.StreamId, DoubleWire.StreamError("not-authorized"));
            return;
        }

        message.SetAttributeValue("from", session.Address);
        string type = (string?)message.Attribute("type") ?? "normal";
        string? address = to ?? session.BareJid;
        var target = address is null ? null : DoubleWire.SplitJid(address);
        if (target is null)
        {
            return;
        }

        if (target.Value.Domain != _domain)
        {
            await BounceAsync(session, message, "remote-server-not-found");
            return;
        }

        if (target.Value.Local is null)
        {
            await BounceAsync(session, message, "service-unavailable");
            return;
        }

        string bare = $"{target.Value.Local.ToLowerInvariant()}@{_domain}";
        List<DoubleSession> recipients = [];
        if (target.Value.Resource is not null && BoundSession($"{bare}/{target.Value.Resource}") is DoubleSession exact)
        {
            recipients.Add(exact);
        }
        else if (target.Value.Resource is null || type is "chat" or "normal")
        {
            // RFC 6121 8.5.3.2.1: chat and normal to an unavailable resource are treated as sent to the bare JID.
            recipients = BoundSessions(bare);
        }

        foreach (DoubleSession recipient in recipients)
        {
            await DeliverToAsync(recipient, DoubleWire.Xml(message));
        }

        if (recipients.Count > 0 || type is not ("chat" or "normal"))
        {
            return;
        }

        if (_users.Exists(target.Value.Local))
        {
            lock (_gate)
            {
                _offline.Add(new StoredMessage(session.StreamId, DoubleWire.Xml(message), FromFailedIq: false));
            }

            Notify();
        }
        else
        {
            await BounceAsync(session, message, "service-unavailable");
        }
    }

    private async Task HandleClientPresenceAsync(DoubleSession session, XElement presence)
    {
        string? to = (string?)presence.Attribute("to");
        if (IsPreBindViolation(session, to))
        {
            await DeliverRawTextAsync(session.CmDomain, session.StreamId, DoubleWire.StreamError("not-authorized"));
            return;
        }

        presence.SetAttributeValue("from", session.Address);
        string? type = (string?)presence.Attribute("type");
        if (to is null)
        {
            // Broadcast: with no roster, only the user's own bound resources (RFC 6121 4.2.2, 4.5.2).
            if (session.State != ClientSessionState.Bound || type is not (null or "unavailable"))
            {
                return;
            }

            lock (_gate)
            {
                session.Available = type is null;
            }

            foreach (DoubleSession resource in BoundSessions(session.BareJid!))
            {
                presence.SetAttributeValue("to", resource.BoundJid);
                await DeliverToAsync(resource, DoubleWire.Xml(presence));
            }

            Notify();
            return;
        }

        if (DoubleWire.SplitJid(to) is not { Local: not null } target || target.Domain != _domain)
        {
            return;
        }

        string bare = $"{target.Local.ToLowerInvariant()}@{_domain}";
        List<DoubleSession> recipients = target.Resource is null
            ? BoundSessions(bare)
            : BoundSession($"{bare}/{target.Resource}") is DoubleSession exact ? [exact] : [];
        foreach (DoubleSession recipient in recipients)
        {
            await DeliverToAsync(recipient, DoubleWire.Xml(presence));
        }
    }

    /// <summary>Error reply to a message: from/to swapped, original children kept, error appended.</summary>
    private Task BounceAsync(DoubleSession sender, XElement message, string condition)
    {
        if ((string?)message.Attribute("type") == "error")
        {
            return Task.CompletedTask;
        }

        var bounce = new XElement(message);
        bounce.SetAttributeValue("type", "error");
        bounce.SetAttributeValue("from", (string?)message.Attribute("to"));
        bounce.SetAttributeValue("to", (string?)message.Attribute("from"));
        bounce.Add(XElement.Parse(DoubleWire.StanzaError(condition)));
        return DeliverToAsync(sender, DoubleWire.Xml(bounce));
    }

    private DoubleSession? BoundSession(string fullJid)
    {
        if (DoubleWire.SplitJid(fullJid) is not { Local: not null, Resource: not null } jid)
        {
            return null;
        }

        string normalised = $"{jid.Local.ToLowerInvariant()}@{jid.Domain}/{jid.Resource}";
        lock (_gate)
        {
            return _sessions.Values.FirstOrDefault(s => s.State == ClientSessionState.Bound && s.BoundJid == normalised);
        }
    }

    private List<DoubleSession> BoundSessions(string bareJid)
    {
        lock (_gate)
        {
            return [.. _sessions.Values.Where(s => s.State == ClientSessionState.Bound && s.BareJid == bareJid)];
        }
    }

    private Task<bool> DeliverToAsync(DoubleSession session, string stanzaXml) =>
        DeliverElementAsync(session.CmDomain, session.StreamId, stanzaXml);

    /// <summary>Element-form route (spec 6.2): attributes streamid, from (server domain), to (CM domain); the child has no xmlns.</summary>
    private Task<bool> DeliverElementAsync(string cmDomain, string streamId, string stanzaXml)
    {
        Count(Counter.ElementRoutesSent);
        return SendAsync(PinnedLink(cmDomain, streamId),
            $"<route streamid=\"{DoubleWire.EscapeAttribute(streamId)}\" from=\"{_domain}\" to=\"{cmDomain}\">{stanzaXml}</route>");
    }

    /// <summary>
    /// Raw-text route (spec 6.2): attributes from, to, streamid; the body spliced in verbatim (≤ 4.7) or
    /// as an escaped text node (≥ 4.8).
    /// </summary>
    private Task<bool> DeliverRawTextAsync(string cmDomain, string streamId, string rawXml)
    {
        Count(Counter.RawRoutesSent);
        string body = _options.RawTextEncoding == RawTextEncoding.Openfire47 ? rawXml : DoubleWire.EscapeText(rawXml);
        return SendAsync(PinnedLink(cmDomain, streamId),
            $"<route from=\"{_domain}\" to=\"{cmDomain}\" streamid=\"{DoubleWire.EscapeAttribute(streamId)}\">{body}</route>");
    }

    /// <summary>Spec 5.4: <c>to</c> is the CM domain (no resource); sent on the stream's pinned link.</summary>
    private async Task<bool> WriteCloseIqAsync(string cmDomain, string streamId, string? embeddedStreamError)
    {
        bool sent = await SendAsync(PinnedLink(cmDomain, streamId),
            $"<iq type=\"set\" id=\"{NextIqId()}\" from=\"{_domain}\" to=\"{cmDomain}\">"
            + $"<session xmlns=\"{DoubleWire.Cm}\" id=\"{DoubleWire.EscapeAttribute(streamId)}\"><close/>{embeddedStreamError}</session></iq>");
        if (sent)
        {
            Count(Counter.CloseIqsSent);
        }

        return sent;
    }

    /// <summary>
    /// The server ends a session. <c>Session.close(StreamError)</c> writes the error as raw text first
    /// (spec 5.4, [S36]); the session is removed before the virtual connection closes, so a server-side
    /// close IQ goes out only for sessions that never bound a resource (0.1 point 1), on the stream's
    /// pinned link with <c>to</c> = CM domain. A bound, available session's other resources see it go
    /// unavailable. False if the session was no longer in the table.
    /// </summary>
    private async Task<bool> EndSessionAsync(DoubleSession session, string reason, bool serverInitiated, string? streamError = null)
    {
        lock (_gate)
        {
            if (!_sessions.TryGetValue(session.StreamId, out DoubleSession? current) || current != session)
            {
                return false;
            }
        }

        if (streamError is not null)
        {
            await DeliverRawTextAsync(session.CmDomain, session.StreamId, DoubleWire.StreamError(streamError));
        }

        bool wasBound;
        lock (_gate)
        {
            if (!_sessions.Remove(session.StreamId, out DoubleSession? current) || current != session)
            {
                return false;
            }

            wasBound = session.State == ClientSessionState.Bound;
        }

        bool closeIqSent = serverInitiated && !wasBound && await WriteCloseIqAsync(session.CmDomain, session.StreamId, null);

        Count(Counter.SessionsEnded);
        lock (_gate)
        {
            _ended.Add(new EndedSession(session.StreamId, session.CmDomain, reason, closeIqSent));
        }

        Trace($"session {session.StreamId} ended ({reason}, close IQ sent: {closeIqSent})");
        Notify();

        if (wasBound && session.Available)
        {
            foreach (DoubleSession other in BoundSessions(session.BareJid!))
            {
                await DeliverToAsync(other, $"<presence type=\"unavailable\" from=\"{DoubleWire.EscapeAttribute(session.BoundJid!)}\" to=\"{DoubleWire.EscapeAttribute(other.BoundJid!)}\"/>");
            }
        }

        return true;
    }
}
