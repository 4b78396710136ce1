using System.Security.Cryptography;
using System.Text;
using System.Xml;
using System.Xml.Linq;

namespace ConnMgr.Tests.OpenfireDouble;

/// <summary>Names and the few serialisation rules of Openfire's side of the link, written from the spec.</summary>
internal static class DoubleWire
{
    public const string Streams = "http://etherx.jabber.org/streams";
    public const string StreamErrors = "urn:ietf:params:xml:ns:xmpp-streams";
    public const string Stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";
    public const string LinkNamespace = "jabber:connectionmanager";
    public const string Cm = "http://jabber.org/protocol/connectionmanager";
    public const string CmErrors = "http://jabber.org/protocol/connectionmanager#errors";
    public const string Tls = "urn:ietf:params:xml:ns:xmpp-tls";
    public const string Sasl = "urn:ietf:params:xml:ns:xmpp-sasl";
    public const string Bind = "urn:ietf:params:xml:ns:xmpp-bind";
    public const string Session = "urn:ietf:params:xml:ns:xmpp-session";
    public const string Ping = "urn:xmpp:ping";
    public const string Compress = "http://jabber.org/protocol/compress";

    /// <summary>Content namespaces Openfire's reader drops when it builds elements (spec 6.1, [S29]).</summary>
    private static readonly HashSet<string> s_contentNamespaces = [LinkNamespace, "jabber:client", "jabber:server"];

    /// <summary>dom4j text escaping: &amp;, &lt; and &gt;, not quotes (spec 6.2 [EXP]).</summary>
    public static string EscapeText(string text) =>
        text.Replace("&", "&amp;", StringComparison.Ordinal)
            .Replace("<", "&lt;", StringComparison.Ordinal)
            .Replace(">", "&gt;", StringComparison.Ordinal);

    public static string EscapeAttribute(string value) => EscapeText(value).Replace("\"", "&quot;", StringComparison.Ordinal);

    /// <summary>Attribute text <c> name="value"</c>, or nothing when the value is null.</summary>
    public static string Attr(string name, string? value) => value is null ? "" : $" {name}=\"{EscapeAttribute(value)}\"";

    /// <summary>A stream error as Openfire writes it, with its own <c>xmlns:stream</c> (spec 0.1 point 10).</summary>
    public static string StreamError(string condition, string? text = null) =>
        $"<stream:error xmlns:stream=\"{Streams}\"><{condition} xmlns=\"{StreamErrors}\"/>"
        + (text is null ? "" : $"<text xmlns=\"{StreamErrors}\">{EscapeText(text)}</text>")
        + "</stream:error>";

    /// <summary>
    /// A stanza error with the legacy <c>code</c> before <c>type</c>, as Tinder's <c>PacketError.setCondition</c>
    /// writes it (spec 5.2), and an optional application condition in the CM errors namespace (spec 5.6).
    /// </summary>
    public static string StanzaError(string condition, string? cmErrorCondition = null)
    {
        (int code, string type) = condition switch
        {
            "bad-request" => (400, "modify"),
            "jid-malformed" => (400, "modify"),
            "unexpected-request" => (400, "wait"),
            "not-authorized" => (401, "auth"),
            "forbidden" => (403, "auth"),
            "item-not-found" => (404, "cancel"),
            "remote-server-not-found" => (404, "cancel"),
            "recipient-unavailable" => (404, "wait"),
            "not-allowed" => (405, "cancel"),
            "conflict" => (409, "cancel"),
            "internal-server-error" => (500, "wait"),
            "resource-constraint" => (500, "wait"),
            "feature-not-implemented" => (501, "cancel"),
            "service-unavailable" => (503, "cancel"),
            _ => (500, "cancel"),
        };
        string app = cmErrorCondition is null ? "" : $"<{cmErrorCondition} xmlns=\"{CmErrors}\"/>";
        return $"<error code=\"{code}\" type=\"{type}\"><{condition} xmlns=\"{Stanzas}\"/>{app}</error>";
    }

    /// <summary>
    /// Reply to an IQ as Tinder's <c>IQ.createResultIQ</c> builds it: <c>type</c>, <c>id</c>, then
    /// <c>from</c>/<c>to</c> swapped from the request, each only if the request had the other (spec 5.2).
    /// </summary>
    public static string IqReply(XElement request, string type, string? childXml, string? errorXml = null)
    {
        string start = $"<iq type=\"{type}\"{Attr("id", (string?)request.Attribute("id"))}"
            + $"{Attr("from", (string?)request.Attribute("to"))}{Attr("to", (string?)request.Attribute("from"))}";
        return childXml is null && errorXml is null ? start + "/>" : $"{start}>{childXml}{errorXml}</iq>";
    }

    /// <summary>
    /// Serialises an element as dom4j's <c>asXML()</c> would: no indentation, empty elements as <c>&lt;x/&gt;</c>
    /// (XmlWriter writes <c>&lt;x /&gt;</c>; the text <c>" /&gt;"</c> cannot occur elsewhere because XmlWriter
    /// escapes <c>&gt;</c> in text and attribute values). Content namespaces were removed when it was parsed.
    /// </summary>
    public static string Xml(XElement element) => element.ToString(SaveOptions.DisableFormatting).Replace(" />", "/>", StringComparison.Ordinal);

    /// <summary>
    /// Parses one top-level frame of a link in the context of that link's stream header: prefixed
    /// declarations of the header apply (spec 3.2, OF-2556) and the default namespace is the link's.
    /// Throws <see cref="XmlException"/> for anything that is not standalone, well-formed XML 1.0
    /// (undeclared prefixes, character references to illegal code points, DTDs: spec 2).
    /// </summary>
    public static XElement ParseFrame(string text, IReadOnlyDictionary<string, string> headerNamespaces)
    {
        var names = new NameTable();
        var namespaces = new XmlNamespaceManager(names);
        foreach ((string prefix, string uri) in headerNamespaces)
        {
            namespaces.AddNamespace(prefix, uri);
        }

        namespaces.AddNamespace("", LinkNamespace);
        var settings = new XmlReaderSettings
        {
            DtdProcessing = DtdProcessing.Prohibit,
            XmlResolver = null,
            CheckCharacters = true,
            NameTable = names,
        };
        using var reader = XmlReader.Create(new StringReader(text), settings, new XmlParserContext(names, namespaces, null, XmlSpace.None));
        XElement element = XElement.Load(reader, LoadOptions.PreserveWhitespace);
        RemoveNamespaces(element, s_contentNamespaces);
        return element;
    }

    /// <summary>
    /// A copy of a stanza carried inside a CM element (<c>failed</c>), without the CM namespace it
    /// inherited from its parent, so that it reads as the client stanza it is.
    /// </summary>
    public static XElement Unwrapped(XElement stanza)
    {
        var copy = new XElement(stanza);
        RemoveNamespaces(copy, new HashSet<string> { Cm });
        return copy;
    }

    private static void RemoveNamespaces(XElement root, IReadOnlySet<string> namespaces)
    {
        foreach (XElement element in root.DescendantsAndSelf())
        {
            if (namespaces.Contains(element.Name.NamespaceName))
            {
                element.Name = XName.Get(element.Name.LocalName);
            }

            foreach (XAttribute declaration in element.Attributes().Where(a => a.IsNamespaceDeclaration && a.Name.LocalName == "xmlns" && namespaces.Contains(a.Value)).ToList())
            {
                declaration.Remove();
            }
        }
    }

    /// <summary>Java's <c>String.hashCode()</c> (UTF-16 code units, 32-bit wrap-around), used for link pinning (spec 8.2).</summary>
    public static int JavaHashCode(string value)
    {
        int hash = 0;
        foreach (char c in value)
        {
            hash = unchecked((31 * hash) + c);
        }

        return hash;
    }

    /// <summary>Lower-case hex SHA-1 of id‖secret, the link handshake digest (spec 3.6).</summary>
    public static string HandshakeDigest(string streamId, string secret) =>
        Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(streamId + secret)));

    /// <summary>Splits <c>[local@]domain[/resource]</c>; null when it is not a plausible JID (RFC 7622 part lengths, no spaces or controls).</summary>
    public static (string? Local, string Domain, string? Resource)? SplitJid(string jid)
    {
        int slash = jid.IndexOf('/');
        string bare = slash < 0 ? jid : jid[..slash];
        string? resource = slash < 0 ? null : jid[(slash + 1)..];
        int at = bare.IndexOf('@');
        string? local = at < 0 ? null : bare[..at];
        string domain = at < 0 ? bare : bare[(at + 1)..];
        if (!ValidPart(domain, "@/\"&'<>: ") || (local is not null && !ValidPart(local, "@/\"&'<>: ")) || (resource is not null && !ValidPart(resource, "")))
        {
            return null;
        }

        return (local, domain.ToLowerInvariant(), resource);
    }

    private static bool ValidPart(string part, string forbidden)
    {
        // RFC 7622 section 3: each part is 1 to 1023 octets.
        if (part.Length is 0 or > 1023)
        {
            return false;
        }

        foreach (char c in part)
        {
            if (c < 0x20 || c == 0x7F || forbidden.Contains(c))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Random base-36 identifier, like Openfire's stream IDs (spec 3.4, [S26]).</summary>
    public static string RandomBase36(int length)
    {
        const string alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";
        return RandomNumberGenerator.GetString(alphabet, length);
    }
}
