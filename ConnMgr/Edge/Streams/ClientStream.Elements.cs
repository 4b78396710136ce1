using System.Buffers;
using ConnMgr.Edge.Transport;
using ConnMgr.Edge.Upstream;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Xml;

namespace ConnMgr.Edge.Streams;

/// <summary>
/// What the client sends, frame by frame. Every element is checked here before anything of it
/// reaches the shared upstream link: Openfire drops a whole link for input a client could
/// otherwise smuggle through (spec 2), so the edge lets through only the few elements the core
/// handles in a route (spec 6.1.1), in the phase where they belong, with attributes the core can
/// parse. Everything else gets its answer here.
/// </summary>
internal sealed partial class ClientStream
{
    /// <summary>A <c>to</c> or <c>from</c> longer than this cannot be a JID (3 parts of at most 1023 bytes, RFC 7622 3.1).</summary>
    private const int MaxJidBytes = 3 * 1023 + 2;

    private Next OnFrame(in XmlFrame frame)
    {
        switch (frame.Kind)
        {
            case XmlFrameKind.StreamHeader:
                return OnHeader(frame.Header!);
            case XmlFrameKind.Element:
                return OnElement(frame.Bytes);
            case XmlFrameKind.StreamEnd:
                // RFC 6120 4.4: the client is done; answer with our own end and close.
                Close(CloseRequest.ClientGone);
                return Next.Close;
            default:
                // Whitespace: a keepalive (RFC 6120 4.6.1); the transport noted the activity.
                return Next.Continue;
        }
    }

    // ---- stream header (wait_for_stream) ----------------------------------------------------------

    private Next OnHeader(StreamHeader header)
    {
        // The scanner has checked the stream and content namespaces (invalid-namespace).
        if (!NamesDomain(header.To))
        {
            // RFC 6120 4.9.3.6: host-unknown also for a missing 'to', which a client stream must carry
            // (RFC 6120 4.7.2) and without which the edge cannot know which service is wanted.
            return CloseNow(StreamErrorCondition.HostUnknown, CloseReason.ProtocolError,
                header.To is null ? "the stream header has no 'to'" : "this server does not serve that domain");
        }
        if (!IsVersion1(header.Version))
        {
            // RFC 6120 4.7.5: no version means pre-XMPP 1.0; this server speaks 1.x only.
            return CloseNow(StreamErrorCondition.UnsupportedVersion, CloseReason.ProtocolError, "XMPP version 1.0 is required");
        }

        var extraPrefixes = ExtraPrefixes(header);
        if (_session is null)
        {
            try
            {
                _session = _handler.Pool.CreateSession(_handler.Pool.NewStreamId(), this, _connection.RemoteEndPoint.Address, extraPrefixes);
            }
            catch (UpstreamUnavailableException)
            {
                return CloseNow(CloseRequest.UpstreamLost);
            }
        }
        else if (extraPrefixes is not null || _hasExtraPrefixes)
        {
            // The restarted stream's header declares other prefixes, which its stanzas may use (RFC 6120 4.3.3).
            _session.SetStreamNamespaces(extraPrefixes);
        }
        _hasExtraPrefixes = extraPrefixes is not null;
        _scope = extraPrefixes is null ? s_clientScope : ScopeOf(header);
        _awaitingHeader = false;

        var output = _connection.Output;
        WriteHeader(output, _session.StreamId, header.Lang);
        output.Write(FeaturesForPhase());
        return Next.Continue;
    }

    private bool NamesDomain(string? to)
    {
        if (to is null)
        {
            return false;
        }
        // Domain parts compare case-insensitively, and a final dot is not part of them (RFC 7622 3.2).
        var name = to.AsSpan();
        if (name.Length > 1 && name[^1] == '.')
        {
            name = name[..^1];
        }
        return name.Equals(_handler.Settings.Domain, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>RFC 6120 4.7.5: "major.minor", each a non-negative integer; the edge accepts major version 1.</summary>
    private static bool IsVersion1(string? version)
    {
        if (version is null)
        {
            return false;
        }
        var dot = version.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0 || dot == version.Length - 1)
        {
            return false;
        }
        var major = version.AsSpan(0, dot).TrimStart('0');
        var minor = version.AsSpan(dot + 1);
        return major.SequenceEqual("1") && minor.IndexOfAnyExceptInRange('0', '9') < 0;
    }

    /// <summary>The prefixes a client header declares beyond the default namespace and <c>stream</c>; null when none.</summary>
    private static List<KeyValuePair<string, string>>? ExtraPrefixes(StreamHeader header)
    {
        List<KeyValuePair<string, string>>? extra = null;
        foreach (var declaration in header.NamespaceDeclarations)
        {
            if (declaration.Key.Length == 0 || (declaration.Key == "stream" && declaration.Value == XmppNamespaces.Stream))
            {
                continue;
            }
            (extra ??= []).Add(declaration);
        }
        return extra;
    }

    /// <summary>The namespace context of a header with prefixes of its own, for reading the stream's elements.</summary>
    private static XmlNamespaceScope ScopeOf(StreamHeader header)
    {
        var prefixes = new List<KeyValuePair<string, string>>(header.NamespaceDeclarations.Count);
        foreach (var declaration in header.NamespaceDeclarations)
        {
            if (declaration.Key.Length != 0)
            {
                prefixes.Add(declaration);
            }
        }
        return XmlNamespaceScope.Create(XmppNamespaces.Client, prefixes);
    }

    private byte[] FeaturesForPhase()
    {
        if (_phase != Phase.Unauthenticated)
        {
            return StreamFeatures.Authenticated;
        }
        var features = _handler.Features;
        if (_connection.IsSecure)
        {
            return features.Secure;
        }
        if (!_connection.CanStartTls)
        {
            return features.ClearWithoutStartTls;
        }
        return features.Configuration.TlsRequired ? features.StartTlsRequired : features.ClearWithStartTls;
    }

    // ---- top-level elements ---------------------------------------------------------------------

    private Next OnElement(in ReadOnlySequence<byte> bytes)
    {
        if (bytes.IsSingleSegment)
        {
            return OnElement(bytes.FirstSpan);
        }
        // An element across pipe segments (4 KiB blocks) is read from one contiguous copy.
        var length = (int)bytes.Length;
        var copy = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            bytes.CopyTo(copy);
            return OnElement(copy.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(copy);
        }
    }

    private Next OnElement(ReadOnlySpan<byte> bytes)
    {
        XmlElementReader element;
        try
        {
            element = new XmlElementReader(bytes, _scope);
        }
        catch (FormatException e)
        {
            // The scanner validated the element; a reader that disagrees is a bug, not the client's fault.
            StreamLog.ReaderDisagrees(_handler.Logger, _connection.Id, e.Message);
            return CloseNow(StreamErrorCondition.InternalServerError, CloseReason.InternalError, null);
        }

        if (element.NamespaceIs(XmppNamespaces.Client))
        {
            var name = element.LocalName;
            if (name.SequenceEqual("message"u8) || name.SequenceEqual("presence"u8) || name.SequenceEqual("iq"u8))
            {
                return OnStanza(element);
            }
        }
        else if (element.NamespaceIs(XmppNamespaces.Sasl))
        {
            return OnSasl(element);
        }
        else if (element.NameIs("starttls"u8, XmppNamespaces.Tls))
        {
            return OnStartTls();
        }
        else if (element.NameIs("error"u8, XmppNamespaces.Stream))
        {
            // RFC 6120 4.9.1.1: the client is closing with an error; the stream ends.
            StreamLog.ClientStreamError(_handler.Logger, _connection.Id, element.ToString());
            Close(CloseRequest.ClientGone);
            return Next.Close;
        }
        else if (element.NamespaceIs(StreamWire.SmV3) || element.NamespaceIs(StreamWire.SmV2))
        {
            // XEP-0198 defines an answer for a request to enable or resume; the core would reject
            // the element as unknown (spec 6.1.1), so it never goes up.
            if (element.LocalName.SequenceEqual("enable"u8) || element.LocalName.SequenceEqual("resume"u8))
            {
                _connection.Output.Write(element.NamespaceIs(StreamWire.SmV3) ? StreamWire.SmV3Failed : StreamWire.SmV2Failed);
                return Next.Continue;
            }
        }
        else if (element.NamespaceIs(StreamWire.Csi))
        {
            // XEP-0352 has no answer; without CSI on the edge a state change is simply not acted on.
            return Next.Continue;
        }
        else if (element.NameIs("compress"u8, StreamWire.CompressProtocol))
        {
            _connection.Output.Write(StreamWire.CompressFailed);
            return Next.Continue;
        }
        // RFC 6120 4.9.3.24: a first-level element the server does not support here (a <route> of
        // the link protocol, SASL2, a stanza in another namespace, anything unknown).
        return CloseNow(StreamErrorCondition.UnsupportedStanzaType, CloseReason.ProtocolError, null);
    }

    // ---- STARTTLS (RFC 6120 5.4) ----------------------------------------------------------------

    private Next OnStartTls()
    {
        if (_phase == Phase.Unauthenticated && _connection.CanStartTls)
        {
            return Next.StartTls;
        }
        // RFC 6120 5.4.2.2: already secure, after authentication, or no certificate: <failure/> and close.
        _connection.Output.Write(StreamWire.TlsFailure);
        Close(new CloseRequest(StreamErrorCondition.None, CloseReason.ProtocolError, null));
        return Next.Close;
    }

    // ---- SASL (RFC 6120 6, relayed to the core, spec 7.1) ---------------------------------------

    private Next OnSasl(in XmlElementReader element)
    {
        var name = element.LocalName;
        var isAuth = name.SequenceEqual("auth"u8);
        if (_phase != Phase.Unauthenticated || !(isAuth || name.SequenceEqual("response"u8) || name.SequenceEqual("abort"u8)))
        {
            // SASL happens once, before the restart (RFC 6120 6.4.6); success, challenge and
            // failure come from the server only.
            return CloseNow(StreamErrorCondition.UnsupportedStanzaType, CloseReason.ProtocolError, null);
        }
        if (name.SequenceEqual("abort"u8))
        {
            // Answered here: the core rejects <abort/> as an unknown element (spec 7.1). A later <auth>
            // replaces the core's half-finished exchange.
            _connection.Output.Write(StreamWire.SaslAborted);
            return Next.Continue;
        }
        if (!_connection.IsSecure && (_handler.Features.Configuration.TlsRequired || (isAuth && StreamFeatures.AsksForPlain(element))))
        {
            // PLAIN sends the password itself: encrypted streams only, as Prosody and ejabberd do.
            _connection.Output.Write(StreamWire.SaslEncryptionRequired);
            return Next.Continue;
        }
        if (isAuth && !_handler.Features.Offers(element))
        {
            _connection.Output.Write(StreamWire.SaslInvalidMechanism);
            return Next.Continue;
        }
        return Next.Route;
    }

    // ---- stanzas (RFC 6120 8) -------------------------------------------------------------------

    private Next OnStanza(in XmlElementReader stanza)
    {
        var name = stanza.LocalName;
        var isIq = name.SequenceEqual("iq"u8);
        switch (_phase)
        {
            case Phase.Unauthenticated:
                if (!isIq || !IsPreAuthenticationIq(stanza))
                {
                    // RFC 6120 4.9.3.12: stanzas before the stream is authenticated.
                    return CloseNow(StreamErrorCondition.NotAuthorized, CloseReason.ProtocolError, "authenticate first");
                }
                break;
            case Phase.Authenticated:
                if (!isIq)
                {
                    // RFC 6120 7.1: no stanza other than the binding request before a resource is bound.
                    return CloseNow(StreamErrorCondition.NotAuthorized, CloseReason.ProtocolError, "bind a resource first");
                }
                break;
        }

        var verdict = isIq ? CheckIq(stanza) : name.SequenceEqual("message"u8) ? CheckMessage(stanza) : CheckPresence(stanza);
        if (verdict == Verdict.Forward)
        {
            verdict = CheckAddresses(stanza);
        }
        switch (verdict)
        {
            case Verdict.Forward:
                return isIq ? OnIq(stanza) : Next.Route;
            case Verdict.Drop:
                return Next.Continue;
            default:
                ReplyWithError(stanza, ConditionOf(verdict));
                return Next.Continue;
        }
    }

    /// <summary>XEP-0077 registration and XEP-0078 authentication, if advertised (encrypted streams only, see <see cref="StreamFeatures"/>).</summary>
    private bool IsPreAuthenticationIq(in XmlElementReader iq)
    {
        if (!_connection.IsSecure || !iq.TryGetFirstChild(out var query))
        {
            return false;
        }
        var configuration = _handler.Features.Configuration;
        return (configuration.Register && query.NameIs("query"u8, StreamWire.IqRegister))
            || (configuration.IqAuth && query.NameIs("query"u8, StreamWire.IqAuth));
    }

    /// <summary>An IQ that passed the checks: the phase's rules, and the requests whose answers end negotiation.</summary>
    private Next OnIq(in XmlElementReader iq)
    {
        var type = IqTypes.Of(iq);
        if (type is IqType.Get or IqType.Set)
        {
            var payload = iq.FirstChild;
            if (_phase == Phase.Authenticated)
            {
                if (type == IqType.Set && payload.NameIs("bind"u8, XmppNamespaces.Bind))
                {
                    TrackPendingIq(iq);
                }
                else if (!payload.NameIs("session"u8, XmppNamespaces.Session))
                {
                    // RFC 6120 7.1 allows only the binding before a resource; the legacy session IQ
                    // (RFC 3921 3) is harmless and some clients send it early.
                    ReplyWithError(iq, StanzaErrorCondition.NotAuthorized);
                    return Next.Continue;
                }
            }
            else if (_phase == Phase.Unauthenticated && type == IqType.Set && payload.NameIs("query"u8, StreamWire.IqAuth))
            {
                TrackPendingIq(iq);
            }
        }
        else if (_phase == Phase.Established && iq.AttributeEquals("id"u8, StreamWire.PingId) && !iq.HasAttribute("to"u8))
        {
            // The client's answer to the edge's own idle ping: it proved the client alive, and the
            // core knows nothing of the request.
            return Next.Continue;
        }
        else if (_phase != Phase.Established)
        {
            // Nobody has asked a negotiating client anything.
            return Next.Continue;
        }
        return Next.Route;
    }

    /// <summary>A bind (RFC 6120 7) or XEP-0078 login, whose result establishes the stream.</summary>
    private void TrackPendingIq(in XmlElementReader iq) => Volatile.Write(ref _pendingIqId, iq.GetAttribute("id"u8));

    private enum Verdict : byte
    {
        Forward,
        Drop,
        BadRequest,
        JidMalformed,
    }

    private static StanzaErrorCondition ConditionOf(Verdict verdict)
        => verdict == Verdict.JidMalformed ? StanzaErrorCondition.JidMalformed : StanzaErrorCondition.BadRequest;

    /// <summary>
    /// RFC 6120 8.2.3: an id, a known type, and exactly one payload in a request. Openfire closes the
    /// whole link for an unknown type (spec 0.1 point 6) and for a request without payload (spec 2).
    /// </summary>
    private static Verdict CheckIq(in XmlElementReader iq)
    {
        var type = IqTypes.Of(iq);
        if (type is IqType.Result or IqType.Error)
        {
            // A response without an id answers nothing, and responses are never answered (RFC 6120 8.2.3).
            return iq.HasAttribute("id"u8) ? Verdict.Forward : Verdict.Drop;
        }
        if (type == IqType.Invalid || !iq.HasAttribute("id"u8))
        {
            return Verdict.BadRequest;
        }
        var children = 0;
        foreach (var _ in iq.Children)
        {
            children++;
        }
        return children == 1 ? Verdict.Forward : Verdict.BadRequest;
    }

    /// <summary>RFC 6121 5.2.2: the message types.</summary>
    private static Verdict CheckMessage(in XmlElementReader message)
    {
        if (!message.TryGetAttribute("type"u8, out var type)
            || type.SequenceEqual("chat"u8) || type.SequenceEqual("normal"u8) || type.SequenceEqual("groupchat"u8)
            || type.SequenceEqual("headline"u8) || type.SequenceEqual("error"u8))
        {
            return Verdict.Forward;
        }
        return Verdict.BadRequest;
    }

    /// <summary>RFC 6121 4.7.1 and 3: the presence types (none = available).</summary>
    private static Verdict CheckPresence(in XmlElementReader presence)
    {
        if (!presence.TryGetAttribute("type"u8, out var type)
            || type.SequenceEqual("unavailable"u8) || type.SequenceEqual("subscribe"u8) || type.SequenceEqual("subscribed"u8)
            || type.SequenceEqual("unsubscribe"u8) || type.SequenceEqual("unsubscribed"u8) || type.SequenceEqual("probe"u8)
            || type.SequenceEqual("error"u8))
        {
            return Verdict.Forward;
        }
        return Verdict.BadRequest;
    }

    /// <summary>
    /// <c>to</c> and <c>from</c> must be JIDs. Openfire skips JID validation of routed stanzas
    /// because it trusts the CM to have done it (spec 6.1.1); Jive's CM answered a bad one with
    /// <c>jid-malformed</c> and forwarded nothing. A stanza of type <c>error</c> (or an IQ result)
    /// is dropped instead: responses are never answered (RFC 6120 8.3.1).
    /// </summary>
    private static Verdict CheckAddresses(in XmlElementReader stanza)
    {
        if (IsValidJidAttribute(stanza, "to"u8) && IsValidJidAttribute(stanza, "from"u8))
        {
            return Verdict.Forward;
        }
        return stanza.AttributeEquals("type"u8, "error"u8) || stanza.AttributeEquals("type"u8, "result"u8)
            ? Verdict.Drop
            : Verdict.JidMalformed;
    }

    private static bool IsValidJidAttribute(in XmlElementReader stanza, ReadOnlySpan<byte> name)
    {
        if (!stanza.TryGetAttribute(name, out var raw))
        {
            return true;
        }
        if (raw.Length > MaxJidBytes * 6)
        {
            // Even fully escaped (&#xNNNNN; per byte at most) it cannot unescape to a JID.
            return false;
        }
        byte[]? rented = null;
        var buffer = raw.Length <= 512 ? stackalloc byte[512] : (rented = ArrayPool<byte>.Shared.Rent(raw.Length));
        try
        {
            return stanza.TryCopyAttribute(name, buffer, out var written)
                && written <= MaxJidBytes
                && Jid.IsValid(buffer[..written]);
        }
        catch (FormatException)
        {
            return false;
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>
    /// An error reply written by the edge on the server's behalf (RFC 6120 8.3): same element and
    /// id, type error, no <c>from</c> (the server itself, RFC 6120 8.1.2.1), never the offending
    /// addresses back. Nothing is sent in reply to an error (RFC 6120 8.3.1).
    /// </summary>
    private void ReplyWithError(in XmlElementReader stanza, StanzaErrorCondition condition)
    {
        if (stanza.AttributeEquals("type"u8, "error"u8))
        {
            return;
        }
        var writer = new XmlBufferWriter(_connection.Output);
        writer.StartElement(stanza.QualifiedName);
        foreach (var declaration in stanza.NamespaceDeclarations)
        {
            writer.RawAttribute(declaration.QualifiedName, declaration.RawValue);
        }
        if (stanza.TryGetAttribute("id"u8, out var id))
        {
            writer.RawAttribute("id"u8, id);
        }
        writer.Attribute("type"u8, "error"u8);
        XmppElements.WriteStanzaError(ref writer, condition);
        writer.EndElement();
        StreamLog.StanzaRefused(_handler.Logger, _connection.Id, condition.ToElementName());
    }

    private Next CloseNow(StreamErrorCondition condition, CloseReason reason, string? text)
        => CloseNow(new CloseRequest(condition, reason, text));

    private Next CloseNow(CloseRequest request)
    {
        Close(request);
        return Next.Close;
    }
}
