using System.Buffers;
using System.Text;

namespace ConnMgr.Protocol.Xml;

/// <summary>
/// The few XMPP elements every side writes: stream headers and ends, stream errors (RFC 6120 section 4.9)
/// and stanza errors (RFC 6120 section 8.3), written straight into the output without allocating.
/// </summary>
public static class XmppElements
{
    // Condition names as UTF-8, indexed by the enums' values.
    private static readonly byte[][] s_streamConditions = Utf8Names<StreamErrorCondition>(c => c.ToElementName());
    private static readonly byte[][] s_stanzaConditions = Utf8Names<StanzaErrorCondition>(c => c.ToElementName());
    private static readonly byte[][] s_stanzaErrorTypes = Utf8Names<StanzaErrorType>(t => t.ToAttributeValue());

    private static byte[][] Utf8Names<T>(Func<T, string> name) where T : struct, Enum
    {
        var values = Enum.GetValues<T>();
        var result = new byte[values.Length][];
        for (var i = 0; i < values.Length; i++)
            result[Convert.ToInt32(values[i], System.Globalization.CultureInfo.InvariantCulture)] = Encoding.UTF8.GetBytes(name(values[i]));
        return result;
    }

    /// <summary>
    /// Writes an opening stream header, left open:
    /// <c>&lt;stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='…' to='…' id='…' version='1.0' xml:lang='…'&gt;</c>.
    /// Null attributes are left out. It starts with <c>&lt;stream:stream</c> (after the optional XML
    /// declaration), which Openfire requires literally (spec 2).
    /// </summary>
    /// <param name="contentNamespace"><c>jabber:client</c> on client streams, <c>jabber:connectionmanager</c> on the link (spec 3.2).</param>
    public static void WriteStreamHeader(
        IBufferWriter<byte> output, string? from, string? to, string? id, string? version = "1.0", string? lang = null,
        string contentNamespace = XmppNamespaces.Client, bool includeXmlDeclaration = false)
    {
        var writer = new XmlBufferWriter(output);
        if (includeXmlDeclaration)
            writer.Raw("<?xml version='1.0' encoding='UTF-8'?>"u8);
        writer.StartElement("stream:stream"u8, contentNamespace);
        writer.NamespaceDeclaration("stream"u8, XmppNamespaces.Stream);
        writer.OptionalAttribute("from"u8, from);
        writer.OptionalAttribute("to"u8, to);
        writer.OptionalAttribute("id"u8, id);
        writer.OptionalAttribute("version"u8, version);
        writer.OptionalAttribute("xml:lang"u8, lang);
        writer.CloseStartTag();
    }

    /// <summary>Writes <c>&lt;/stream:stream&gt;</c>.</summary>
    public static void WriteStreamEnd(IBufferWriter<byte> output)
    {
        var writer = new XmlBufferWriter(output);
        writer.Raw("</stream:stream>"u8);
    }

    /// <summary>
    /// Writes <c>&lt;stream:error&gt;&lt;condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/&gt;[&lt;text …&gt;…&lt;/text&gt;]&lt;/stream:error&gt;</c>.
    /// </summary>
    /// <param name="includeStreamNamespaceDeclaration">
    /// Declare the <c>stream</c> prefix on the element itself. Needed where the prefix is not in scope:
    /// inside a route, and as Openfire writes it on the link (spec 0.1 point 10). On a client stream the
    /// header already declares it.
    /// </param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="condition"/> is <see cref="StreamErrorCondition.None"/>.</exception>
    public static void WriteStreamError(
        IBufferWriter<byte> output, StreamErrorCondition condition, string? text = null, bool includeStreamNamespaceDeclaration = false)
    {
        if (condition == StreamErrorCondition.None || (int)condition >= s_streamConditions.Length)
            throw new ArgumentOutOfRangeException(nameof(condition), condition, "A stream error needs a defined condition.");
        var writer = new XmlBufferWriter(output);
        writer.StartElement("stream:error"u8);
        if (includeStreamNamespaceDeclaration)
            writer.NamespaceDeclaration("stream"u8, XmppNamespaces.Stream);
        writer.StartElement(s_streamConditions[(int)condition], XmppNamespaces.Streams);
        writer.EndElement();
        if (text is not null)
        {
            writer.StartElement("text"u8, XmppNamespaces.Streams);
            writer.Text(text);
            writer.EndElement();
        }
        writer.EndElement();
    }

    /// <summary>
    /// Writes <c>&lt;error type='…' [code='…']&gt;&lt;condition xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/&gt;[&lt;text …&gt;…&lt;/text&gt;]&lt;/error&gt;</c>
    /// as content of the element the writer has open.
    /// </summary>
    /// <param name="type">Defaults to the condition's usual type (<see cref="StanzaErrorConditions.DefaultType"/>).</param>
    /// <param name="includeLegacyCode">Add the XEP-0086 <c>code</c>, as Openfire does (spec 5.2).</param>
    /// <param name="by">The entity that raised the error (RFC 6120 section 8.3.2), or null.</param>
    public static void WriteStanzaError(
        ref XmlBufferWriter writer, StanzaErrorCondition condition, StanzaErrorType? type = null, string? text = null,
        bool includeLegacyCode = false, string? by = null)
    {
        writer.StartElement("error"u8);
        writer.Attribute("type"u8, s_stanzaErrorTypes[(int)(type ?? condition.DefaultType())]);
        if (includeLegacyCode)
            writer.Attribute("code"u8, condition.LegacyCode());
        writer.OptionalAttribute("by"u8, by);
        writer.StartElement(s_stanzaConditions[(int)condition], XmppNamespaces.Stanzas);
        writer.EndElement();
        if (text is not null)
        {
            writer.StartElement("text"u8, XmppNamespaces.Stanzas);
            writer.Text(text);
            writer.EndElement();
        }
        writer.EndElement();
    }

    /// <inheritdoc cref="WriteStanzaError(ref XmlBufferWriter, StanzaErrorCondition, StanzaErrorType?, string?, bool, string?)"/>
    public static void WriteStanzaError(
        IBufferWriter<byte> output, StanzaErrorCondition condition, StanzaErrorType? type = null, string? text = null,
        bool includeLegacyCode = false, string? by = null)
    {
        var writer = new XmlBufferWriter(output);
        WriteStanzaError(ref writer, condition, type, text, includeLegacyCode, by);
    }

    /// <summary>
    /// Writes the error reply to a stanza (RFC 6120 section 8.2): same element name and <c>id</c>,
    /// <c>to</c> and <c>from</c> swapped (each only if the original had its counterpart), <c>type='error'</c>,
    /// the original's own namespace declarations, optionally its content, then the error.
    /// Attribute values are copied as written, never unescaped.
    /// </summary>
    /// <param name="includeOriginalContent">Copy the original's content before the error. It is copied as bytes, so
    /// prefixes it uses must be declared on the stanza or wherever the reply is written (the same stream).</param>
    /// <returns>False, writing nothing, when the stanza is itself an error, which must never be answered
    /// with an error (RFC 6120 section 8.3.1).</returns>
    public static bool TryWriteErrorReply(
        IBufferWriter<byte> output, scoped in XmlElementReader stanza, StanzaErrorCondition condition,
        StanzaErrorType? type = null, string? text = null, bool includeOriginalContent = false, bool includeLegacyCode = false)
    {
        if (stanza.AttributeEquals("type"u8, "error"u8))
            return false;
        var writer = new XmlBufferWriter(output);
        writer.StartElement(stanza.QualifiedName);
        foreach (var declaration in stanza.NamespaceDeclarations)
            writer.RawAttribute(declaration.QualifiedName, declaration.RawValue);
        if (stanza.TryGetAttribute("to"u8, out var to))
            writer.RawAttribute("from"u8, to);
        if (stanza.TryGetAttribute("from"u8, out var from))
            writer.RawAttribute("to"u8, from);
        if (stanza.TryGetAttribute("id"u8, out var id))
            writer.RawAttribute("id"u8, id);
        writer.Attribute("type"u8, "error"u8);
        if (includeOriginalContent)
            writer.Raw(stanza.InnerRaw);
        WriteStanzaError(ref writer, condition, type, text, includeLegacyCode);
        writer.EndElement();
        return true;
    }
}
