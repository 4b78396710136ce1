using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Text;

namespace ConnMgr.Protocol.Xml;

/// <summary>
/// Namespace bindings in force outside an element: typically the declarations of the stream header
/// (<c>xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'</c>). Built once per stream;
/// passing it around copies one reference.
/// </summary>
public readonly struct XmlNamespaceScope
{
    private readonly Bindings? _bindings;

    private XmlNamespaceScope(Bindings bindings) => _bindings = bindings;

    /// <summary>The namespace of unprefixed names, or null when there is none.</summary>
    public string? DefaultNamespace => _bindings?.DefaultNamespace;

    /// <param name="defaultNamespace">Null or empty for no default namespace.</param>
    /// <param name="prefixes">Prefix to namespace URI; a later entry for the same prefix wins.</param>
    public static XmlNamespaceScope Create(string? defaultNamespace, IReadOnlyList<KeyValuePair<string, string>>? prefixes = null)
    {
        var count = prefixes?.Count ?? 0;
        var names = new byte[count][];
        var uris = new byte[count][];
        for (var i = 0; i < count; i++)
        {
            // Reversed, so that lookup (first match) finds the last declaration of a prefix.
            names[count - 1 - i] = Encoding.UTF8.GetBytes(prefixes![i].Key);
            uris[count - 1 - i] = Encoding.UTF8.GetBytes(prefixes[i].Value);
        }
        var defaultUtf8 = string.IsNullOrEmpty(defaultNamespace) ? null : Encoding.UTF8.GetBytes(defaultNamespace);
        return new XmlNamespaceScope(new Bindings(string.IsNullOrEmpty(defaultNamespace) ? null : defaultNamespace, defaultUtf8, names, uris));
    }

    /// <summary>
    /// The bindings in force inside an unclosed start tag, such as a stream header: its own
    /// <c>xmlns</c> declarations over those of <paramref name="outer"/>.
    /// </summary>
    /// <exception cref="FormatException"><paramref name="startTag"/> is not a start tag.</exception>
    public static XmlNamespaceScope FromStartTag(ReadOnlySpan<byte> startTag, XmlNamespaceScope outer = default)
    {
        var lt = startTag.IndexOfAnyExcept(XmlElementReader.Whitespace);
        XmlElementReader.StartTag tag = default;
        if (lt < 0 || !XmlElementReader.TryParseStartTag(startTag, lt, out tag))
            XmlElementReader.ThrowMalformed("a start tag was expected");

        var outerBindings = outer._bindings;
        var defaultNamespace = outerBindings?.DefaultNamespace;
        var defaultUtf8 = outerBindings?.DefaultUtf8;
        var names = new List<byte[]>();
        var uris = new List<byte[]>();
        var pos = tag.NameEnd;
        while (XmlElementReader.TryReadAttribute(startTag, ref pos, out var name, out var value))
        {
            if (name.SequenceEqual("xmlns"u8))
            {
                defaultUtf8 = value.IsEmpty ? null : Unescape(value);
                defaultNamespace = defaultUtf8 is null ? null : Encoding.UTF8.GetString(defaultUtf8);
            }
            else if (name.StartsWith("xmlns:"u8))
            {
                names.Insert(0, name[6..].ToArray());
                uris.Insert(0, Unescape(value));
            }
        }
        if (outerBindings is not null)
        {
            names.AddRange(outerBindings.Prefixes);
            uris.AddRange(outerBindings.Uris);
        }
        return new XmlNamespaceScope(new Bindings(defaultNamespace, defaultUtf8, [.. names], [.. uris]));

        static byte[] Unescape(ReadOnlySpan<byte> raw) => Encoding.UTF8.GetBytes(XmlEscaping.UnescapeAttributeToString(raw));
    }

    /// <summary>Resolves a prefix (empty for the default namespace). <c>xml</c> is always bound (Namespaces in XML 1.0, section 3).</summary>
    public bool TryResolve(ReadOnlySpan<byte> prefix, out ReadOnlySpan<byte> namespaceUri)
    {
        if (prefix.SequenceEqual("xml"u8))
        {
            namespaceUri = XmlElementReader.XmlNamespaceUtf8;
            return true;
        }
        var bindings = _bindings;
        if (bindings is null)
        {
            namespaceUri = default;
            return false;
        }
        if (prefix.IsEmpty)
        {
            namespaceUri = bindings.DefaultUtf8;
            return bindings.DefaultUtf8 is not null;
        }
        for (var i = 0; i < bindings.Prefixes.Length; i++)
        {
            if (bindings.Prefixes[i].AsSpan().SequenceEqual(prefix))
            {
                namespaceUri = bindings.Uris[i];
                return true;
            }
        }
        namespaceUri = default;
        return false;
    }

    private sealed class Bindings(string? defaultNamespace, byte[]? defaultUtf8, byte[][] prefixes, byte[][] uris)
    {
        public string? DefaultNamespace { get; } = defaultNamespace;
        public byte[]? DefaultUtf8 { get; } = defaultUtf8;
        public byte[][] Prefixes { get; } = prefixes;
        public byte[][] Uris { get; } = uris;
    }
}

/// <summary>
/// Reads inside one complete element (a stanza, a route, a stream error) that the stream scanner has
/// already validated: names, namespaces, attributes, child elements and text, straight from its UTF-8
/// bytes and without allocating (except where a method returns a <see cref="string"/>).
/// </summary>
/// <remarks>
/// <para>All readers for an element and its descendants share the bytes of the top-level element;
/// a reader is the offsets of its element in them. To resolve a prefix without allocating, a reader
/// keeps the offsets of those ancestors (inside the top-level element) whose start tags contain
/// namespace declarations, at most <see cref="MaxNamespaceAncestors"/>; ancestors that declare nothing
/// cost nothing. That inline path makes a reader 256 bytes: pass it with <c>in</c> on hot paths.</para>
/// <para>Input is trusted to be well-formed but never to the point of crashing or looping: structurally
/// broken input makes the constructor or an enumeration throw <see cref="FormatException"/>,
/// and a malformed reference makes unescaping throw it.</para>
/// <para><see cref="NamespaceUri"/> returns the declaration's value as written; it differs from the
/// namespace name only if the URI contains an escape, which <see cref="NameIs(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/>
/// takes into account.</para>
/// </remarks>
public readonly ref struct XmlElementReader
{
    /// <summary>
    /// How many ancestors with namespace declarations an element may have inside its top-level element.
    /// The stream scanner's depth limit keeps real input below it; deeper declaring ancestors are a
    /// <see cref="FormatException"/> when a child reader is made.
    /// </summary>
    public const int MaxNamespaceAncestors = 48;

    internal static ReadOnlySpan<byte> Whitespace => " \t\r\n"u8;

    internal static ReadOnlySpan<byte> XmlNamespaceUtf8 => "http://www.w3.org/XML/1998/namespace"u8;

    private static ReadOnlySpan<byte> XmlnsNamespaceUtf8 => "http://www.w3.org/2000/xmlns/"u8;

    private static readonly SearchValues<byte> s_nameTerminators = SearchValues.Create(" \t\r\n/>=<\"'"u8);
    private static readonly SearchValues<byte> s_tagEndOrQuote = SearchValues.Create(">\"'"u8);

    // The top-level element's bytes; every offset below indexes into them.
    private readonly ReadOnlySpan<byte> _data;
    private readonly XmlNamespaceScope _scope;
    private readonly StartTag _tag;
    private readonly int _contentEnd;
    private readonly int _end;
    private readonly int _ancestorCount;
    private readonly AncestorPath _ancestors;

    /// <param name="element">One complete element, optionally surrounded by whitespace.</param>
    /// <param name="scope">Namespace bindings inherited from outside the element.</param>
    /// <exception cref="FormatException"><paramref name="element"/> is not one element.</exception>
    public XmlElementReader(ReadOnlySpan<byte> element, XmlNamespaceScope scope = default)
    {
        if (!TryParseTopLevel(element, out _tag, out _contentEnd, out _end))
            ThrowMalformed("the data is not one complete element");
        _data = element;
        _scope = scope;
    }

    private XmlElementReader(
        ReadOnlySpan<byte> data, XmlNamespaceScope scope, StartTag tag, int contentEnd, int end,
        scoped in AncestorPath ancestors, int ancestorCount)
    {
        _data = data;
        _scope = scope;
        _tag = tag;
        _contentEnd = contentEnd;
        _end = end;
        _ancestors = ancestors;
        _ancestorCount = ancestorCount;
    }

    /// <summary>Like the constructor, but false instead of an exception when the data is not one element.</summary>
    public static bool TryCreate(ReadOnlySpan<byte> element, XmlNamespaceScope scope, out XmlElementReader reader)
    {
        if (!TryParseTopLevel(element, out var tag, out var contentEnd, out var end))
        {
            reader = default;
            return false;
        }
        reader = new XmlElementReader(element, scope, tag, contentEnd, end, default, 0);
        return true;
    }

    /// <summary>The whole element (outer XML).</summary>
    public ReadOnlySpan<byte> Raw => _data[_tag.Start.._end];

    /// <summary>The bytes between the start tag and the end tag; empty for an empty element.</summary>
    public ReadOnlySpan<byte> InnerRaw => _data[_tag.End.._contentEnd];

    public ReadOnlySpan<byte> QualifiedName => _data[_tag.NameStart.._tag.NameEnd];

    /// <summary>The prefix without the colon; empty when the name has none.</summary>
    public ReadOnlySpan<byte> Prefix => _data.Slice(_tag.NameStart, _tag.PrefixLength);

    public ReadOnlySpan<byte> LocalName
        => _data[(_tag.PrefixLength == 0 ? _tag.NameStart : _tag.NameStart + _tag.PrefixLength + 1).._tag.NameEnd];

    /// <summary>The element's namespace: from its own declarations, its ancestors' inside the top-level
    /// element, then the outer scope. Empty when the element is in no namespace or its prefix is unbound.</summary>
    public ReadOnlySpan<byte> NamespaceUri => TryResolvePrefix(Prefix, out var uri) ? uri : default;

    /// <summary><c>&lt;x/&gt;</c> rather than <c>&lt;x&gt;&lt;/x&gt;</c>.</summary>
    public bool IsEmptyElement => _tag.IsEmpty;

    public bool NameIs(ReadOnlySpan<byte> localName, ReadOnlySpan<byte> namespaceUri)
        => LocalName.SequenceEqual(localName) && NamespaceIs(namespaceUri);

    /// <summary>As the UTF-8 overload; takes the <see cref="XmppNamespaces"/> constants directly.</summary>
    public bool NameIs(ReadOnlySpan<byte> localName, ReadOnlySpan<char> namespaceUri)
        => LocalName.SequenceEqual(localName) && NamespaceIs(namespaceUri);

    public bool NamespaceIs(ReadOnlySpan<byte> namespaceUri)
        => XmlEscaping.UnescapedEquals(NamespaceUri, namespaceUri, UnescapeMode.Attribute);

    public bool NamespaceIs(ReadOnlySpan<char> namespaceUri)
        => XmlEscaping.UnescapedEquals(NamespaceUri, namespaceUri, UnescapeMode.Attribute);

    /// <summary>
    /// Resolves a prefix (empty for the default namespace) as seen from this element. False when unbound;
    /// true with an empty URI for <c>xmlns=''</c>.
    /// </summary>
    public bool TryResolvePrefix(ReadOnlySpan<byte> prefix, out ReadOnlySpan<byte> namespaceUri)
    {
        if (prefix.SequenceEqual("xmlns"u8))
        {
            namespaceUri = XmlnsNamespaceUtf8;
            return true;
        }
        if (_tag.Declares && TryFindDeclaration(_data, _tag.NameEnd, prefix, out namespaceUri))
            return true;
        for (var i = _ancestorCount - 1; i >= 0; i--)
        {
            if (TryFindDeclaration(_data, _ancestors[i], prefix, out namespaceUri))
                return true;
        }
        return _scope.TryResolve(prefix, out namespaceUri);
    }

    // ---- attributes -----------------------------------------------------------------------

    /// <summary>The attributes other than namespace declarations, in document order.</summary>
    public AttributeEnumerator Attributes => new(_data[.._tag.End], _tag.NameEnd, AttributeFilter.ExceptDeclarations);

    /// <summary>Only the namespace declarations (<c>xmlns</c>, <c>xmlns:p</c>), in document order.</summary>
    public AttributeEnumerator NamespaceDeclarations => new(_data[.._tag.End], _tag.NameEnd, AttributeFilter.OnlyDeclarations);

    /// <summary>Finds an attribute by qualified name as written (e.g. <c>xml:lang</c>); the value stays escaped.</summary>
    public bool TryGetAttribute(ReadOnlySpan<byte> qualifiedName, out ReadOnlySpan<byte> rawValue)
    {
        var tag = _data[.._tag.End];
        var pos = _tag.NameEnd;
        while (TryReadAttribute(tag, ref pos, out var name, out var value))
        {
            if (name.SequenceEqual(qualifiedName))
            {
                rawValue = value;
                return true;
            }
        }
        rawValue = default;
        return false;
    }

    public bool HasAttribute(ReadOnlySpan<byte> qualifiedName) => TryGetAttribute(qualifiedName, out _);

    /// <summary>The unescaped, normalized value, or null when the attribute is absent.</summary>
    /// <exception cref="FormatException">The value holds a malformed reference.</exception>
    public string? GetAttribute(ReadOnlySpan<byte> qualifiedName)
        => TryGetAttribute(qualifiedName, out var raw) ? XmlEscaping.UnescapeAttributeToString(raw) : null;

    /// <summary>Whether the attribute is present and its unescaped value equals <paramref name="unescapedValue"/>.</summary>
    public bool AttributeEquals(ReadOnlySpan<byte> qualifiedName, ReadOnlySpan<byte> unescapedValue)
        => TryGetAttribute(qualifiedName, out var raw) && XmlEscaping.UnescapedEquals(raw, unescapedValue, UnescapeMode.Attribute);

    public bool AttributeEquals(ReadOnlySpan<byte> qualifiedName, ReadOnlySpan<char> unescapedValue)
        => TryGetAttribute(qualifiedName, out var raw) && XmlEscaping.UnescapedEquals(raw, unescapedValue, UnescapeMode.Attribute);

    /// <summary>
    /// Copies the unescaped value as UTF-8, e.g. to validate a <c>to</c> JID without allocating.
    /// False when the attribute is absent or <paramref name="destination"/> is shorter than needed;
    /// a destination as long as the raw value always suffices.
    /// </summary>
    /// <exception cref="FormatException">The value holds a malformed reference.</exception>
    public bool TryCopyAttribute(ReadOnlySpan<byte> qualifiedName, Span<byte> destination, out int written)
    {
        if (TryGetAttribute(qualifiedName, out var raw))
            return XmlEscaping.TryUnescape(raw, destination, UnescapeMode.Attribute, out written);
        written = 0;
        return false;
    }

    // ---- children -------------------------------------------------------------------------

    /// <summary>The direct child elements in document order, each with this element's namespace context.</summary>
    /// <exception cref="FormatException">Raised by <c>MoveNext</c> when the content is not well-formed.</exception>
    public ChildEnumerator Children
        => new(_data, _scope, _tag.End, _contentEnd, _ancestors, _ancestorCount, _tag.Declares ? _tag.NameEnd : -1);

    public bool TryGetFirstChild(out XmlElementReader child)
    {
        // MoveNext/Current rather than foreach: a reader is 256 bytes and foreach copies the enumerator once more.
        var children = Children;
        if (children.MoveNext())
        {
            child = children.Current;
            return true;
        }
        child = default;
        return false;
    }

    /// <exception cref="InvalidOperationException">The element has no child element; use <see cref="TryGetFirstChild"/> on peer input.</exception>
    public XmlElementReader FirstChild
    {
        get
        {
            if (!TryGetFirstChild(out var child))
                ThrowNoChild();
            return child;
        }
    }

    /// <summary>The first direct child with this local name and namespace.</summary>
    public bool TryGetChild(ReadOnlySpan<byte> localName, ReadOnlySpan<byte> namespaceUri, out XmlElementReader child)
    {
        var children = Children;
        while (children.MoveNext())
        {
            child = children.Current;
            if (child.NameIs(localName, namespaceUri))
                return true;
        }
        child = default;
        return false;
    }

    public bool TryGetChild(ReadOnlySpan<byte> localName, ReadOnlySpan<char> namespaceUri, out XmlElementReader child)
    {
        var children = Children;
        while (children.MoveNext())
        {
            child = children.Current;
            if (child.NameIs(localName, namespaceUri))
                return true;
        }
        child = default;
        return false;
    }

    // ---- text -----------------------------------------------------------------------------

    /// <summary>
    /// The character data of the direct text children (not of child elements), unescaped: entities,
    /// character references and CDATA sections resolved, line ends normalized to LF.
    /// </summary>
    /// <exception cref="FormatException">Malformed references or content.</exception>
    public string GetText()
    {
        var inner = InnerRaw;
        if (inner.IndexOfAny("<&\r"u8) < 0)
            return Encoding.UTF8.GetString(inner);
        byte[]? rented = null;
        var buffer = inner.Length <= XmlEscaping.StackBufferLength
            ? stackalloc byte[XmlEscaping.StackBufferLength]
            : (rented = ArrayPool<byte>.Shared.Rent(inner.Length));
        try
        {
            TryCopyText(buffer, out var written);
            return Encoding.UTF8.GetString(buffer[..written]);
        }
        finally
        {
            if (rented is not null)
                ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// Copies what <see cref="GetText"/> returns, as UTF-8. False if <paramref name="destination"/> is too
    /// short; a destination as long as <see cref="InnerRaw"/> always suffices.
    /// </summary>
    /// <exception cref="FormatException">Malformed references or content.</exception>
    public bool TryCopyText(Span<byte> destination, out int written)
    {
        written = 0;
        var pos = _tag.End;
        while (NextTextSegment(ref pos, out var segment, out var mode))
        {
            if (!XmlEscaping.TryUnescape(segment, destination[written..], mode, out var n))
            {
                written = 0;
                return false;
            }
            written += n;
        }
        return true;
    }

    /// <summary>Writes what <see cref="GetText"/> returns, as UTF-8; for bodies too large to copy on the stack
    /// (an Openfire 4.8+ raw-text route, spec 6.2).</summary>
    /// <exception cref="FormatException">Malformed references or content.</exception>
    public void WriteText(IBufferWriter<byte> output)
    {
        var pos = _tag.End;
        while (NextTextSegment(ref pos, out var segment, out var mode))
            XmlEscaping.Unescape(segment, output, mode);
    }

    /// <summary>The element as UTF-8 text, for debugging and logs.</summary>
    public override string ToString() => Encoding.UTF8.GetString(Raw);

    /// <summary>The next run of escaped text or CDATA content among the direct children.</summary>
    private bool NextTextSegment(ref int pos, out ReadOnlySpan<byte> segment, out UnescapeMode mode)
    {
        while (pos < _contentEnd)
        {
            var rest = _data[pos.._contentEnd];
            var lt = rest.IndexOf((byte)'<');
            if (lt != 0)
            {
                segment = lt < 0 ? rest : rest[..lt];
                mode = UnescapeMode.Text;
                pos += segment.Length;
                return true;
            }
            if (rest.StartsWith("<![CDATA["u8))
            {
                var close = rest.IndexOf("]]>"u8);
                if (close < 0)
                    ThrowMalformed("unterminated CDATA section");
                segment = rest[9..close];
                mode = UnescapeMode.CData;
                pos += close + 3;
                if (!segment.IsEmpty)
                    return true;
                continue;
            }
            var next = SkipMarkup(_data, pos, _contentEnd);
            if (next < 0)
            {
                ScanElement(_data, pos, _contentEnd, out _, out _, out next);
            }
            pos = next;
        }
        segment = default;
        mode = default;
        return false;
    }

    // ---- parsing --------------------------------------------------------------------------

    private static bool TryParseTopLevel(ReadOnlySpan<byte> element, out StartTag tag, out int contentEnd, out int end)
    {
        contentEnd = end = 0;
        // The scanner hands over exactly the element, so check the ends before searching.
        var start = !element.IsEmpty && element[0] == '<' ? 0 : element.IndexOfAnyExcept(Whitespace);
        if (start < 0 || element[start] != '<')
        {
            tag = default;
            return false;
        }
        end = element[^1] == '>' ? element.Length : element.LastIndexOfAnyExcept(Whitespace) + 1;
        var data = element[..end];
        if (!TryParseStartTag(data, start, out tag))
            return false;
        if (tag.IsEmpty)
        {
            contentEnd = tag.End;
            return tag.End == end;
        }

        // The end tag is the last markup: "</" QName S? ">" (XML 1.0 production [42]).
        var lt = data[tag.End..].LastIndexOf((byte)'<');
        if (lt < 0 || data[^1] != '>')
            return false;
        lt += tag.End;
        var endTag = data[(lt + 1)..^1];
        var name = data[tag.NameStart..tag.NameEnd];
        if (endTag.Length <= name.Length || endTag[0] != '/' || !endTag[1..].StartsWith(name)
            || endTag[(1 + name.Length)..].IndexOfAnyExcept(Whitespace) >= 0)
        {
            return false;
        }
        contentEnd = lt;
        return true;
    }

    /// <summary>Parses the start tag whose <c>&lt;</c> is at <paramref name="lt"/>; false on anything that is not one.</summary>
    internal static bool TryParseStartTag(ReadOnlySpan<byte> data, int lt, out StartTag tag)
    {
        tag = default;
        var nameStart = lt + 1;
        if (nameStart >= data.Length)
            return false;
        var nameLength = data[nameStart..].IndexOfAny(s_nameTerminators);
        if (nameLength <= 0)
            return false;
        var nameEnd = nameStart + nameLength;
        if (data[nameEnd] is (byte)'=' or (byte)'<' or (byte)'"' or (byte)'\'' || data[nameStart] is (byte)'!' or (byte)'?')
            return false;
        var colon = data[nameStart..nameEnd].IndexOf((byte)':');
        if (colon == 0 || colon == nameLength - 1)
            return false;

        var gt = FindTagEnd(data, nameEnd);
        if (gt < 0)
            return false;

        var isEmpty = data[gt - 1] == '/';
        tag = new StartTag(
            start: lt,
            nameStart: nameStart,
            nameEnd: nameEnd,
            prefixLength: colon < 0 ? 0 : colon,
            end: gt + 1,
            isEmpty: isEmpty,
            declares: data[nameEnd..gt].IndexOf("xmlns"u8) >= 0);
        return true;
    }

    /// <summary>The <c>&gt;</c> ending a start tag whose attributes begin at <paramref name="pos"/>, or -1.</summary>
    private static int FindTagEnd(ReadOnlySpan<byte> data, int pos)
    {
        // '>' may appear inside a quoted value. Fast path: when the text before the first '>' uses one
        // kind of quote, an even count of it means every value is closed, so that '>' ends the tag.
        var rest = data[pos..];
        var firstGt = rest.IndexOf((byte)'>');
        if (firstGt < 0)
            return -1;
        var before = rest[..firstGt];
        var firstQuote = before.IndexOfAny((byte)'"', (byte)'\'');
        if (firstQuote < 0)
            return pos + firstGt;
        var quote = before[firstQuote];
        var other = quote == '"' ? (byte)'\'' : (byte)'"';
        if (!before.Contains(other) && (before.Count(quote) & 1) == 0)
            return pos + firstGt;

        // Mixed quotes, or a '>' inside a value: step over each quoted run.
        while (true)
        {
            var k = data[pos..].IndexOfAny(s_tagEndOrQuote);
            if (k < 0)
                return -1;
            k += pos;
            if (data[k] == '>')
                return k;
            var close = data[(k + 1)..].IndexOf(data[k]);
            if (close < 0)
                return -1;
            pos = k + 1 + close + 1;
        }
    }

    /// <summary>Reads the next attribute of a start tag from <paramref name="pos"/>; false at the tag's end or on garbage.</summary>
    internal static bool TryReadAttribute(ReadOnlySpan<byte> data, scoped ref int pos, out ReadOnlySpan<byte> name, out ReadOnlySpan<byte> value)
    {
        name = value = default;
        var i = pos;
        while (i < data.Length && IsWhitespace(data[i]))
            i++;
        if (i >= data.Length || data[i] is (byte)'>' or (byte)'/')
            return false;
        var nameLength = data[i..].IndexOfAny(s_nameTerminators);
        if (nameLength <= 0)
            return false;
        name = data.Slice(i, nameLength);
        i += nameLength;
        while (i < data.Length && IsWhitespace(data[i]))
            i++;
        if (i >= data.Length || data[i] != '=')
            return false;
        i++;
        while (i < data.Length && IsWhitespace(data[i]))
            i++;
        if (i >= data.Length || data[i] is not ((byte)'"' or (byte)'\''))
            return false;
        var close = data[(i + 1)..].IndexOf(data[i]);
        if (close < 0)
            return false;
        value = data.Slice(i + 1, close);
        pos = i + 1 + close + 1;
        return true;
    }

    private static bool TryFindDeclaration(ReadOnlySpan<byte> data, int nameEnd, ReadOnlySpan<byte> prefix, out ReadOnlySpan<byte> namespaceUri)
    {
        var pos = nameEnd;
        while (TryReadAttribute(data, ref pos, out var name, out var value))
        {
            var matches = prefix.IsEmpty
                ? name.SequenceEqual("xmlns"u8)
                : name.Length == 6 + prefix.Length && name.StartsWith("xmlns:"u8) && name[6..].SequenceEqual(prefix);
            if (matches)
            {
                namespaceUri = value;
                return true;
            }
        }
        namespaceUri = default;
        return false;
    }

    /// <summary>
    /// Skips a CDATA section, comment or processing instruction at <paramref name="lt"/> and returns the
    /// position after it; -1 when the markup there is a start tag. End tags and DOCTYPEs do not belong
    /// inside content and are a <see cref="FormatException"/>.
    /// </summary>
    private static int SkipMarkup(ReadOnlySpan<byte> data, int lt, int limit)
    {
        var rest = data[lt..limit];
        ReadOnlySpan<byte> terminator;
        int skip;
        if (rest.StartsWith("<![CDATA["u8))
        {
            terminator = "]]>"u8;
            skip = 9;
        }
        else if (rest.StartsWith("<!--"u8))
        {
            terminator = "-->"u8;
            skip = 4;
        }
        else if (rest.StartsWith("<?"u8))
        {
            terminator = "?>"u8;
            skip = 2;
        }
        else if (rest.Length < 2 || rest[1] is (byte)'/' or (byte)'!')
        {
            return ThrowMalformedMarkup();
        }
        else
        {
            return -1;
        }
        var close = rest[skip..].IndexOf(terminator);
        if (close < 0)
            ThrowMalformed("unterminated markup");
        return lt + skip + close + terminator.Length;
    }

    /// <summary>Finds the extent of the element whose start tag is at <paramref name="lt"/>, within <paramref name="limit"/>.</summary>
    private static void ScanElement(ReadOnlySpan<byte> data, int lt, int limit, out StartTag tag, out int contentEnd, out int end)
    {
        var bounded = data[..limit];
        if (!TryParseStartTag(bounded, lt, out tag))
            ThrowMalformed("malformed start tag");
        if (tag.IsEmpty)
        {
            contentEnd = end = tag.End;
            return;
        }
        // The scanner has checked that end tags match, so counting depth is enough here.
        var depth = 1;
        var pos = tag.End;
        while (true)
        {
            var next = bounded[pos..].IndexOf((byte)'<');
            if (next < 0 || pos + next + 1 >= limit)
                ThrowMalformed("unclosed element");
            next += pos;
            var marker = bounded[next + 1];
            if (marker == '/')
            {
                var gt = bounded[next..].IndexOf((byte)'>');
                if (gt < 0)
                    ThrowMalformed("unterminated end tag");
                pos = next + gt + 1;
                if (--depth == 0)
                {
                    contentEnd = next;
                    end = pos;
                    return;
                }
            }
            else if (marker is (byte)'!' or (byte)'?')
            {
                pos = SkipMarkup(bounded, next, limit);
            }
            else
            {
                if (!TryParseStartTag(bounded, next, out var inner))
                    ThrowMalformed("malformed start tag");
                if (!inner.IsEmpty)
                    depth++;
                pos = inner.End;
            }
        }
    }

    private static bool IsWhitespace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n';

    [DoesNotReturn]
    internal static void ThrowMalformed(string what) => throw new FormatException($"Malformed XML element: {what}.");

    [DoesNotReturn]
    private static int ThrowMalformedMarkup() => throw new FormatException("Malformed XML element: unexpected markup in content.");

    [DoesNotReturn]
    private static void ThrowNoChild() => throw new InvalidOperationException("The element has no child element.");

    // ---- nested types ---------------------------------------------------------------------

    /// <summary>Offsets of one start tag in the top-level element's bytes.</summary>
    internal readonly struct StartTag(int start, int nameStart, int nameEnd, int prefixLength, int end, bool isEmpty, bool declares)
    {
        /// <summary>The <c>&lt;</c>.</summary>
        public int Start { get; } = start;
        public int NameStart { get; } = nameStart;
        public int NameEnd { get; } = nameEnd;
        public int PrefixLength { get; } = prefixLength;

        /// <summary>Just after the closing <c>&gt;</c>.</summary>
        public int End { get; } = end;
        public bool IsEmpty { get; } = isEmpty;

        /// <summary>The tag may declare namespaces (it contains <c>xmlns</c>); a false positive only costs a lookup.</summary>
        public bool Declares { get; } = declares;
    }

    /// <summary>Name-end offsets of the ancestors whose start tags declare namespaces, outermost first.</summary>
    [InlineArray(MaxNamespaceAncestors)]
    internal struct AncestorPath
    {
        private int _element0;
    }

    internal enum AttributeFilter : byte { ExceptDeclarations, OnlyDeclarations }

    /// <summary>One attribute of a start tag.</summary>
    public readonly ref struct XmlAttribute(ReadOnlySpan<byte> qualifiedName, ReadOnlySpan<byte> rawValue)
    {
        public ReadOnlySpan<byte> QualifiedName { get; } = qualifiedName;

        /// <summary>The value as written, still escaped.</summary>
        public ReadOnlySpan<byte> RawValue { get; } = rawValue;

        public ReadOnlySpan<byte> Prefix
        {
            get
            {
                var colon = QualifiedName.IndexOf((byte)':');
                return colon < 0 ? default : QualifiedName[..colon];
            }
        }

        public ReadOnlySpan<byte> LocalName => QualifiedName[(QualifiedName.IndexOf((byte)':') + 1)..];

        public bool IsNamespaceDeclaration => IsDeclaration(QualifiedName);

        /// <summary>The unescaped, normalized value.</summary>
        public string GetValue() => XmlEscaping.UnescapeAttributeToString(RawValue);

        public bool ValueEquals(ReadOnlySpan<byte> unescapedValue) => XmlEscaping.UnescapedEquals(RawValue, unescapedValue, UnescapeMode.Attribute);

        public bool ValueEquals(ReadOnlySpan<char> unescapedValue) => XmlEscaping.UnescapedEquals(RawValue, unescapedValue, UnescapeMode.Attribute);

        public void Deconstruct(out ReadOnlySpan<byte> qualifiedName, out ReadOnlySpan<byte> rawValue)
        {
            qualifiedName = QualifiedName;
            rawValue = RawValue;
        }

        internal static bool IsDeclaration(ReadOnlySpan<byte> name) => name.StartsWith("xmlns"u8) && (name.Length == 5 || name[5] == ':');
    }

    /// <summary>Enumerates the attributes of one start tag (use with <c>foreach</c>).</summary>
    public ref struct AttributeEnumerator
    {
        private readonly ReadOnlySpan<byte> _tag;
        private readonly AttributeFilter _filter;
        private int _position;
        private XmlAttribute _current;

        internal AttributeEnumerator(ReadOnlySpan<byte> tag, int position, AttributeFilter filter)
        {
            _tag = tag;
            _position = position;
            _filter = filter;
        }

        public readonly AttributeEnumerator GetEnumerator() => this;

        public readonly XmlAttribute Current => _current;

        public bool MoveNext()
        {
            while (TryReadAttribute(_tag, ref _position, out var name, out var value))
            {
                if (XmlAttribute.IsDeclaration(name) == (_filter == AttributeFilter.OnlyDeclarations))
                {
                    _current = new XmlAttribute(name, value);
                    return true;
                }
            }
            return false;
        }
    }

    /// <summary>Enumerates the direct child elements (use with <c>foreach</c>); text, CDATA and comments are skipped.</summary>
    public ref struct ChildEnumerator
    {
        private readonly ReadOnlySpan<byte> _data;
        private readonly XmlNamespaceScope _scope;
        private readonly int _limit;
        private readonly int _ancestorCount;
        private readonly AncestorPath _ancestors;
        private int _position;
        private StartTag _tag;
        private int _contentEnd;
        private int _end;

        /// <param name="parentNameEnd">Where the parent's attributes start when it declares namespaces, else -1.</param>
        internal ChildEnumerator(
            ReadOnlySpan<byte> data, XmlNamespaceScope scope, int position, int limit,
            scoped in AncestorPath parentAncestors, int parentAncestorCount, int parentNameEnd)
        {
            _data = data;
            _scope = scope;
            _position = position;
            _limit = limit;
            _ancestors = parentAncestors;
            _ancestorCount = parentAncestorCount;
            if (parentNameEnd >= 0)
            {
                if (_ancestorCount == MaxNamespaceAncestors)
                    ThrowMalformed($"more than {MaxNamespaceAncestors} nested elements declare namespaces");
                _ancestors[_ancestorCount++] = parentNameEnd;
            }
        }

        public readonly ChildEnumerator GetEnumerator() => this;

        public readonly XmlElementReader Current => new(_data, _scope, _tag, _contentEnd, _end, _ancestors, _ancestorCount);

        /// <exception cref="FormatException">The content is not well-formed.</exception>
        public bool MoveNext()
        {
            while (_position < _limit)
            {
                var lt = _data[_position.._limit].IndexOf((byte)'<');
                if (lt < 0)
                {
                    _position = _limit;
                    return false;
                }
                lt += _position;
                var next = SkipMarkup(_data, lt, _limit);
                if (next >= 0)
                {
                    _position = next;
                    continue;
                }
                ScanElement(_data, lt, _limit, out _tag, out _contentEnd, out _end);
                _position = _end;
                return true;
            }
            return false;
        }
    }
}
