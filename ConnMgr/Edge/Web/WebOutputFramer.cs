using System.Buffers;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Xml;

namespace ConnMgr.Edge.Web;

/// <summary>
/// Cuts what a <see cref="Streams.ClientStream"/> writes (an ordinary XMPP stream: header,
/// top-level elements, stream end, and a new header after each restart) into the pieces a web
/// transport sends: the header, one element at a time, the end.
/// </summary>
/// <remarks>
/// The bytes come from the edge and the core, not from the client, but they are cut by the same
/// scanner as client input rather than by a lighter splitter: a stanza from the core may hold a
/// <c>&gt;</c> in an attribute value or a CDATA section, and only a real scanner finds its end.
/// Its limits are the core's (1 MiB elements, spec 2) with room for deeper nesting.
/// </remarks>
internal sealed class WebOutputFramer
{
    public const string FramingNamespace = XmppNamespaces.Framing;

    private static readonly XmlScannerOptions s_options = new()
    {
        ContentNamespace = XmppNamespaces.Client,
        MaxElementBytes = 4 * 1024 * 1024,
        MaxDepth = 256,
        MaxAttributes = 1024,
    };

    private static ReadOnlySpan<byte> XmlDeclarationStart => "<?xml"u8;

    private readonly XmppStreamScanner _scanner = new(s_options);
    private bool _atBoundary = true;

    /// <summary>
    /// The next frame of <paramref name="buffer"/>, with the scanner's contract (see
    /// <see cref="XmppStreamScanner.Scan"/>). A new header after a restart (RFC 6120 6.4.6) is
    /// recognised by its XML declaration, which the stream layer writes on every header.
    /// </summary>
    public ScanStatus Next(in ReadOnlySequence<byte> buffer, out SequencePosition consumed, out SequencePosition examined, out XmlFrame frame)
    {
        if (_atBoundary && StartsWithDeclaration(buffer))
        {
            _scanner.Restart();
        }
        var status = _scanner.Scan(buffer, out consumed, out examined, out frame);
        // Writers queue whole elements, so the scanner usually runs out of input between frames.
        _atBoundary = status == ScanStatus.Frame || (status == ScanStatus.NeedMoreData && buffer.IsEmpty);
        return status;
    }

    public string? ErrorText => _scanner.ErrorText;

    private static bool StartsWithDeclaration(in ReadOnlySequence<byte> buffer)
    {
        if (buffer.Length < XmlDeclarationStart.Length)
        {
            return false;
        }
        Span<byte> start = stackalloc byte[5];
        buffer.Slice(0, start.Length).CopyTo(start);
        return start.SequenceEqual(XmlDeclarationStart);
    }

    /// <summary>RFC 7395 3.3.2: the server's <c>&lt;open/&gt;</c>, with the header's <c>from</c>, <c>id</c>, <c>version</c> and <c>xml:lang</c>.</summary>
    public static void WriteOpen(StreamHeader header, IBufferWriter<byte> output)
    {
        var writer = new XmlBufferWriter(output);
        writer.StartElement("open"u8, FramingNamespace);
        writer.OptionalAttribute("from"u8, header.From);
        writer.OptionalAttribute("id"u8, header.Id);
        writer.OptionalAttribute("version"u8, header.Version);
        writer.OptionalAttribute("xml:lang"u8, header.Lang);
        writer.EndElement();
    }

    /// <summary>RFC 7395 3.6: <c>&lt;close/&gt;</c> in place of the stream's end tag.</summary>
    public static void WriteClose(IBufferWriter<byte> output)
        => output.Write("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"u8);

    /// <summary>
    /// RFC 7395 3.6.1: a <c>see-other-host</c> stream error (RFC 6120 4.9.3.19) becomes
    /// <c>&lt;close see-other-uri='…'/&gt;</c>, which a WebSocket client follows; a bare host is
    /// taken to serve this same path over <c>wss</c>. False for any other element.
    /// </summary>
    public static bool TryWriteRedirect(in ReadOnlySequence<byte> element, IBufferWriter<byte> output)
    {
        if (element.Length > 4096 || !element.FirstSpan.StartsWith("<stream:error"u8))
        {
            return false;
        }
        var bytes = element.ToArray();
        if (!XmlElementReader.TryCreate(bytes, StreamScope, out var error)
            || !error.TryGetChild("see-other-host"u8, XmppNamespaces.Streams, out var host))
        {
            return false;
        }
        var target = host.GetText().Trim();
        if (target.Length == 0)
        {
            return false;
        }
        var uri = target.Contains("://", StringComparison.Ordinal) ? target : $"wss://{target}{WebTransport.WebSocketPath}";
        var writer = new XmlBufferWriter(output);
        writer.StartElement("close"u8, FramingNamespace);
        writer.Attribute("see-other-uri"u8, uri);
        writer.EndElement();
        return true;
    }

    private static readonly XmlNamespaceScope StreamScope = XmlNamespaceScope.Create(
        XmppNamespaces.Client, [new KeyValuePair<string, string>("stream", XmppNamespaces.Stream)]);

    /// <summary>
    /// One top-level element standing alone (RFC 7395 3.3.3, XEP-0206 section 5): without the
    /// stream header around it, a stanza must declare <c>jabber:client</c> and a
    /// <c>stream:</c> element its prefix. The declaration is added to the start tag when the
    /// element does not carry it; the rest is copied as it is.
    /// </summary>
    public static void WriteElement(in ReadOnlySequence<byte> element, IBufferWriter<byte> output)
    {
        if (element.IsSingleSegment)
        {
            WriteElement(element.FirstSpan, output);
            return;
        }
        var length = (int)element.Length;
        var copy = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            element.CopyTo(copy);
            WriteElement(copy.AsSpan(0, length), output);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(copy);
        }
    }

    public static void WriteElement(ReadOnlySpan<byte> element, IBufferWriter<byte> output)
    {
        var nameEnd = 1;
        while (nameEnd < element.Length && !IsNameEnd(element[nameEnd]))
        {
            nameEnd++;
        }
        var name = element[1..nameEnd];
        var colon = name.IndexOf((byte)':');
        ReadOnlySpan<byte> declaration = default;
        if (colon < 0)
        {
            if (!Declares(element, nameEnd, "xmlns"u8))
            {
                declaration = " xmlns='jabber:client'"u8;
            }
        }
        else if (name[..colon].SequenceEqual("stream"u8) && !Declares(element, nameEnd, "xmlns:stream"u8))
        {
            declaration = " xmlns:stream='http://etherx.jabber.org/streams'"u8;
        }
        output.Write(element[..nameEnd]);
        output.Write(declaration);
        output.Write(element[nameEnd..]);
    }

    private static bool IsNameEnd(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n' or (byte)'/' or (byte)'>';

    /// <summary>Whether the start tag beginning at <paramref name="position"/> (after the name) has the attribute <paramref name="attribute"/>.</summary>
    private static bool Declares(ReadOnlySpan<byte> element, int position, ReadOnlySpan<byte> attribute)
    {
        // The scanner has checked the syntax: name, optional blanks, '=', blanks, quoted value.
        var i = position;
        while (i < element.Length)
        {
            while (i < element.Length && element[i] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')
            {
                i++;
            }
            if (i >= element.Length || element[i] is (byte)'/' or (byte)'>')
            {
                return false;
            }
            var nameStart = i;
            while (i < element.Length && element[i] is not ((byte)'=' or (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n'))
            {
                i++;
            }
            if (element[nameStart..i].SequenceEqual(attribute))
            {
                return true;
            }
            var open = element.Slice(i).IndexOfAny((byte)'\'', (byte)'"');
            if (open < 0)
            {
                return false;
            }
            i += open;
            var close = element[(i + 1)..].IndexOf(element[i]);
            if (close < 0)
            {
                return false;
            }
            i += close + 2;
        }
        return false;
    }
}
