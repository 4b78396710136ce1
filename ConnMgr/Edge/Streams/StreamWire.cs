namespace ConnMgr.Edge.Streams;

/// <summary>The fixed elements the edge answers clients with itself, as bytes.</summary>
internal static class StreamWire
{
    public const string SmV2 = "urn:xmpp:sm:2";
    public const string SmV3 = "urn:xmpp:sm:3";
    public const string Csi = "urn:xmpp:csi:0";
    public const string CompressProtocol = "http://jabber.org/protocol/compress";
    public const string IqRegister = "jabber:iq:register";
    public const string IqAuth = "jabber:iq:auth";

    /// <summary>The id of the edge's idle pings (XEP-0199); the client's answer to it stays on the edge.</summary>
    public const string PingId = "connmgr-idle-ping";

    /// <summary>RFC 6120 5.4.2.3: go ahead with the TLS handshake.</summary>
    public static ReadOnlySpan<byte> Proceed => "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"u8;

    /// <summary>RFC 6120 5.4.2.2: STARTTLS cannot proceed; the stream is closed after it.</summary>
    public static ReadOnlySpan<byte> TlsFailure => "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"u8;

    /// <summary>RFC 6120 6.4.5: the answer to &lt;abort/&gt;, which the core would refuse as an unknown element (spec 7.1).</summary>
    public static ReadOnlySpan<byte> SaslAborted => "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><aborted/></failure>"u8;

    /// <summary>RFC 6120 6.5.4: PLAIN (or any mechanism while TLS is required) on a stream in clear.</summary>
    public static ReadOnlySpan<byte> SaslEncryptionRequired => "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><encryption-required/></failure>"u8;

    /// <summary>RFC 6120 6.5.5: a mechanism the core did not list (EXTERNAL, *-PLUS, anything unknown).</summary>
    public static ReadOnlySpan<byte> SaslInvalidMechanism => "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><invalid-mechanism/></failure>"u8;

    /// <summary>XEP-0198 section 3, for a client that asks for stream management although it was not offered.</summary>
    public static ReadOnlySpan<byte> SmV3Failed => "<failed xmlns='urn:xmpp:sm:3'><feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"u8;

    public static ReadOnlySpan<byte> SmV2Failed => "<failed xmlns='urn:xmpp:sm:2'><feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"u8;

    /// <summary>XEP-0138 section 5, for a client that asks for compression although it was not offered.</summary>
    public static ReadOnlySpan<byte> CompressFailed => "<failure xmlns='http://jabber.org/protocol/compress'><setup-failed/></failure>"u8;

    /// <summary>The XEP-0199 ping sent to a client silent for <c>Edge:IdleTimeoutSeconds</c>, from the domain.</summary>
    public static byte[] Ping(string domain) => System.Text.Encoding.UTF8.GetBytes(
        $"<iq type='get' id='{PingId}' from='{Protocol.Xml.XmlEscaping.EscapeAttribute(domain)}'><ping xmlns='urn:xmpp:ping'/></iq>");
}
