using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using System.Xml;
using System.Xml.Linq;

namespace ConnMgr.Tests.OpenfireDouble;

/// <summary>Link level: header, STARTTLS, handshake, the CM's session IQs and routes (spec 2, 3, 5, 6.1, 8).</summary>
public sealed partial class OpenfireDoubleServer
{
    private const string XmlDeclaration = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

    private static readonly TimeSpan s_tlsTimeout = TimeSpan.FromSeconds(10);

    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private enum FrameOutcome
    {
        Continue,

        /// <summary>TLS replaced the byte stream: the splitter and decoder start over.</summary>
        StreamRestarted,
    }

    private async Task RunLinkAsync(DoubleLink link)
    {
        await Task.Yield();
        var splitter = new XmlFrameSplitter(_options.MaxElementSize);
        Decoder decoder = s_strictUtf8.GetDecoder();
        byte[] bytes = new byte[16 * 1024];
        char[] chars = new char[s_strictUtf8.GetMaxCharCount(bytes.Length)];
        try
        {
            if (_options.DirectTls)
            {
                await link.AcceptTlsAsync(_certificate!, s_tlsTimeout);
            }

            while (true)
            {
                int read = await link.ReadAsync(bytes);
                if (read == 0)
                {
                    link.MarkClosedByPeer(LinkCloseReason.CmClosedConnection);
                    break;
                }

                link.LastReadTimestamp = Stopwatch.GetTimestamp();
                if (link.IsClosing)
                {
                    // Draining after our stream error (see DoubleLink.CloseAsync).
                    continue;
                }

                try
                {
                    splitter.Append(chars.AsSpan(0, decoder.GetChars(bytes, 0, read, chars, 0)));
                    while (!link.IsClosing && splitter.TryRead(out XmlFrame frame))
                    {
                        if (await HandleFrameAsync(link, frame) == FrameOutcome.StreamRestarted)
                        {
                            splitter.Reset();
                            decoder.Reset();
                            break;
                        }
                    }
                }
                catch (Exception e) when (e is XmlFrameException or DecoderFallbackException)
                {
                    // Spec 2: oversize elements and illegal characters close the whole link; the oversize
                    // case with internal-server-error (0.1 point 5).
                    await FatalAsync(link, e.Message);
                }
                catch (Exception e) when (e is not (IOException or SocketException or ObjectDisposedException or OperationCanceledException))
                {
                    // Openfire's channel handler catches everything and closes with internal-server-error ([S20]).
                    RecordFault(link, e);
                    await FatalAsync(link, $"double fault: {e.Message}");
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException or AuthenticationException or TimeoutException)
        {
            link.MarkClosedByPeer(LinkCloseReason.CmClosedConnection);
        }
        finally
        {
            await LeavePoolAsync(link);
            link.Dispose();
            Trace($"{link.Label}: ended ({link.CloseReason} {link.CloseCondition})");
            Notify();
        }
    }

    private async Task<FrameOutcome> HandleFrameAsync(DoubleLink link, XmlFrame frame)
    {
        if (frame.Kind == FrameKind.Whitespace)
        {
            return FrameOutcome.Continue;
        }

        link.IdleFlag = false;
        if (frame.Kind == FrameKind.Header)
        {
            await HandleHeaderAsync(link, frame.Text);
            return FrameOutcome.Continue;
        }

        if (frame.Kind == FrameKind.StreamEnd)
        {
            RecordReceived(link, frame.Text, null);
            await CloseLinkAsync(link, null, LinkCloseReason.CmClosedStream);
            return FrameOutcome.Continue;
        }

        if (link.Phase != LinkPhase.Open)
        {
            // Spec 3.2: everything before a proper header is ignored.
            Trace($"{link.Label}: ignored before the stream header: {frame.Text}");
            return FrameOutcome.Continue;
        }

        XElement element;
        try
        {
            element = DoubleWire.ParseFrame(frame.Text, link.HeaderNamespaces);
        }
        catch (XmlException e)
        {
            RecordReceived(link, frame.Text, null);
            await FatalAsync(link, $"not standalone XML: {e.Message}");
            return FrameOutcome.Continue;
        }

        RecordReceived(link, frame.Text, element);
        return await HandleElementAsync(link, element);
    }

    private async Task<FrameOutcome> HandleElementAsync(DoubleLink link, XElement element)
    {
        string name = element.Name.LocalName;
        string ns = element.Name.NamespaceName;
        if (ns == DoubleWire.Streams && name == "error")
        {
            // Spec 8.5: a stream error from the CM closes the link.
            await CloseLinkAsync(link, null, LinkCloseReason.CmStreamError);
            return FrameOutcome.Continue;
        }

        if (ns == DoubleWire.Tls && name == "starttls")
        {
            return await StartTlsAsync(link);
        }

        if (_options.LinkTlsPolicy == TlsPolicy.Required && !link.IsEncrypted)
        {
            // Spec 3.5: with TLS required, any other element before TLS closes the link.
            await CloseLinkAsync(link, "not-authorized");
            return FrameOutcome.Continue;
        }

        switch (name)
        {
            case "handshake":
                await HandshakeAsync(link, element);
                break;
            case "iq":
                await HandleLinkIqAsync(link, element);
                break;
            case "route":
                await HandleRouteAsync(link, element);
                break;
            case "compress":
                // Link compression policy is disabled (Openfire's default, spec 2): setup-failed, link stays open (spec 3.5).
                await SendAsync(link, $"<failure xmlns=\"{DoubleWire.Compress}\"><setup-failed/></failure>");
                break;
            case "message":
            case "presence":
                // Spec 2: UnauthorizedException escapes and the link is closed with internal-server-error.
                await FatalAsync(link, $"bare <{name}> on the link");
                break;
            default:
                // Spec 2: an unknown top-level element closes the link's session.
                await FatalAsync(link, $"unknown top-level element <{name}>");
                break;
        }

        return FrameOutcome.Continue;
    }

    /// <summary>Spec 3.2–3.4 (and 3.5 for the header after TLS).</summary>
    private async Task HandleHeaderAsync(DoubleLink link, string text)
    {
        if (link.Phase == LinkPhase.AwaitingRestartHeader)
        {
            RecordReceived(link, text, null);
            link.Phase = LinkPhase.Open;

            // Spec 3.5: `to` is not re-checked; `from` is now the server domain, same id, plus xml:lang.
            await SendAsync(link, XmlDeclaration + $"<stream:stream xmlns:stream=\"{DoubleWire.Streams}\" xmlns=\"{DoubleWire.LinkNamespace}\" from=\"{_domain}\" id=\"{link.StreamId}\" xml:lang=\"en-US\" version=\"1.0\"><stream:features/>");
            return;
        }

        if (link.Phase == LinkPhase.Open)
        {
            RecordReceived(link, text, null);
            Trace($"{link.Label}: second stream header ignored");
            return;
        }

        XElement header;
        try
        {
            header = XElement.Parse(text + "</stream:stream>");
        }
        catch (XmlException e)
        {
            RecordReceived(link, text, null);
            await FatalAsync(link, $"unreadable stream header: {e.Message}");
            return;
        }

        string? to = (string?)header.Attribute("to");
        var jid = to is null ? null : DoubleWire.SplitJid(to);
        if (jid is not null)
        {
            link.Jid = to;
        }

        RecordReceived(link, text, null);
        if (header.Name.NamespaceName != DoubleWire.Streams || header.GetDefaultNamespace().NamespaceName != DoubleWire.LinkNamespace)
        {
            await RefuseHeaderAsync(link, null, "invalid-namespace");
            return;
        }

        if (to is null)
        {
            await RefuseHeaderAsync(link, null, "bad-format", "Missing 'to' attribute value.");
            return;
        }

        if (jid is null)
        {
            // Spec 0.1 point 6: a `to` that is not a JID drops the connection with nothing written.
            Trace($"{link.Label}: invalid link JID '{to}', dropping");
            link.Abort(LinkCloseReason.Dropped);
            return;
        }

        link.HeaderNamespaces = header.Attributes()
            .Where(a => a.IsNamespaceDeclaration && a.Name.Namespace == XNamespace.Xmlns)
            .ToDictionary(a => a.Name.LocalName, a => a.Value);

        if (_options.Secret is null)
        {
            await RefuseHeaderAsync(link, to, "internal-server-error");
            return;
        }

        bool duplicate;
        lock (_gate)
        {
            // Conflict is per full link JID among live links (spec 3.3).
            duplicate = _links.Any(l => l != link && l.Jid == to && l.Phase != LinkPhase.AwaitingHeader && !l.IsClosing && !l.IsClosed);
            if (!duplicate)
            {
                link.CmDomain = jid.Value.Domain;
                link.StreamId = _options.StreamIdFactory?.Invoke() ?? DoubleWire.RandomBase36(10);
                link.Phase = LinkPhase.Open;

                // Spec 0.1 point 3: the link joins the routing pool now, before any handshake.
                link.InPool = true;
                if (!_pool.TryGetValue(link.CmDomain, out List<DoubleLink>? links))
                {
                    _pool[link.CmDomain] = links = [];
                }

                links.Add(link);
            }
        }

        if (duplicate)
        {
            await RefuseHeaderAsync(link, to, "conflict", "This link JID is already connected.");
            return;
        }

        Count(Counter.LinksJoinedPool);
        // On the Direct-TLS port the policy is "directTLS", not disabled, so <starttls/> is advertised on an encrypted link (spec 3.4).
        string features = _options.DirectTls ? $"<stream:features><starttls xmlns=\"{DoubleWire.Tls}\"/></stream:features>" : _options.LinkTlsPolicy switch
        {
            TlsPolicy.Required => $"<stream:features><starttls xmlns=\"{DoubleWire.Tls}\"><required/></starttls></stream:features>",
            TlsPolicy.Optional => $"<stream:features><starttls xmlns=\"{DoubleWire.Tls}\"/></stream:features>",
            _ => "<stream:features/>",
        };
        await SendAsync(link, ServerHeader(to, link.StreamId) + features);
    }

    /// <summary>Spec 3.4: dom4j attribute order; <c>from</c> echoes the CM's <c>to</c>.</summary>
    private static string ServerHeader(string? from, string? id) =>
        XmlDeclaration + $"<stream:stream xmlns:stream=\"{DoubleWire.Streams}\" xmlns=\"{DoubleWire.LinkNamespace}\" version=\"1.0\"{DoubleWire.Attr("from", from)}{DoubleWire.Attr("id", id)}>";

    /// <summary>Spec 3.3: header (without <c>id</c>), stream error, end tag, close.</summary>
    private async Task RefuseHeaderAsync(DoubleLink link, string? from, string condition, string? text = null)
    {
        Trace($"{link.Label}: header refused with {condition}");
        await SendAsync(link, ServerHeader(from, null));
        await CloseLinkAsync(link, condition, text: text);
    }

    /// <summary>Spec 3.5: <c>&lt;proceed/&gt;</c> then server-side TLS; refused with <c>not-authorized</c> when the policy is disabled.</summary>
    private async Task<FrameOutcome> StartTlsAsync(DoubleLink link)
    {
        if (_options.LinkTlsPolicy == TlsPolicy.Disabled || _certificate is null || link.IsEncrypted)
        {
            await CloseLinkAsync(link, "not-authorized");
            return FrameOutcome.Continue;
        }

        string proceed = $"<proceed xmlns=\"{DoubleWire.Tls}\"/>";
        try
        {
            await link.UpgradeToTlsAsync(proceed, _certificate, s_tlsTimeout, () => RecordSent(link, proceed));
        }
        catch (Exception e) when (e is AuthenticationException or IOException or SocketException or TimeoutException or OperationCanceledException or ObjectDisposedException)
        {
            Trace($"{link.Label}: TLS failed: {e.Message}");
            link.Abort(LinkCloseReason.Dropped);
            return FrameOutcome.Continue;
        }

        link.Phase = LinkPhase.AwaitingRestartHeader;
        Notify();
        return FrameOutcome.StreamRestarted;
    }

    /// <summary>Spec 3.6: SHA-1 hex of id‖secret, compared case-insensitively; success is followed by the configuration IQ (3.7).</summary>
    private async Task HandshakeAsync(DoubleLink link, XElement handshake)
    {
        string expected = DoubleWire.HandshakeDigest(link.StreamId!, _options.Secret!);
        if (!string.Equals(handshake.Value, expected, StringComparison.OrdinalIgnoreCase))
        {
            Count(Counter.HandshakesFailed);
            await CloseLinkAsync(link, "not-authorized");
            return;
        }

        link.IsAuthenticated = true;
        Count(Counter.HandshakesSucceeded);
        await SendAsync(link, "<handshake></handshake>");
        await SendAsync(link, ConfigurationIq());
    }

    /// <summary>Spec 3.7 as corrected by 0.1 point 7: children in this order, each optional.</summary>
    private string ConfigurationIq()
    {
        var children = new StringBuilder();
        if (_options.ClientTlsPolicy != TlsPolicy.Disabled)
        {
            children.Append(_options.ClientTlsPolicy == TlsPolicy.Required
                ? $"<starttls xmlns=\"{DoubleWire.Tls}\"><required/></starttls>"
                : $"<starttls xmlns=\"{DoubleWire.Tls}\"/>");
        }

        if (_options.Mechanisms.Count > 0)
        {
            children.Append($"<mechanisms xmlns=\"{DoubleWire.Sasl}\">");
            foreach (string mechanism in _options.Mechanisms)
            {
                children.Append($"<mechanism>{DoubleWire.EscapeText(mechanism)}</mechanism>");
            }

            children.Append("</mechanisms>");
        }

        if (_options.ClientCompression)
        {
            children.Append("<compression xmlns=\"http://jabber.org/features/compress\"><method>zlib</method></compression>");
        }

        if (_options.IqAuth)
        {
            children.Append("<auth xmlns=\"http://jabber.org/features/iq-auth\"/>");
        }

        if (_options.Register)
        {
            children.Append("<register xmlns=\"http://jabber.org/features/iq-register\"/>");
        }

        string configuration = children.Length == 0
            ? $"<configuration xmlns=\"{DoubleWire.Cm}\"/>"
            : $"<configuration xmlns=\"{DoubleWire.Cm}\">{children}</configuration>";
        return $"<iq type=\"set\" id=\"{NextIqId()}\">{configuration}</iq>";
    }

    private string NextIqId() => $"{_iqIdPrefix}-{Interlocked.Increment(ref _iqSequence)}";

    /// <summary>IQs from the CM (spec 3.6 before the handshake, 5.6 after).</summary>
    private async Task HandleLinkIqAsync(DoubleLink link, XElement iq)
    {
        string? type = (string?)iq.Attribute("type");
        if (type is not (null or "get" or "set" or "result" or "error"))
        {
            // Spec 0.1 point 6: an unknown IQ type closes the link.
            await FatalAsync(link, $"IQ type '{type}'");
            return;
        }

        XElement? child = iq.Elements().FirstOrDefault();
        if (child is null && (type is null or "get" or "set" || !link.IsAuthenticated))
        {
            // Spec 2: building the error reply copies the child; without one Openfire throws and drops the link.
            await FatalAsync(link, "IQ without a child element");
            return;
        }

        if (!link.IsAuthenticated)
        {
            // Spec 3.6: IQ error not-authorized on the same link; the link stays open.
            await SendIqErrorAsync(link, iq, child, "not-authorized");
            return;
        }

        switch (type)
        {
            case "result":
                return;
            case "error":
                Trace($"{link.Label}: CM returned an IQ error: {DoubleWire.Xml(iq)}");
                return;
            case "set":
                await HandleSessionIqAsync(link, iq, child!);
                return;
            default:
                await SendIqErrorAsync(RandomLink(link.CmDomain), iq, child, "bad-request");
                return;
        }
    }

    /// <summary>create / close / failed, with the error table of spec 5.6; replies echo the child and go on a random link (8.2).</summary>
    private async Task HandleSessionIqAsync(DoubleLink link, XElement iq, XElement child)
    {
        string cm = link.CmDomain!;
        string? streamId = (string?)child.Attribute("id");
        if (streamId is null)
        {
            // Checked before the child's name (spec 5.6).
            await SendIqErrorAsync(RandomLink(cm), iq, child, "bad-request", "id-required");
            return;
        }

        if (streamId.Length == 0)
        {
            await FatalAsync(link, "empty session id");
            return;
        }

        if (child.Name.LocalName != "session")
        {
            await SendIqErrorAsync(RandomLink(cm), iq, child, "bad-request");
            return;
        }

        XElement? create = ChildByLocalName(child, "create");
        if (create is not null)
        {
            XElement? host = ChildByLocalName(create, "host");
            string? hostName = (string?)host?.Attribute("name");
            string? hostAddress = (string?)host?.Attribute("address");
            if (!IsAddressAllowed(hostAddress))
            {
                Count(Counter.SessionsRefused);
                await SendIqErrorAsync(RandomLink(cm), iq, child, "not-allowed");
                return;
            }

            lock (_gate)
            {
                // Spec 5.1: an existing ID is silently replaced.
                _sessions[streamId] = new DoubleSession(streamId, cm, _domain, hostName ?? link.PeerAddress, hostAddress ?? link.PeerAddress);
            }

            Count(Counter.SessionsCreated);
            Notify();
            await SendAsync(RandomLink(cm), DoubleWire.IqReply(iq, "result", DoubleWire.Xml(child)));
            return;
        }

        DoubleSession? session = SessionOf(cm, streamId);
        if (session is null)
        {
            await SendIqErrorAsync(RandomLink(cm), iq, child, "item-not-found");
            return;
        }

        if (ChildByLocalName(child, "close") is not null)
        {
            // Spec 5.3: removed first (so no close IQ comes back), then closed, then the result.
            await EndSessionAsync(session, "cm-close", serverInitiated: false);
            await SendAsync(RandomLink(cm), DoubleWire.IqReply(iq, "result", DoubleWire.Xml(child)));
            return;
        }

        if (ChildByLocalName(child, "failed") is XElement failed)
        {
            List<XElement> payload = [.. failed.Elements()];
            if (payload.Count != 1)
            {
                await SendIqErrorAsync(RandomLink(cm), iq, child, "bad-request", "invalid-payload");
            }
            else if (payload[0].Name.LocalName != "message")
            {
                await SendIqErrorAsync(RandomLink(cm), iq, child, "bad-request", "unknown-stanza");
            }
            else
            {
                lock (_gate)
                {
                    _offline.Add(new StoredMessage(streamId, DoubleWire.Xml(DoubleWire.Unwrapped(payload[0])), FromFailedIq: true));
                }

                Notify();
                await SendAsync(RandomLink(cm), DoubleWire.IqReply(iq, "result", DoubleWire.Xml(child)));
            }

            return;
        }

        await SendIqErrorAsync(RandomLink(cm), iq, child, "bad-request");
    }

    private Task<bool> SendIqErrorAsync(DoubleLink? link, XElement iq, XElement? child, string condition, string? cmError = null)
    {
        Count(Counter.IqErrorsSent);
        return SendAsync(link, DoubleWire.IqReply(iq, "error", child is null ? null : DoubleWire.Xml(child), DoubleWire.StanzaError(condition, cmError)));
    }

    /// <summary>Routes from the CM (spec 6.1; fatal cases from spec 2 and 0.1 point 6).</summary>
    private async Task HandleRouteAsync(DoubleLink link, XElement route)
    {
        Count(Counter.RoutesReceived);
        string? streamId = (string?)route.Attribute("streamid");
        if (string.IsNullOrEmpty(streamId))
        {
            await FatalAsync(link, streamId is null ? "route without streamid" : "route with an empty streamid");
            return;
        }

        if (!link.IsAuthenticated)
        {
            // Spec 3.6: route error not-authorized on the same link.
            await SendRouteErrorAsync(link, route, streamId, "not-authorized");
            return;
        }

        DoubleSession? session = SessionOf(link.CmDomain!, streamId);
        if (session is null)
        {
            await SendRouteErrorAsync(RandomLink(link.CmDomain), route, streamId, "item-not-found");
            return;
        }

        // Only the first child counts; extra children are ignored (spec 0.1 point 4).
        XElement? child = route.Elements().FirstOrDefault();
        if (child is null)
        {
            await FatalAsync(link, "route without a child element for a known stream");
            return;
        }

        bool known;
        try
        {
            known = await RouteClientElementAsync(session, child);
        }
        catch (Exception e) when (e is not (OperationCanceledException or ObjectDisposedException))
        {
            RecordFault(link, e);
            await SendRouteErrorAsync(RandomLink(link.CmDomain), route, streamId, "internal-server-error");
            return;
        }

        if (!known)
        {
            await SendRouteErrorAsync(RandomLink(link.CmDomain), route, streamId, "bad-request", "unknown-stanza");
        }
    }

    /// <summary>Spec 6.1.3: streamid, id, from/to swapped, type="error"; only the error, never the offending stanza.</summary>
    private Task<bool> SendRouteErrorAsync(DoubleLink? link, XElement route, string streamId, string condition, string? cmError = null)
    {
        Count(Counter.RouteErrorsSent);
        return SendAsync(link,
            $"<route streamid=\"{DoubleWire.EscapeAttribute(streamId)}\"{DoubleWire.Attr("id", (string?)route.Attribute("id"))}"
            + $"{DoubleWire.Attr("from", (string?)route.Attribute("to"))}{DoubleWire.Attr("to", (string?)route.Attribute("from"))} type=\"error\">"
            + DoubleWire.StanzaError(condition, cmError) + "</route>");
    }

    private static XElement? ChildByLocalName(XElement parent, string localName) =>
        parent.Elements().FirstOrDefault(e => e.Name.LocalName == localName);

    /// <summary>Client IP allow/block lists at create (spec 5.2): no address or an unparsable one skips the check.</summary>
    private bool IsAddressAllowed(string? address)
    {
        if (address is null || !IPAddress.TryParse(address, out IPAddress? ip))
        {
            return true;
        }

        static bool Listed(IReadOnlyList<string> list, IPAddress ip) =>
            list.Any(entry => IPAddress.TryParse(entry, out IPAddress? listed) && listed.Equals(ip));

        return !Listed(_options.BlockedAddresses, ip) && (_options.AllowedAddresses.Count == 0 || Listed(_options.AllowedAddresses, ip));
    }

    private DoubleSession? SessionOf(string cmDomain, string streamId)
    {
        lock (_gate)
        {
            return _sessions.TryGetValue(streamId, out DoubleSession? s) && s.CmDomain == cmDomain ? s : null;
        }
    }

    /// <summary>Any link of the CM, for replies and route errors (spec 8.2).</summary>
    private DoubleLink? RandomLink(string? cmDomain)
    {
        lock (_gate)
        {
            return cmDomain is not null && _pool.TryGetValue(cmDomain, out List<DoubleLink>? links) && links.Count > 0
                ? links[_random.Next(links.Count)]
                : null;
        }
    }

    /// <summary>
    /// The link carrying everything for one client stream: <c>abs(hashCode(streamID)) % N</c> over the
    /// CM's links (spec 8.2). Java's <c>Math.abs(Integer.MIN_VALUE)</c> stays negative, the list lookup
    /// then throws and the packet is lost, unless N is 1 or a power of two (spec 0.1 point 9).
    /// </summary>
    private DoubleLink? PinnedLink(string cmDomain, string streamId)
    {
        lock (_gate)
        {
            if (!_pool.TryGetValue(cmDomain, out List<DoubleLink>? links) || links.Count == 0)
            {
                return null;
            }

            if (links.Count == 1)
            {
                return links[0];
            }

            int hash = DoubleWire.JavaHashCode(streamId);
            int index = (hash == int.MinValue ? hash : Math.Abs(hash)) % links.Count;
            return index < 0 ? null : links[index];
        }
    }

    /// <summary>Emulates the inputs that make Openfire drop a link (spec 2) by closing it with internal-server-error.</summary>
    private Task FatalAsync(DoubleLink link, string why)
    {
        Trace($"{link.Label}: fatal input ({why})");
        return CloseLinkAsync(link, "internal-server-error");
    }

    /// <summary>Stream error (if any), <c>&lt;/stream:stream&gt;</c>, FIN; the link leaves the pool first.</summary>
    private async Task CloseLinkAsync(DoubleLink link, string? condition, LinkCloseReason reason = LinkCloseReason.StreamErrorSent, string? text = null)
    {
        string final = (condition is null ? "" : DoubleWire.StreamError(condition, text)) + "</stream:stream>";
        Task leave = LeavePoolAsync(link);
        if (!await link.CloseAsync(condition is null ? reason : LinkCloseReason.StreamErrorSent, condition, final, () => RecordSent(link, final)))
        {
            await leave;
            return;
        }

        Count(Counter.LinksClosed);
        Notify();
        await leave;
    }

    /// <summary>
    /// Removes a link from its CM's pool. When it was the CM's last link: 4.x closes every session of that
    /// CM; 5.x leaves them as ghosts (spec 8.4, 0.1 point 2). Nothing happens to sessions on shutdown (8.5).
    /// </summary>
    private async Task LeavePoolAsync(DoubleLink link)
    {
        List<DoubleSession> lost = [];
        lock (_gate)
        {
            if (!link.InPool)
            {
                return;
            }

            link.InPool = false;
            List<DoubleLink> links = _pool[link.CmDomain!];
            links.Remove(link);
            if (links.Count > 0)
            {
                return;
            }

            _pool.Remove(link.CmDomain!);
            if (!_shuttingDown && _options.LastLinkBehaviour == LastLinkBehaviour.CloseSessions)
            {
                lost = [.. _sessions.Values.Where(s => s.CmDomain == link.CmDomain)];
            }
        }

        Trace($"{link.Label}: last link of {link.CmDomain} gone; {lost.Count} sessions closed");
        foreach (DoubleSession session in lost)
        {
            await EndSessionAsync(session, "last-link", serverInitiated: true);
        }

        Notify();
    }
}
