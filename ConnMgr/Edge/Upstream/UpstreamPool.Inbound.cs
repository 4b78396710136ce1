using System.Buffers;
using System.Text;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Link;
using ConnMgr.Protocol.Xml;

namespace ConnMgr.Edge.Upstream;

/// <summary>What arrives from the server on any link, dispatched by stream ID (spec 8.2).</summary>
internal sealed partial class UpstreamPool
{
    /// <summary>
    /// Context for the unescaped body of a raw-text route: it was written for the client stream,
    /// whose header binds the default namespace to <c>jabber:client</c> and <c>stream</c>.
    /// </summary>
    private static readonly XmlNamespaceScope s_rawTextScope = XmlNamespaceScope.Create(
        XmppNamespaces.Client, [new KeyValuePair<string, string>("stream", XmppNamespaces.Stream)]);

    private static ReadOnlySpan<byte> Whitespace => " \t\r\n"u8;

    // ---- routes (spec 6.2, 6.1.3, 6.3) -------------------------------------------------------

    /// <summary>A route from the server, on the read loop of <paramref name="link"/>. Never blocks.</summary>
    internal void HandleRoute(UpstreamLink link, in XmlElementReader route)
    {
        if (!route.TryGetAttribute("streamid"u8, out var rawId) || rawId.IsEmpty)
        {
            UpstreamLog.RouteWithoutStreamId(Logger, link.Jid);
            return;
        }
        var session = FindSession(rawId);
        // An error route holds only <error>, never something for the client: look at the type
        // before at the child (spec 6.1.3; Jive's CM forwarded the <error> to the client).
        if (route.AttributeEquals("type"u8, "error"u8))
        {
            OnRouteError(session, rawId, route);
            return;
        }
        if (session is null)
        {
            OnGhostRoute(link, rawId, route);
            return;
        }

        // Element form: everything Openfire delivers as a stanza, and raw text up to 4.7.
        var hadChild = false;
        foreach (var child in route.Children)
        {
            hadChild = true;
            if (!DeliverElement(session, child))
            {
                return;
            }
        }
        if (!hadChild)
        {
            // Text form: raw text since Openfire 4.8 (SASL results, stream errors), escaped.
            DeliverRawText(link, session, route);
        }
    }

    /// <summary>Gives one element to the session's owner; false once the session is over (a stream error, or an owner that threw).</summary>
    private bool DeliverElement(UpstreamSession session, in XmlElementReader element)
    {
        var local = element.LocalName;
        if (local.SequenceEqual("error"u8) && element.NamespaceIs(XmppNamespaces.Stream))
        {
            var condition = ReadStreamError(element, out var text);
            UpstreamLog.SessionStreamError(Logger, session.StreamId, condition.ToElementName());
            session.End(SessionEnd.StreamError, condition, text);
            return false;
        }
        var kind = DeliveryKind.Stanza;
        if (element.NamespaceIs(XmppNamespaces.Sasl))
        {
            if (local.SequenceEqual("success"u8))
            {
                kind = DeliveryKind.SaslSuccess;
            }
            else if (local.SequenceEqual("challenge"u8))
            {
                kind = DeliveryKind.SaslChallenge;
            }
            else if (local.SequenceEqual("failure"u8))
            {
                kind = DeliveryKind.SaslFailure;
            }
        }
        // Route children normally carry no xmlns and read the same on the client stream. One
        // that names the link's namespace explicitly must lose it there (spec 6.2; Jive's
        // CM stripped it from everything it parsed, C14).
        if (element.TryGetAttribute("xmlns"u8, out var xmlns) && xmlns.SequenceEqual("jabber:connectionmanager"u8))
        {
            DeliverWithoutXmlns(session, element, kind);
        }
        else
        {
            session.Deliver(element.Raw, kind);
        }
        return !session.IsClosed;
    }

    private static void DeliverWithoutXmlns(UpstreamSession session, in XmlElementReader element, DeliveryKind kind)
    {
        var raw = element.Raw;
        var start = -1;
        var end = -1;
        foreach (var declaration in element.NamespaceDeclarations)
        {
            if (declaration.QualifiedName.SequenceEqual("xmlns"u8)
                && raw.Overlaps(declaration.QualifiedName, out start)
                && raw.Overlaps(declaration.RawValue, out var valueStart))
            {
                // Past the value's closing quote.
                end = valueStart + declaration.RawValue.Length + 1;
                break;
            }
        }
        if (start < 0)
        {
            session.Deliver(raw, kind);
            return;
        }
        while (start > 0 && Whitespace.Contains(raw[start - 1]))
        {
            start--;
        }
        var rented = ArrayPool<byte>.Shared.Rent(raw.Length);
        try
        {
            raw[..start].CopyTo(rented);
            raw[end..].CopyTo(rented.AsSpan(start));
            session.Deliver(rented.AsSpan(0, raw.Length - (end - start)), kind);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// The ≥4.8 form: the route's text, unescaped into the link's scratch buffer, is a sequence
    /// of elements written for the client (spec 6.2). Each is checked and split by a scanner
    /// before it reaches the owner, exactly like an element-form child.
    /// </summary>
    private void DeliverRawText(UpstreamLink link, UpstreamSession session, in XmlElementReader route)
    {
        if (route.InnerRaw.IndexOfAnyExcept(Whitespace) < 0)
        {
            UpstreamLog.EmptyRoute(Logger, session.StreamId);
            return;
        }
        var scratch = link.Scratch;
        scratch.Reset();
        try
        {
            route.WriteText(scratch);
            var scanner = link.RestartRawTextScanner();
            var body = new ReadOnlySequence<byte>(scratch.WrittenMemory);
            while (true)
            {
                var status = scanner.Scan(body, out var consumed, out _, out var frame);
                if (status == ScanStatus.Frame)
                {
                    if (frame.Kind == XmlFrameKind.Element
                        && !DeliverElement(session, new XmlElementReader(frame.Bytes.FirstSpan, s_rawTextScope)))
                    {
                        return;
                    }
                    body = body.Slice(consumed);
                    continue;
                }
                if (status == ScanStatus.Error || body.FirstSpan.IndexOfAnyExcept(Whitespace) >= 0)
                {
                    UpstreamLog.RawTextInvalid(Logger, session.StreamId,
                        status == ScanStatus.Error ? scanner.ErrorText ?? scanner.ErrorCondition.ToElementName() : "truncated element");
                }
                return;
            }
        }
        catch (FormatException e)
        {
            UpstreamLog.RawTextInvalid(Logger, session.StreamId, e.Message);
        }
        finally
        {
            scratch.Reset();
        }
    }

    private void OnRouteError(UpstreamSession? session, ReadOnlySpan<byte> rawId, in XmlElementReader route)
    {
        var condition = ReadStanzaError(route, out var appCondition);
        if (session is null)
        {
            UpstreamLog.RouteErrorForUnknownSession(Logger, Encoding.UTF8.GetString(rawId), condition.ToElementName());
            return;
        }
        if (condition == StanzaErrorCondition.ItemNotFound)
        {
            // The server no longer knows the stream (spec 0.1 point 1, 6.1.3).
            UpstreamLog.SessionGone(Logger, session.StreamId);
            session.End(SessionEnd.ClosedByServer);
            return;
        }
        // bad-request + unknown-stanza: a stanza the edge should have handled itself (spec
        // 6.1.1); not-authorized: sent on a link before its handshake; internal-server-error:
        // the server failed on it. The stanza is lost either way; the session goes on.
        UpstreamLog.RouteRejected(Logger, session.StreamId, condition.ToElementName(), appCondition);
    }

    /// <summary>
    /// A route for a stream ID this edge does not have: a race with a close, or a ghost left
    /// on the server (spec 6.3, 0.1 point 2). A message is handed back with <c>failed</c> so it
    /// is stored offline (spec 5.5), then the ID gets one <c>&lt;close/&gt;</c>. An IQ get/set
    /// is not bounced: the close ends the server's session, after which the server answers
    /// the IQ's sender itself; everything else is dropped.
    /// </summary>
    private void OnGhostRoute(UpstreamLink link, ReadOnlySpan<byte> rawId, in XmlElementReader route)
    {
        var streamId = Encoding.UTF8.GetString(rawId);
        if (!StreamIdGenerator.IsSafe(streamId))
        {
            UpstreamLog.RouteForForeignStreamId(Logger, link.Jid, streamId);
            return;
        }
        var target = ControlLink(link);
        if (target is null)
        {
            return;
        }
        var isMessage = route.TryGetFirstChild(out var child) && child.QualifiedName.SequenceEqual("message"u8);
        var sendClose = _closedIds.Add(streamId);
        UpstreamLog.GhostRoute(Logger, streamId, isMessage, sendClose);
        using var scope = target.Output.Begin();
        if (!scope.IsOpen)
        {
            return;
        }
        if (isMessage)
        {
            LinkWire.Failed(scope.Writer, streamId, child.Raw, child.HasAttribute("xmlns"u8));
        }
        if (sendClose)
        {
            LinkWire.Close(scope.Writer, streamId);
        }
    }

    /// <summary>Where to answer something read on <paramref name="link"/>: that link once authenticated, else any that is.</summary>
    private UpstreamLink? ControlLink(UpstreamLink link)
        => link.IsReady && !link.Output.IsCompleted ? link : PickLink();

    // ---- IQs (spec 3.7, 5) -------------------------------------------------------------------

    /// <summary>An IQ from the server, on the read loop of <paramref name="link"/>.</summary>
    internal void HandleIq(UpstreamLink link, in XmlElementReader iq)
    {
        if (iq.AttributeEquals("type"u8, "result"u8))
        {
            if (TryIdentifyReply(iq, out var kind, out var rawId) && kind == ReplyKind.Create)
            {
                FindSession(rawId)?.NotifyCreated();
            }
            return;
        }
        if (iq.AttributeEquals("type"u8, "error"u8))
        {
            OnIqError(link, iq);
            return;
        }

        var id = iq.GetAttribute("id"u8);
        if (iq.AttributeEquals("type"u8, "set"u8) && iq.TryGetFirstChild(out var child))
        {
            if (child.NameIs("configuration"u8, XmppNamespaces.ConnectionManager))
            {
                OnConfiguration(link, child);
                Reply(link, id, success: true);
                return;
            }
            if (child.LocalName.SequenceEqual("session"u8) && TryGetChildByLocalName(child, "close"u8, out _))
            {
                // Answered with a result, which Jive's CM did not do; Openfire ignores it (spec 5.4).
                Reply(link, id, success: true);
                OnServerClose(child);
                return;
            }
        }
        UpstreamLog.UnexpectedIq(Logger, link.Jid, UpstreamLog.Excerpt(iq.Raw));
        Reply(link, id, success: false);
    }

    /// <summary>
    /// The server ends a session: since 4.3 only for sessions that never bound a resource,
    /// possibly with a stream error inside since 4.8 (spec 5.4, 0.1 point 1).
    /// </summary>
    private void OnServerClose(in XmlElementReader sessionElement)
    {
        if (!sessionElement.TryGetAttribute("id"u8, out var rawId) || FindSession(rawId) is not { } session)
        {
            return;
        }
        foreach (var child in sessionElement.Children)
        {
            if (child.NameIs("error"u8, XmppNamespaces.Stream))
            {
                var condition = ReadStreamError(child, out var text);
                UpstreamLog.SessionStreamError(Logger, session.StreamId, condition.ToElementName());
                session.End(SessionEnd.StreamError, condition, text);
                return;
            }
        }
        UpstreamLog.SessionClosedByServer(Logger, session.StreamId);
        session.End(SessionEnd.ClosedByServer);
    }

    private void OnIqError(UpstreamLink link, in XmlElementReader iq)
    {
        var condition = ReadStanzaError(iq, out var appCondition);
        if (!TryIdentifyReply(iq, out var kind, out var rawId))
        {
            UpstreamLog.IqErrorFromServer(Logger, link.Jid, condition.ToElementName(), appCondition, UpstreamLog.Excerpt(iq.Raw));
            return;
        }
        var session = FindSession(rawId);
        switch (kind)
        {
            case ReplyKind.Create:
                // not-allowed: the client's IP is refused (spec 5.2). Any create error leaves
                // no session on the server, as Jive's CM assumed.
                if (session is not null)
                {
                    UpstreamLog.SessionRefused(Logger, session.StreamId, condition.ToElementName());
                    session.End(SessionEnd.Refused, refusal: condition);
                }
                break;
            case ReplyKind.Close when condition == StanzaErrorCondition.ItemNotFound:
                // Already gone on the server: that is what we asked for (spec 5.3).
                break;
            case ReplyKind.Failed when condition == StanzaErrorCondition.ItemNotFound:
                // For a ghost ID this is expected (spec 6.3); for a live session it means gone.
                if (session is not null)
                {
                    UpstreamLog.SessionGone(Logger, session.StreamId);
                    session.End(SessionEnd.ClosedByServer);
                }
                break;
            default:
                UpstreamLog.IqErrorFromServer(Logger, link.Jid, condition.ToElementName(), appCondition, UpstreamLog.Excerpt(iq.Raw));
                break;
        }
    }

    /// <summary>
    /// Which of our requests a reply answers, from its id (<c>create-SID</c>...) or, for ids
    /// not made by this edge, from the echoed <c>&lt;session&gt;</c> (spec 5.2).
    /// </summary>
    private static bool TryIdentifyReply(in XmlElementReader iq, out ReplyKind kind, out ReadOnlySpan<byte> rawStreamId)
    {
        if (iq.TryGetAttribute("id"u8, out var id))
        {
            if (id.StartsWith(LinkWire.CreateIdPrefix))
            {
                kind = ReplyKind.Create;
                rawStreamId = id[LinkWire.CreateIdPrefix.Length..];
                return true;
            }
            if (id.StartsWith(LinkWire.CloseIdPrefix))
            {
                kind = ReplyKind.Close;
                rawStreamId = id[LinkWire.CloseIdPrefix.Length..];
                return true;
            }
            if (id.StartsWith(LinkWire.FailedIdPrefix))
            {
                kind = ReplyKind.Failed;
                rawStreamId = id[LinkWire.FailedIdPrefix.Length..];
                return true;
            }
        }
        foreach (var child in iq.Children)
        {
            if (!child.LocalName.SequenceEqual("session"u8) || !child.TryGetAttribute("id"u8, out rawStreamId))
            {
                continue;
            }
            foreach (var request in child.Children)
            {
                var name = request.LocalName;
                if (name.SequenceEqual("create"u8) || name.SequenceEqual("close"u8) || name.SequenceEqual("failed"u8))
                {
                    kind = name[1] == (byte)'r' ? ReplyKind.Create : name[1] == (byte)'l' ? ReplyKind.Close : ReplyKind.Failed;
                    return true;
                }
            }
        }
        kind = default;
        rawStreamId = default;
        return false;
    }

    private void Reply(UpstreamLink link, string? id, bool success)
    {
        if (id is null || ControlLink(link) is not { } target)
        {
            return;
        }
        using var scope = target.Output.Begin();
        if (!scope.IsOpen)
        {
            return;
        }
        if (success)
        {
            LinkWire.IqResult(scope.Writer, id);
        }
        else
        {
            LinkWire.IqNotImplemented(scope.Writer, id);
        }
    }

    /// <summary>The configuration IQ (spec 3.7 with 0.1 point 7), sent once per link after its handshake.</summary>
    private void OnConfiguration(UpstreamLink link, in XmlElementReader configuration)
    {
        bool tls = false, tlsRequired = false, compression = false, iqAuth = false, register = false;
        var mechanisms = new List<string>();
        foreach (var child in configuration.Children)
        {
            if (child.NameIs("starttls"u8, XmppNamespaces.Tls))
            {
                tls = true;
                tlsRequired = child.TryGetChild("required"u8, XmppNamespaces.Tls, out _);
            }
            else if (child.NameIs("mechanisms"u8, XmppNamespaces.Sasl))
            {
                foreach (var mechanism in child.Children)
                {
                    if (!mechanism.LocalName.SequenceEqual("mechanism"u8))
                    {
                        continue;
                    }
                    var name = mechanism.GetText().Trim();
                    // The server sees a CM-hosted client as unencrypted, without certificate or
                    // channel binding, and refuses these (spec 7.2).
                    if (name.Length > 0
                        && !name.Equals("EXTERNAL", StringComparison.OrdinalIgnoreCase)
                        && !name.EndsWith("-PLUS", StringComparison.OrdinalIgnoreCase))
                    {
                        mechanisms.Add(name);
                    }
                }
            }
            else if (child.NameIs("compression"u8, XmppNamespaces.CompressFeature))
            {
                compression = true;
            }
            else if (child.NameIs("auth"u8, XmppNamespaces.IqAuthFeature))
            {
                iqAuth = true;
            }
            else if (child.NameIs("register"u8, XmppNamespaces.IqRegisterFeature))
            {
                register = true;
            }
        }
        var next = new ClientStreamConfiguration
        {
            TlsOffered = tls,
            TlsRequired = tlsRequired,
            Mechanisms = mechanisms,
            CompressionOffered = compression,
            IqAuth = iqAuth,
            Register = register,
        };
        var previous = Interlocked.Exchange(ref _configuration, next);
        var summary = Describe(next);
        if (previous is null || Describe(previous) != summary)
        {
            UpstreamLog.ConfigurationReceived(Logger, link.Jid, summary);
        }
        if (LinksUp > 0)
        {
            _firstConfigured.TrySetResult();
        }
    }

    private static string Describe(ClientStreamConfiguration c)
        => $"tls={(c.TlsRequired ? "required" : c.TlsOffered ? "offered" : "off")} mechanisms=[{string.Join(' ', c.Mechanisms)}] " +
           $"compression={c.CompressionOffered} iq-auth={c.IqAuth} register={c.Register}";

    // ---- errors ------------------------------------------------------------------------------

    /// <summary>The defined condition of a stream error (RFC 6120 4.9.3) and its text, if any.</summary>
    internal static StreamErrorCondition ReadStreamError(in XmlElementReader error, out string? text)
    {
        text = null;
        var condition = StreamErrorCondition.None;
        Span<char> name = stackalloc char[64];
        foreach (var child in error.Children)
        {
            if (!child.NamespaceIs(XmppNamespaces.Streams))
            {
                continue;
            }
            if (child.LocalName.SequenceEqual("text"u8))
            {
                text = child.GetText();
            }
            else if (condition == StreamErrorCondition.None)
            {
                condition = TryAscii(child.LocalName, name, out var length) && StreamErrorConditions.TryParse(name[..length], out var parsed)
                    ? parsed
                    : StreamErrorCondition.UndefinedCondition;
            }
        }
        return condition == StreamErrorCondition.None ? StreamErrorCondition.UndefinedCondition : condition;
    }

    /// <summary>
    /// The condition of the <c>&lt;error&gt;</c> child of an IQ or route error (RFC 6120 8.3),
    /// and the connection-manager application condition, if any (spec 5.6).
    /// </summary>
    private static StanzaErrorCondition ReadStanzaError(in XmlElementReader stanza, out string? appCondition)
    {
        appCondition = null;
        var condition = StanzaErrorCondition.UndefinedCondition;
        if (!TryGetChildByLocalName(stanza, "error"u8, out var error))
        {
            return condition;
        }
        var found = false;
        Span<char> name = stackalloc char[64];
        foreach (var child in error.Children)
        {
            if (!found && child.NamespaceIs(XmppNamespaces.Stanzas))
            {
                found = TryAscii(child.LocalName, name, out var length) && StanzaErrorConditions.TryParse(name[..length], out condition);
            }
            else if (child.NamespaceIs(XmppNamespaces.ConnectionManagerErrors))
            {
                appCondition = Encoding.UTF8.GetString(child.LocalName);
            }
        }
        return condition;
    }

    private static bool TryGetChildByLocalName(in XmlElementReader parent, ReadOnlySpan<byte> localName, out XmlElementReader child)
    {
        foreach (var candidate in parent.Children)
        {
            if (candidate.LocalName.SequenceEqual(localName))
            {
                child = candidate;
                return true;
            }
        }
        child = default;
        return false;
    }

    private static bool TryAscii(ReadOnlySpan<byte> bytes, Span<char> destination, out int length)
    {
        length = 0;
        if (bytes.Length > destination.Length)
        {
            return false;
        }
        for (var i = 0; i < bytes.Length; i++)
        {
            destination[i] = (char)bytes[i];
        }
        length = bytes.Length;
        return true;
    }

    private enum ReplyKind : byte
    {
        Create,
        Close,
        Failed,
    }
}
