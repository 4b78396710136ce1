using System.Buffers;
using System.Net;
using System.Text;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Xml;

namespace ConnMgr.Edge.Upstream;

/// <summary>
/// The elements the edge writes on a link, as bytes. IQ ids name what they ask and for which
/// stream ID (<c>create-ID</c>, <c>close-ID</c>, <c>failed-ID</c>), so a reply is understood
/// even when the server does not echo the child (Openfire does, spec 5.2; other cores need not).
/// </summary>
internal static class LinkWire
{
    public static ReadOnlySpan<byte> CreateIdPrefix => "create-"u8;
    public static ReadOnlySpan<byte> CloseIdPrefix => "close-"u8;
    public static ReadOnlySpan<byte> FailedIdPrefix => "failed-"u8;

    /// <summary>Stream end of a link we close on purpose (spec 8.5).</summary>
    public static ReadOnlySpan<byte> StreamEnd => "</stream:stream>"u8;

    /// <summary>Whitespace keepalive (spec 8.3).</summary>
    public static ReadOnlySpan<byte> Keepalive => " "u8;

    public static ReadOnlySpan<byte> StartTls => "<starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"/>"u8;

    public static ReadOnlySpan<byte> RouteEnd => "</route>"u8;

    private static ReadOnlySpan<byte> SessionStart => "\"><session xmlns=\"http://jabber.org/protocol/connectionmanager\" id=\""u8;

    /// <summary>
    /// The link's stream header (spec 3.2): the stream prefix must be <c>stream</c> and the
    /// default namespace <c>jabber:connectionmanager</c>, or Openfire ignores or refuses it.
    /// </summary>
    public static byte[] StreamHeader(string linkJid)
        => Encoding.UTF8.GetBytes(
            "<?xml version='1.0' encoding='UTF-8'?><stream:stream xmlns:stream=\"http://etherx.jabber.org/streams\" " +
            $"xmlns=\"jabber:connectionmanager\" to=\"{XmlEscaping.EscapeAttribute(linkJid)}\" version=\"1.0\">");

    /// <summary><c>&lt;handshake&gt;</c> with the digest exactly, no whitespace (spec 3.6).</summary>
    public static byte[] Handshake(string digest) => Encoding.ASCII.GetBytes($"<handshake>{digest}</handshake>");

    /// <summary>
    /// The start of a session's <c>&lt;route&gt;</c>, built once per session. No <c>to</c>/<c>from</c>:
    /// Openfire only swaps them into error replies (spec 6.1). The client's extra prefix
    /// declarations go on the envelope because the child must parse standalone on the link (spec 2).
    /// </summary>
    public static byte[] RouteStart(string streamId, IEnumerable<KeyValuePair<string, string>>? namespaces)
    {
        var buffer = new ArrayBufferWriter<byte>(64);
        buffer.Write("<route streamid=\""u8);
        Ascii(buffer, streamId);
        buffer.Write("\""u8);
        if (namespaces is not null)
        {
            foreach (var (prefix, uri) in namespaces)
            {
                // The default namespace stays the link's, which Openfire drops from stanzas
                // (spec 6.1); xml and xmlns are bound by XML itself, stream by the link header.
                if (prefix.Length == 0 || prefix is "xml" or "xmlns" || (prefix == "stream" && uri == XmppNamespaces.Stream))
                {
                    continue;
                }
                buffer.Write(" xmlns:"u8);
                buffer.Write(Encoding.UTF8.GetBytes(prefix));
                buffer.Write("=\""u8);
                XmlEscaping.EscapeAttribute(uri, buffer);
                buffer.Write("\""u8);
            }
        }
        buffer.Write(">"u8);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// <c>create</c> with the client's IP literal as both <c>name</c> and <c>address</c>
    /// (spec 5.2): Openfire resolves <c>address</c> with a DNS lookup if it is a name, and
    /// skips its IP allow/block lists when <c>host</c> is missing.
    /// </summary>
    public static void Create(IBufferWriter<byte> output, string streamId, IPAddress? clientAddress)
    {
        output.Write("<iq type=\"set\" id=\""u8);
        output.Write(CreateIdPrefix);
        Ascii(output, streamId);
        output.Write(SessionStart);
        Ascii(output, streamId);
        output.Write("\"><create>"u8);
        if (clientAddress is not null)
        {
            // An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d; the server's
            // lists are written with the IPv4 form.
            var address = clientAddress.IsIPv4MappedToIPv6 ? clientAddress.MapToIPv4() : clientAddress;
            Span<char> text = stackalloc char[64];
            address.TryFormat(text, out var length);
            output.Write("<host name=\""u8);
            Ascii(output, text[..length]);
            output.Write("\" address=\""u8);
            Ascii(output, text[..length]);
            output.Write("\"/>"u8);
        }
        output.Write("</create></session></iq>"u8);
    }

    /// <summary><c>close</c> for a stream ID (spec 5.3).</summary>
    public static void Close(IBufferWriter<byte> output, string streamId)
    {
        output.Write("<iq type=\"set\" id=\""u8);
        output.Write(CloseIdPrefix);
        Ascii(output, streamId);
        output.Write(SessionStart);
        Ascii(output, streamId);
        output.Write("\"><close/></session></iq>"u8);
    }

    /// <summary>
    /// <c>failed</c> around one undelivered message (spec 5.5). Openfire stores the element
    /// as it parses it; written with no <c>xmlns</c> it would inherit the connection-manager
    /// namespace of <c>&lt;session&gt;</c> and be stored (and later delivered) in it, so a message
    /// without its own <c>xmlns</c> gets <c>jabber:client</c>, which Openfire's reader drops.
    /// </summary>
    public static void Failed(IBufferWriter<byte> output, string streamId, ReadOnlySpan<byte> message, bool messageHasXmlns)
    {
        output.Write("<iq type=\"set\" id=\""u8);
        output.Write(FailedIdPrefix);
        Ascii(output, streamId);
        output.Write(SessionStart);
        Ascii(output, streamId);
        output.Write("\"><failed>"u8);
        if (messageHasXmlns)
        {
            output.Write(message);
        }
        else
        {
            // "<message" is 8 bytes: callers only pass an unprefixed <message>.
            output.Write(message[..8]);
            output.Write(" xmlns=\"jabber:client\""u8);
            output.Write(message[8..]);
        }
        output.Write("</failed></session></iq>"u8);
    }

    /// <summary>An empty <c>result</c> to a server IQ; enough for Openfire, which ignores it (spec 3.7).</summary>
    public static void IqResult(IBufferWriter<byte> output, string id)
    {
        output.Write("<iq type=\"result\" id=\""u8);
        XmlEscaping.EscapeAttribute(id, output);
        output.Write("\"/>"u8);
    }

    /// <summary>
    /// <c>feature-not-implemented</c> to a server IQ this edge does not understand. Openfire
    /// only logs IQ errors from a CM (spec 5.6).
    /// </summary>
    public static void IqNotImplemented(IBufferWriter<byte> output, string id)
    {
        output.Write("<iq type=\"error\" id=\""u8);
        XmlEscaping.EscapeAttribute(id, output);
        output.Write("\"><error type=\"cancel\"><feature-not-implemented xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></error></iq>"u8);
    }

    /// <summary>Stream IDs, CM names and prefixes are ASCII by construction (spec 5.1).</summary>
    private static void Ascii(IBufferWriter<byte> output, ReadOnlySpan<char> text)
    {
        var span = output.GetSpan(text.Length);
        var written = Encoding.ASCII.GetBytes(text, span);
        output.Advance(written);
    }
}
