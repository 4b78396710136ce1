using System.Buffers;
using System.Globalization;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Xml;

namespace ConnMgr.Core.Stanzas;

/// <summary>Rewrites of client stanzas: stamping <c>from</c>, error replies, delayed delivery.</summary>
internal static class StanzaWriting
{
    /// <summary>
    /// Copies a stanza with <c>from</c> set to <paramref name="from"/>, whatever the client wrote
    /// (RFC 6120 8.1.2.1: the server stamps the sender's address, so a forged <c>from</c> goes
    /// nowhere), and <c>to</c> replaced by <paramref name="to"/> when given, else kept. Every other
    /// attribute, the namespace declarations and the content are copied as bytes.
    /// </summary>
    public static void WriteStamped(IBufferWriter<byte> output, scoped in XmlElementReader stanza, string from, string? to)
    {
        var writer = new XmlBufferWriter(output);
        StartCopy(ref writer, stanza, from, to, keepTo: true);
        CopyContentAndEnd(ref writer, stanza);
    }

    /// <summary>Like <see cref="WriteStamped"/> but with <c>to</c> removed unless given: the form kept as a session's presence.</summary>
    public static void WriteStampedWithoutTo(IBufferWriter<byte> output, scoped in XmlElementReader stanza, string from)
    {
        var writer = new XmlBufferWriter(output);
        StartCopy(ref writer, stanza, from, to: null, keepTo: false);
        CopyContentAndEnd(ref writer, stanza);
    }

    /// <summary>A stored stanza with <c>to</c> set, everything else (its stamped <c>from</c> included) kept.</summary>
    public static void WriteAddressed(IBufferWriter<byte> output, scoped in XmlElementReader stanza, string to)
    {
        var writer = new XmlBufferWriter(output);
        writer.StartElement(stanza.QualifiedName);
        foreach (var declaration in stanza.NamespaceDeclarations)
        {
            writer.RawAttribute(declaration.QualifiedName, declaration.RawValue);
        }
        writer.Attribute("to"u8, to);
        foreach (var attribute in stanza.Attributes)
        {
            if (!attribute.QualifiedName.SequenceEqual("to"u8))
            {
                writer.RawAttribute(attribute.QualifiedName, attribute.RawValue);
            }
        }
        CopyContentAndEnd(ref writer, stanza);
    }

    /// <summary>
    /// A message taken from offline storage, as stored (stamped), with a XEP-0203 delay element
    /// added last: <c>&lt;delay xmlns='urn:xmpp:delay' from='domain' stamp='…Z'/&gt;</c>.
    /// </summary>
    public static void WriteWithDelay(IBufferWriter<byte> output, scoped in XmlElementReader stanza, string domain, DateTimeOffset stamp)
    {
        var writer = new XmlBufferWriter(output);
        writer.StartElement(stanza.QualifiedName);
        foreach (var declaration in stanza.NamespaceDeclarations)
        {
            writer.RawAttribute(declaration.QualifiedName, declaration.RawValue);
        }
        foreach (var attribute in stanza.Attributes)
        {
            writer.RawAttribute(attribute.QualifiedName, attribute.RawValue);
        }
        writer.Raw(stanza.InnerRaw);
        writer.StartElement("delay"u8, XmppNamespaces.Delay);
        writer.Attribute("from"u8, domain);
        // XEP-0082 DateTime in UTC with milliseconds.
        writer.Attribute("stamp"u8, stamp.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        writer.EndElement();
        writer.EndElement();
    }

    /// <summary>
    /// The error reply to a client stanza (RFC 6120 8.3.1): same element and <c>id</c>,
    /// <c>type='error'</c>, <c>from</c> the address the client wrote to, <c>to</c> the sender
    /// (<paramref name="to"/>, or none before binding), the original content when asked, then
    /// the error with its legacy code, as Openfire writes it.
    /// </summary>
    public static void WriteErrorReply(
        IBufferWriter<byte> output, scoped in XmlElementReader stanza, string? to, StanzaErrorCondition condition, bool includeContent, string? text = null)
    {
        var writer = new XmlBufferWriter(output);
        writer.StartElement(stanza.QualifiedName);
        foreach (var declaration in stanza.NamespaceDeclarations)
        {
            writer.RawAttribute(declaration.QualifiedName, declaration.RawValue);
        }
        if (stanza.TryGetAttribute("to"u8, out var originalTo))
        {
            writer.RawAttribute("from"u8, originalTo);
        }
        writer.OptionalAttribute("to"u8, to);
        if (stanza.TryGetAttribute("id"u8, out var id))
        {
            writer.RawAttribute("id"u8, id);
        }
        writer.Attribute("type"u8, "error"u8);
        if (includeContent)
        {
            writer.Raw(stanza.InnerRaw);
        }
        XmppElements.WriteStanzaError(ref writer, condition, text: text, includeLegacyCode: true);
        writer.EndElement();
    }

    private static void StartCopy(ref XmlBufferWriter writer, scoped in XmlElementReader stanza, string from, string? to, bool keepTo)
    {
        writer.StartElement(stanza.QualifiedName);
        foreach (var declaration in stanza.NamespaceDeclarations)
        {
            writer.RawAttribute(declaration.QualifiedName, declaration.RawValue);
        }
        writer.Attribute("from"u8, from);
        if (to is not null)
        {
            writer.Attribute("to"u8, to);
        }
        else if (keepTo && stanza.TryGetAttribute("to"u8, out var originalTo))
        {
            writer.RawAttribute("to"u8, originalTo);
        }
        foreach (var attribute in stanza.Attributes)
        {
            var name = attribute.QualifiedName;
            if (!name.SequenceEqual("from"u8) && !name.SequenceEqual("to"u8))
            {
                writer.RawAttribute(name, attribute.RawValue);
            }
        }
    }

    private static void CopyContentAndEnd(ref XmlBufferWriter writer, scoped in XmlElementReader stanza)
    {
        if (!stanza.IsEmptyElement)
        {
            writer.Raw(stanza.InnerRaw);
        }
        writer.EndElement();
    }
}
