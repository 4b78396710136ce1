using System.Buffers;
using ConnMgr.Core.Sasl;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Xml;

namespace ConnMgr.Core.Links;

/// <summary>
/// The link-level elements the core writes (spec 3, 5, 6): stream header and features, stream
/// errors, IQ replies to the CM's session IQs, route errors, and the route envelope.
/// </summary>
internal static class LinkWriting
{
    /// <summary>
    /// The header answering a CM's (spec 3.4): <c>from</c> echoes the CM's <c>to</c>, <c>id</c> is the
    /// handshake salt. Either may be null for the refusals of spec 3.3.
    /// </summary>
    public static void WriteStreamHeader(IBufferWriter<byte> output, string? from, string? id)
        => XmppElements.WriteStreamHeader(output, from, to: null, id, version: "1.0", lang: null,
            contentNamespace: XmppNamespaces.ConnectionManagerStream, includeXmlDeclaration: true);

    /// <summary>Features of a fresh link: never SASL (spec 3.4); <c>starttls</c> is not offered (link TLS policy "disabled").</summary>
    public static void WriteFeatures(IBufferWriter<byte> output)
    {
        var writer = new XmlBufferWriter(output);
        writer.StartElement("stream:features"u8);
        writer.EndElement();
    }

    /// <summary>A stream error and the stream's end, as Openfire writes them on the link (spec 0.1 point 10).</summary>
    public static void WriteStreamErrorAndEnd(IBufferWriter<byte> output, StreamErrorCondition condition, string? text)
    {
        XmppElements.WriteStreamError(output, condition, text, includeStreamNamespaceDeclaration: true);
        XmppElements.WriteStreamEnd(output);
    }

    /// <summary>
    /// Starts a reply to a CM IQ: <c>type</c>, the request's <c>id</c>, and <c>to</c>/<c>from</c>
    /// swapped (each only if the request had its counterpart, spec 5.2), leaving the element open.
    /// </summary>
    public static void StartIqReply(ref XmlBufferWriter writer, scoped in XmlElementReader request, bool error)
    {
        writer.StartElement("iq"u8);
        writer.Attribute("type"u8, error ? "error"u8 : "result"u8);
        if (request.TryGetAttribute("id"u8, out var id))
        {
            writer.RawAttribute("id"u8, id);
        }
        if (request.TryGetAttribute("to"u8, out var to))
        {
            writer.RawAttribute("from"u8, to);
        }
        if (request.TryGetAttribute("from"u8, out var from))
        {
            writer.RawAttribute("to"u8, from);
        }
    }

    /// <summary>
    /// The IQ reply to a CM session IQ: result or error, echoing the request's child (spec 5.6),
    /// then the error with its legacy code and optional application-specific condition.
    /// </summary>
    public static void WriteIqReply(
        IBufferWriter<byte> output, scoped in XmlElementReader request, StanzaErrorCondition? condition,
        ReadOnlySpan<byte> appCondition = default)
    {
        var writer = new XmlBufferWriter(output);
        StartIqReply(ref writer, request, condition is not null);
        if (request.TryGetFirstChild(out var child))
        {
            writer.Raw(child.Raw);
        }
        if (condition is { } c)
        {
            WriteError(ref writer, c, appCondition);
        }
        writer.EndElement();
    }

    /// <summary>
    /// A route error (spec 6.1.3): the request's <c>streamid</c> and <c>id</c>, <c>to</c>/<c>from</c>
    /// swapped, <c>type='error'</c>, and only the error, never the offending stanza.
    /// </summary>
    public static void WriteRouteError(
        IBufferWriter<byte> output, scoped in XmlElementReader route, StanzaErrorCondition condition, ReadOnlySpan<byte> appCondition = default)
    {
        var writer = new XmlBufferWriter(output);
        writer.StartElement("route"u8);
        if (route.TryGetAttribute("streamid"u8, out var streamId))
        {
            writer.RawAttribute("streamid"u8, streamId);
        }
        if (route.TryGetAttribute("to"u8, out var to))
        {
            writer.RawAttribute("from"u8, to);
        }
        if (route.TryGetAttribute("from"u8, out var from))
        {
            writer.RawAttribute("to"u8, from);
        }
        if (route.TryGetAttribute("id"u8, out var id))
        {
            writer.RawAttribute("id"u8, id);
        }
        writer.Attribute("type"u8, "error"u8);
        WriteError(ref writer, condition, appCondition);
        writer.EndElement();
    }

    /// <summary>
    /// <c>&lt;error code type&gt;&lt;condition/&gt;[&lt;app-condition xmlns='…#errors'/&gt;]&lt;/error&gt;</c>,
    /// the legacy code first as Tinder writes it (spec 5.2).
    /// </summary>
    public static void WriteError(ref XmlBufferWriter writer, StanzaErrorCondition condition, ReadOnlySpan<byte> appCondition)
    {
        writer.StartElement("error"u8);
        writer.Attribute("code"u8, condition.LegacyCode());
        writer.Attribute("type"u8, condition.DefaultType().ToAttributeValue());
        writer.StartElement(Utf8Names.StanzaCondition(condition), XmppNamespaces.Stanzas);
        writer.EndElement();
        if (!appCondition.IsEmpty)
        {
            writer.StartElement(appCondition, XmppNamespaces.ConnectionManagerErrors);
            writer.EndElement();
        }
        writer.EndElement();
    }

    /// <summary>
    /// The client-configuration IQ sent right after the handshake (spec 3.7 as corrected by 0.1 point 7):
    /// starttls (required when configured), then the SASL mechanisms the core implements. No
    /// compression, iq-auth or in-band registration: the core implements none of them.
    /// </summary>
    public static void WriteConfiguration(IBufferWriter<byte> output, string iqId, bool requireClientTls)
    {
        var writer = new XmlBufferWriter(output);
        writer.StartElement("iq"u8);
        writer.Attribute("type"u8, "set"u8);
        writer.Attribute("id"u8, iqId);
        writer.StartElement("configuration"u8, XmppNamespaces.ConnectionManager);
        writer.StartElement("starttls"u8, XmppNamespaces.Tls);
        if (requireClientTls)
        {
            writer.StartElement("required"u8);
            writer.EndElement();
        }
        writer.EndElement();
        writer.StartElement("mechanisms"u8, XmppNamespaces.Sasl);
        foreach (var mechanism in SaslMechanisms.Advertised)
        {
            writer.StartElement("mechanism"u8);
            writer.Text(mechanism);
            writer.EndElement();
        }
        writer.EndElement();
        writer.EndElement();
        writer.EndElement();
    }

    /// <summary>
    /// Opens the envelope of server-to-CM traffic for one client (spec 6.2):
    /// <c>&lt;route streamid from=domain to=cm-domain&gt;</c>, in Openfire's attribute order.
    /// </summary>
    public static void StartRoute(ref XmlBufferWriter writer, string streamId, string domain, string cmDomain)
    {
        writer.StartElement("route"u8);
        writer.Attribute("streamid"u8, streamId);
        writer.Attribute("from"u8, domain);
        writer.Attribute("to"u8, cmDomain);
    }

    /// <summary>
    /// The server-initiated close of a client session (spec 5.4): <c>to</c> is the CM domain without
    /// a resource. Sent only for sessions that never bound a resource (spec 0.1 point 1).
    /// </summary>
    public static void WriteCloseIq(IBufferWriter<byte> output, string iqId, string domain, string cmDomain, string streamId)
    {
        var writer = new XmlBufferWriter(output);
        writer.StartElement("iq"u8);
        writer.Attribute("type"u8, "set"u8);
        writer.Attribute("id"u8, iqId);
        writer.Attribute("from"u8, domain);
        writer.Attribute("to"u8, cmDomain);
        writer.StartElement("session"u8, XmppNamespaces.ConnectionManager);
        writer.Attribute("id"u8, streamId);
        writer.StartElement("close"u8);
        writer.EndElement();
        writer.EndElement();
        writer.EndElement();
    }
}

/// <summary>Condition names as UTF-8, built once, for writers that take names as bytes.</summary>
internal static class Utf8Names
{
    private static readonly byte[][] s_stanzaConditions = Build();

    public static ReadOnlySpan<byte> StanzaCondition(StanzaErrorCondition condition) => s_stanzaConditions[(int)condition];

    private static byte[][] Build()
    {
        var values = Enum.GetValues<StanzaErrorCondition>();
        var names = new byte[values.Length][];
        foreach (var value in values)
        {
            names[(int)value] = System.Text.Encoding.UTF8.GetBytes(value.ToElementName());
        }
        return names;
    }
}
