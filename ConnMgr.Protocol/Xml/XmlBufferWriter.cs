using System.Buffers;
using System.Buffers.Text;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Text.Unicode;

namespace ConnMgr.Protocol.Xml;

/// <summary>
/// Writes XML into an <see cref="IBufferWriter{T}"/> (a <c>PipeWriter</c>, usually) as it goes: stream
/// headers, stanzas, errors, route envelopes around relayed bytes. Nothing is buffered, so there is
/// nothing to flush; the caller flushes the pipe once per batch.
/// </summary>
/// <remarks>
/// <para>A <c>ref struct</c>: one writer builds one piece of output synchronously and cannot be captured
/// or boxed by mistake. Pass it on with <c>ref</c> (a copy would lose track of open elements).</para>
/// <para>The names of open elements are kept in a fixed inline stack (<see cref="MaxDepth"/> elements,
/// <see cref="MaxOpenNameBytes"/> bytes of names), so <see cref="EndElement"/> needs no name and
/// nothing is allocated per element. These limits bound what our own code writes, never peer input:
/// exceeding them is a bug and throws <see cref="InvalidOperationException"/>.</para>
/// <para>Attribute values are written between single quotes. An element with no content is closed
/// as <c>&lt;x/&gt;</c>. Names are written as given: they come from code or from validated input.</para>
/// </remarks>
public ref struct XmlBufferWriter
{
    /// <summary>Deepest nesting the writer tracks; a stanza error inside an IQ is four levels.</summary>
    public const int MaxDepth = 16;

    /// <summary>Total bytes of the names of the open elements.</summary>
    public const int MaxOpenNameBytes = 256;

    private readonly IBufferWriter<byte> _output;
    private NameBytes _names;
    private NameEnds _nameEnds;
    private int _depth;
    private bool _startTagOpen;
    private long _bytesWritten;

    public XmlBufferWriter(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        _output = output;
    }

    /// <summary>Number of elements started and not yet ended.</summary>
    public readonly int Depth => _depth;

    /// <summary>Bytes written through this writer so far (escaping included).</summary>
    public readonly long BytesWritten => _bytesWritten;

    public void StartElement(ReadOnlySpan<byte> qualifiedName)
    {
        CloseStartTag();
        var used = _depth == 0 ? 0 : _nameEnds[_depth - 1];
        if (_depth == MaxDepth || used + qualifiedName.Length > MaxOpenNameBytes)
            ThrowTooDeep();
        qualifiedName.CopyTo(((Span<byte>)_names)[used..]);
        _nameEnds[_depth++] = (ushort)(used + qualifiedName.Length);

        var span = _output.GetSpan(qualifiedName.Length + 1);
        span[0] = (byte)'<';
        qualifiedName.CopyTo(span[1..]);
        Advance(qualifiedName.Length + 1);
        _startTagOpen = true;
    }

    /// <summary>Starts an element and declares its default namespace (<c>xmlns='...'</c>).</summary>
    public void StartElement(ReadOnlySpan<byte> qualifiedName, ReadOnlySpan<char> namespaceUri)
    {
        StartElement(qualifiedName);
        Attribute("xmlns"u8, namespaceUri);
    }

    public void StartElement(ReadOnlySpan<byte> qualifiedName, ReadOnlySpan<byte> namespaceUri)
    {
        StartElement(qualifiedName);
        Attribute("xmlns"u8, namespaceUri);
    }

    /// <summary>Declares a prefix on the open start tag (<c>xmlns:prefix='...'</c>); an empty prefix declares the default namespace.</summary>
    public void NamespaceDeclaration(ReadOnlySpan<byte> prefix, ReadOnlySpan<char> namespaceUri)
    {
        if (prefix.IsEmpty)
        {
            Attribute("xmlns"u8, namespaceUri);
            return;
        }
        WriteAttributeStart("xmlns:"u8, prefix);
        _bytesWritten += XmlEscaping.EscapeUtf16(namespaceUri, _output, attribute: true);
        WriteQuote();
    }

    /// <summary>Writes an attribute with an escaped value.</summary>
    public void Attribute(ReadOnlySpan<byte> qualifiedName, ReadOnlySpan<byte> value)
    {
        WriteAttributeStart(qualifiedName, default);
        _bytesWritten += XmlEscaping.EscapeUtf8(value, _output, attribute: true);
        WriteQuote();
    }

    /// <summary>Writes an attribute with an escaped value (the <see cref="string"/> overload binds here).</summary>
    public void Attribute(ReadOnlySpan<byte> qualifiedName, ReadOnlySpan<char> value)
    {
        WriteAttributeStart(qualifiedName, default);
        _bytesWritten += XmlEscaping.EscapeUtf16(value, _output, attribute: true);
        WriteQuote();
    }

    /// <summary>Writes the attribute only when <paramref name="value"/> is not null.</summary>
    public void OptionalAttribute(ReadOnlySpan<byte> qualifiedName, string? value)
    {
        if (value is not null)
            Attribute(qualifiedName, value.AsSpan());
    }

    public void Attribute(ReadOnlySpan<byte> qualifiedName, long value)
    {
        WriteAttributeStart(qualifiedName, default);
        // 20 bytes hold any long.
        var span = _output.GetSpan(20);
        Utf8Formatter.TryFormat(value, span, out var written);
        Advance(written);
        WriteQuote();
    }

    /// <summary>
    /// Copies a value that is already escaped, as <see cref="XmlElementReader.TryGetAttribute"/> returns it,
    /// without unescaping and escaping it again. A value read between double quotes may contain
    /// <c>'</c>; it is then written between double quotes instead.
    /// </summary>
    public void RawAttribute(ReadOnlySpan<byte> qualifiedName, ReadOnlySpan<byte> rawValue)
    {
        var apostrophe = rawValue.IndexOf((byte)'\'') >= 0;
        if (apostrophe && rawValue.IndexOf((byte)'"') >= 0)
        {
            // Cannot come from a parsed attribute; re-escape rather than write broken XML.
            Attribute(qualifiedName, XmlEscaping.UnescapeAttributeToString(rawValue).AsSpan());
            return;
        }
        var quote = apostrophe ? (byte)'"' : (byte)'\'';
        WriteAttributeStart(qualifiedName, default, quote);
        WriteBytes(rawValue);
        WriteByte(quote);
    }

    /// <summary>Writes escaped character data.</summary>
    public void Text(ReadOnlySpan<char> text)
    {
        CloseStartTag();
        _bytesWritten += XmlEscaping.EscapeUtf16(text, _output, attribute: false);
    }

    public void Text(ReadOnlySpan<byte> utf8)
    {
        CloseStartTag();
        _bytesWritten += XmlEscaping.EscapeUtf8(utf8, _output, attribute: false);
    }

    /// <summary>
    /// Splices bytes that are already well-formed XML (a relayed stanza the scanner validated) as content
    /// of the open element, or at top level.
    /// </summary>
    public void Raw(ReadOnlySpan<byte> xml)
    {
        CloseStartTag();
        WriteBytes(xml);
    }

    /// <summary>
    /// Writes the <c>&gt;</c> of the open start tag now, for an element whose content is written by someone
    /// else later: a stream header stays open for the life of the stream.
    /// </summary>
    public void CloseStartTag()
    {
        if (_startTagOpen)
        {
            _startTagOpen = false;
            WriteByte((byte)'>');
        }
    }

    /// <summary>Ends the innermost open element: <c>/&gt;</c> when it has no content, else its end tag.</summary>
    public void EndElement()
    {
        if (_depth == 0)
            ThrowNothingOpen();
        if (_startTagOpen)
        {
            _startTagOpen = false;
            _depth--;
            WriteBytes("/>"u8);
            return;
        }
        var start = _depth == 1 ? 0 : _nameEnds[_depth - 2];
        var end = _nameEnds[_depth - 1];
        _depth--;
        var name = ((ReadOnlySpan<byte>)_names)[start..end];
        var span = _output.GetSpan(name.Length + 3);
        span[0] = (byte)'<';
        span[1] = (byte)'/';
        name.CopyTo(span[2..]);
        span[name.Length + 2] = (byte)'>';
        Advance(name.Length + 3);
    }

    /// <summary>Ends every open element.</summary>
    public void EndAll()
    {
        while (_depth > 0)
            EndElement();
    }

    private void WriteAttributeStart(ReadOnlySpan<byte> name, ReadOnlySpan<byte> nameSuffix, byte quote = (byte)'\'')
    {
        if (!_startTagOpen)
            ThrowNoStartTag();
        var length = name.Length + nameSuffix.Length + 3;
        var span = _output.GetSpan(length);
        span[0] = (byte)' ';
        name.CopyTo(span[1..]);
        nameSuffix.CopyTo(span[(1 + name.Length)..]);
        span[length - 2] = (byte)'=';
        span[length - 1] = quote;
        Advance(length);
    }

    private void WriteQuote() => WriteByte((byte)'\'');

    private void WriteByte(byte b)
    {
        _output.GetSpan(1)[0] = b;
        Advance(1);
    }

    private void WriteBytes(ReadOnlySpan<byte> bytes)
    {
        // Chunked so a large relayed stanza never asks the pipe for one oversized segment.
        while (!bytes.IsEmpty)
        {
            var span = _output.GetSpan(Math.Min(bytes.Length, 4096));
            var n = Math.Min(span.Length, bytes.Length);
            bytes[..n].CopyTo(span);
            Advance(n);
            bytes = bytes[n..];
        }
    }

    private void Advance(int count)
    {
        _output.Advance(count);
        _bytesWritten += count;
    }

    [DoesNotReturn]
    private static void ThrowTooDeep()
        => throw new InvalidOperationException($"XmlBufferWriter tracks at most {MaxDepth} open elements and {MaxOpenNameBytes} bytes of their names.");

    [DoesNotReturn]
    private static void ThrowNothingOpen() => throw new InvalidOperationException("EndElement without an open element.");

    [DoesNotReturn]
    private static void ThrowNoStartTag() => throw new InvalidOperationException("An attribute can only follow StartElement or another attribute.");

    [InlineArray(MaxOpenNameBytes)]
    private struct NameBytes
    {
        private byte _element0;
    }

    [InlineArray(MaxDepth)]
    private struct NameEnds
    {
        private ushort _element0;
    }
}
