using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using System.Text.Unicode;

namespace ConnMgr.Protocol.Xml;

/// <summary>
/// XML 1.0 escaping and unescaping on UTF-8, without allocation.
/// </summary>
/// <remarks>
/// Escaping always produces well-formed output: a character XML 1.0 forbids (C0 controls other than
/// tab, LF and CR; U+FFFE; U+FFFF; a lone surrogate; an invalid UTF-8 sequence) is written as U+FFFD,
/// because one such byte inside a route makes Openfire drop the whole link (spec 2).
/// Text escapes <c>&amp;</c> <c>&lt;</c> <c>&gt;</c> and CR (as <c>&amp;#xD;</c>, which a parser's
/// line-end normalization would otherwise turn into LF). Attribute values escape <c>&amp;</c> <c>&lt;</c>
/// <c>"</c> <c>'</c>, and tab, LF and CR as character references, which a parser's attribute-value
/// normalization would otherwise turn into spaces (XML 1.0 section 3.3.3).
/// Unescaping accepts the five predefined entities and decimal/hexadecimal character references
/// to XML characters; anything else is a <see cref="FormatException"/>.
/// </remarks>
public static class XmlEscaping
{
    /// <summary>The most bytes one input character can become (<c>&amp;quot;</c>).</summary>
    private const int MaxEscapeLength = 6;

    /// <summary>Smallest span asked of an <see cref="IBufferWriter{T}"/>: fits any single escape or a surrogate pair.</summary>
    private const int MinChunk = 16;

    /// <summary>Largest span asked at once, so a long value never makes a pipe allocate an oversized segment.</summary>
    private const int MaxChunk = 4096;

    /// <summary>Values up to this many bytes are unescaped on the stack; longer ones in a pooled array.</summary>
    internal const int StackBufferLength = 256;

    private static ReadOnlySpan<byte> ReplacementCharacter => [0xEF, 0xBF, 0xBD];

    // Bytes that stop a plain copy. 0xEF leads U+FFFE and U+FFFF (EF BF BE, EF BF BF), which XML forbids.
    private static readonly SearchValues<byte> s_textBytes = SearchValues.Create(
        [(byte)'&', (byte)'<', (byte)'>', (byte)'\r', 0xEF, .. C0ControlsExcept("\t\n")]);
    private static readonly SearchValues<byte> s_attributeBytes = SearchValues.Create(
        [(byte)'&', (byte)'<', (byte)'"', (byte)'\'', 0xEF, .. C0ControlsExcept("")]);
    private static readonly SearchValues<char> s_textChars = SearchValues.Create(
        "&<>\r\uFFFE\uFFFF" + Encoding.Latin1.GetString(C0ControlsExcept("\t\n\r")));
    private static readonly SearchValues<char> s_attributeChars = SearchValues.Create(
        "&<\"'\uFFFE\uFFFF" + Encoding.Latin1.GetString(C0ControlsExcept("")));

    private static readonly SearchValues<byte> s_textUnescapeStops = SearchValues.Create("&\r"u8);
    private static readonly SearchValues<byte> s_attributeUnescapeStops = SearchValues.Create("&\r\n\t"u8);
    private static readonly SearchValues<byte> s_cdataUnescapeStops = SearchValues.Create("\r"u8);

    private static byte[] C0ControlsExcept(string allowed)
    {
        var result = new List<byte>(32);
        for (var b = 0; b < 0x20; b++)
        {
            if (!allowed.Contains((char)b))
                result.Add((byte)b);
        }
        return [.. result];
    }

    // ---- escaping -------------------------------------------------------------------------

    public static void EscapeText(ReadOnlySpan<char> text, IBufferWriter<byte> output) => EscapeUtf16(text, output, attribute: false);

    public static void EscapeText(ReadOnlySpan<byte> utf8, IBufferWriter<byte> output) => EscapeUtf8(utf8, output, attribute: false);

    /// <summary>Escapes an attribute value (without the quotes).</summary>
    public static void EscapeAttribute(ReadOnlySpan<char> value, IBufferWriter<byte> output) => EscapeUtf16(value, output, attribute: true);

    public static void EscapeAttribute(ReadOnlySpan<byte> utf8, IBufferWriter<byte> output) => EscapeUtf8(utf8, output, attribute: true);

    /// <summary>Escapes text into <paramref name="destination"/>; false if it does not fit (nothing useful written).</summary>
    public static bool TryEscapeText(ReadOnlySpan<char> text, Span<byte> destination, out int written)
        => EscapeUtf16Core(text, destination, attribute: false, out _, out written) == OperationStatus.Done;

    public static bool TryEscapeText(ReadOnlySpan<byte> utf8, Span<byte> destination, out int written)
        => EscapeUtf8Core(utf8, destination, attribute: false, Utf8.IsValid(utf8), out _, out written) == OperationStatus.Done;

    public static bool TryEscapeAttribute(ReadOnlySpan<char> value, Span<byte> destination, out int written)
        => EscapeUtf16Core(value, destination, attribute: true, out _, out written) == OperationStatus.Done;

    public static bool TryEscapeAttribute(ReadOnlySpan<byte> utf8, Span<byte> destination, out int written)
        => EscapeUtf8Core(utf8, destination, attribute: true, Utf8.IsValid(utf8), out _, out written) == OperationStatus.Done;

    /// <summary>Escaped text as a string; for logs and tests, not hot paths.</summary>
    public static string EscapeText(string text)
    {
        var buffer = new ArrayBufferWriter<byte>(text.Length + MinChunk);
        EscapeText(text, buffer);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Escaped attribute value as a string; for logs and tests, not hot paths.</summary>
    public static string EscapeAttribute(string value)
    {
        var buffer = new ArrayBufferWriter<byte>(value.Length + MinChunk);
        EscapeAttribute(value, buffer);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <returns>The number of bytes written.</returns>
    internal static long EscapeUtf8(ReadOnlySpan<byte> source, IBufferWriter<byte> output, bool attribute)
    {
        // Validated once here rather than per chunk: a megabyte body is written in many chunks.
        var valid = Utf8.IsValid(source);
        long total = 0;
        while (true)
        {
            var span = output.GetSpan(Math.Clamp(source.Length + MaxEscapeLength, MinChunk, MaxChunk));
            var status = EscapeUtf8Core(source, span, attribute, valid, out var consumed, out var written);
            output.Advance(written);
            total += written;
            if (status == OperationStatus.Done)
                return total;
            source = source[consumed..];
        }
    }

    /// <returns>The number of bytes written.</returns>
    internal static long EscapeUtf16(ReadOnlySpan<char> source, IBufferWriter<byte> output, bool attribute)
    {
        long total = 0;
        while (true)
        {
            // UTF-16 to UTF-8 grows by up to 3/2 per char (3 bytes for one BMP char).
            var span = output.GetSpan(Math.Clamp(source.Length * 3 / 2 + MaxEscapeLength, MinChunk, MaxChunk));
            var status = EscapeUtf16Core(source, span, attribute, out var consumed, out var written);
            output.Advance(written);
            total += written;
            if (status == OperationStatus.Done)
                return total;
            source = source[consumed..];
        }
    }

    /// <param name="validUtf8">Whether <paramref name="source"/> is known to be valid UTF-8; when not, every
    /// non-ASCII sequence is decoded and invalid ones become U+FFFD.</param>
    private static OperationStatus EscapeUtf8Core(
        ReadOnlySpan<byte> source, Span<byte> destination, bool attribute, bool validUtf8, out int consumed, out int written)
    {
        var stops = attribute ? s_attributeBytes : s_textBytes;
        int i = 0, w = 0;
        while (i < source.Length)
        {
            var rest = source[i..];
            var run = validUtf8 ? rest.IndexOfAny(stops) : IndexOfStopOrNonAscii(rest, stops);
            if (run < 0)
                run = rest.Length;
            var fits = Math.Min(run, destination.Length - w);
            rest[..fits].CopyTo(destination[w..]);
            i += fits;
            w += fits;
            if (fits < run)
                return TooSmall(i, w, out consumed, out written);
            if (i == source.Length)
                break;

            var b = source[i];
            if (b < 0x80)
            {
                var escape = Escape((char)b, attribute);
                if (!escape.TryCopyTo(destination[w..]))
                    return TooSmall(i, w, out consumed, out written);
                i++;
                w += escape.Length;
                continue;
            }

            // Non-ASCII: 0xEF on valid input, any lead byte otherwise.
            var status = Rune.DecodeFromUtf8(source[i..], out var rune, out var length);
            var allowed = status == OperationStatus.Done && rune.Value is not (0xFFFE or 0xFFFF);
            var bytes = allowed ? source.Slice(i, length) : ReplacementCharacter;
            if (!bytes.TryCopyTo(destination[w..]))
                return TooSmall(i, w, out consumed, out written);
            i += length;
            w += bytes.Length;
        }
        consumed = i;
        written = w;
        return OperationStatus.Done;
    }

    private static int IndexOfStopOrNonAscii(ReadOnlySpan<byte> span, SearchValues<byte> stops)
    {
        var stop = span.IndexOfAny(stops);
        var limit = stop < 0 ? span : span[..stop];
        var nonAscii = limit.IndexOfAnyInRange((byte)0x80, (byte)0xFF);
        return nonAscii >= 0 ? nonAscii : stop;
    }

    private static OperationStatus EscapeUtf16Core(
        ReadOnlySpan<char> source, Span<byte> destination, bool attribute, out int consumed, out int written)
    {
        var stops = attribute ? s_attributeChars : s_textChars;
        int i = 0, w = 0;
        while (i < source.Length)
        {
            var rest = source[i..];
            var run = rest.IndexOfAny(stops);
            if (run < 0)
                run = rest.Length;
            if (run > 0)
            {
                // Lone surrogates become U+FFFD here; a pair is never split by a full destination.
                var status = Utf8.FromUtf16(rest[..run], destination[w..], out var read, out var wrote, replaceInvalidSequences: true);
                i += read;
                w += wrote;
                if (status != OperationStatus.Done)
                    return TooSmall(i, w, out consumed, out written);
                if (i == source.Length)
                    break;
            }

            var c = source[i];
            var escape = c < 0x80 ? Escape(c, attribute) : ReplacementCharacter;
            if (!escape.TryCopyTo(destination[w..]))
                return TooSmall(i, w, out consumed, out written);
            i++;
            w += escape.Length;
        }
        consumed = i;
        written = w;
        return OperationStatus.Done;
    }

    private static OperationStatus TooSmall(int i, int w, out int consumed, out int written)
    {
        consumed = i;
        written = w;
        return OperationStatus.DestinationTooSmall;
    }

    /// <summary>The escape of an ASCII character the search stopped at.</summary>
    private static ReadOnlySpan<byte> Escape(char c, bool attribute) => c switch
    {
        '&' => "&amp;"u8,
        '<' => "&lt;"u8,
        '>' => "&gt;"u8,
        '"' => "&quot;"u8,
        '\'' => "&apos;"u8,
        '\r' => "&#xD;"u8,
        '\n' when attribute => "&#xA;"u8,
        '\t' when attribute => "&#x9;"u8,
        '\n' => "\n"u8,
        '\t' => "\t"u8,
        _ => ReplacementCharacter,
    };

    // ---- unescaping -----------------------------------------------------------------------

    /// <summary>
    /// Writes the character data that escaped text stands for (entities and character references
    /// resolved, CR LF and lone CR turned into LF as a parser would). Used for the text body of an
    /// Openfire 4.8+ raw-text route (spec 6.2).
    /// </summary>
    /// <exception cref="FormatException">An unknown entity, a malformed or forbidden character reference.</exception>
    public static void Unescape(ReadOnlySpan<byte> escaped, IBufferWriter<byte> output) => Unescape(escaped, output, UnescapeMode.Text);

    /// <summary>Unescapes into <paramref name="destination"/>; a destination as long as the input always suffices,
    /// since no escape is shorter than what it stands for. False if the destination is too small.</summary>
    /// <exception cref="FormatException">An unknown entity, a malformed or forbidden character reference.</exception>
    public static bool TryUnescape(ReadOnlySpan<byte> escaped, Span<byte> destination, out int written)
        => TryUnescape(escaped, destination, UnescapeMode.Text, out written);

    /// <summary>Unescapes text to a string.</summary>
    /// <exception cref="FormatException">An unknown entity, a malformed or forbidden character reference.</exception>
    public static string UnescapeToString(ReadOnlySpan<byte> escaped) => UnescapeToString(escaped, UnescapeMode.Text);

    /// <summary>Unescapes an attribute value as XML 1.0 section 3.3.3 normalizes it: literal tab, LF and CR
    /// (CR LF counting once) become spaces; character references keep their character.</summary>
    /// <exception cref="FormatException">An unknown entity, a malformed or forbidden character reference.</exception>
    public static string UnescapeAttributeToString(ReadOnlySpan<byte> rawValue) => UnescapeToString(rawValue, UnescapeMode.Attribute);

    internal static void Unescape(ReadOnlySpan<byte> escaped, IBufferWriter<byte> output, UnescapeMode mode)
    {
        while (!escaped.IsEmpty)
        {
            var span = output.GetSpan(Math.Clamp(escaped.Length, MinChunk, MaxChunk));
            var status = UnescapeCore(escaped, span, mode, out var consumed, out var written);
            output.Advance(written);
            if (status == OperationStatus.Done)
                return;
            if (status == OperationStatus.InvalidData)
                ThrowMalformedReference(escaped[consumed..]);
            escaped = escaped[consumed..];
        }
    }

    internal static bool TryUnescape(ReadOnlySpan<byte> escaped, Span<byte> destination, UnescapeMode mode, out int written)
    {
        var status = UnescapeCore(escaped, destination, mode, out var consumed, out written);
        if (status == OperationStatus.InvalidData)
            ThrowMalformedReference(escaped[consumed..]);
        return status == OperationStatus.Done;
    }

    /// <summary>Compares escaped bytes with unescaped UTF-8 without allocating; false on malformed input.</summary>
    internal static bool UnescapedEquals(ReadOnlySpan<byte> escaped, ReadOnlySpan<byte> unescaped, UnescapeMode mode)
    {
        if (!escaped.ContainsAny(StopsFor(mode)))
            return escaped.SequenceEqual(unescaped);
        // Unescaping never grows, so a longer value cannot match.
        if (unescaped.Length > escaped.Length)
            return false;
        byte[]? rented = null;
        var buffer = escaped.Length <= StackBufferLength ? stackalloc byte[StackBufferLength] : (rented = ArrayPool<byte>.Shared.Rent(escaped.Length));
        try
        {
            return UnescapeCore(escaped, buffer, mode, out _, out var written) == OperationStatus.Done
                && buffer[..written].SequenceEqual(unescaped);
        }
        finally
        {
            if (rented is not null)
                ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>Compares escaped UTF-8 with a UTF-16 string without allocating; false on malformed input.</summary>
    internal static bool UnescapedEquals(ReadOnlySpan<byte> escaped, ReadOnlySpan<char> unescaped, UnescapeMode mode)
    {
        if (!escaped.ContainsAny(StopsFor(mode)))
            return Utf8Text.Equals(escaped, unescaped);
        byte[]? rented = null;
        var buffer = escaped.Length <= StackBufferLength ? stackalloc byte[StackBufferLength] : (rented = ArrayPool<byte>.Shared.Rent(escaped.Length));
        try
        {
            return UnescapeCore(escaped, buffer, mode, out _, out var written) == OperationStatus.Done
                && Utf8Text.Equals(buffer[..written], unescaped);
        }
        finally
        {
            if (rented is not null)
                ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private static string UnescapeToString(ReadOnlySpan<byte> escaped, UnescapeMode mode)
    {
        if (!escaped.ContainsAny(StopsFor(mode)))
            return Encoding.UTF8.GetString(escaped);
        byte[]? rented = null;
        var buffer = escaped.Length <= StackBufferLength ? stackalloc byte[StackBufferLength] : (rented = ArrayPool<byte>.Shared.Rent(escaped.Length));
        try
        {
            TryUnescape(escaped, buffer, mode, out var written);
            return Encoding.UTF8.GetString(buffer[..written]);
        }
        finally
        {
            if (rented is not null)
                ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private static SearchValues<byte> StopsFor(UnescapeMode mode) => mode switch
    {
        UnescapeMode.Attribute => s_attributeUnescapeStops,
        UnescapeMode.CData => s_cdataUnescapeStops,
        _ => s_textUnescapeStops,
    };

    /// <summary>
    /// Unescapes as much as fits. A reference or a CR LF pair is never split; on
    /// <see cref="OperationStatus.InvalidData"/>, <paramref name="consumed"/> is where the bad reference starts.
    /// </summary>
    internal static OperationStatus UnescapeCore(
        ReadOnlySpan<byte> source, Span<byte> destination, UnescapeMode mode, out int consumed, out int written)
    {
        var stops = StopsFor(mode);
        int i = 0, w = 0;
        while (i < source.Length)
        {
            var rest = source[i..];
            var run = rest.IndexOfAny(stops);
            if (run < 0)
                run = rest.Length;
            var fits = Math.Min(run, destination.Length - w);
            rest[..fits].CopyTo(destination[w..]);
            i += fits;
            w += fits;
            if (fits < run || (i < source.Length && w == destination.Length))
                return TooSmall(i, w, out consumed, out written);
            if (i == source.Length)
                break;

            switch (source[i])
            {
                case (byte)'&':
                    if (!TryDecodeReference(source[i..], out var referenceLength, out var rune))
                    {
                        consumed = i;
                        written = w;
                        return OperationStatus.InvalidData;
                    }
                    if (!rune.TryEncodeToUtf8(destination[w..], out var runeLength))
                        return TooSmall(i, w, out consumed, out written);
                    i += referenceLength;
                    w += runeLength;
                    break;
                case (byte)'\r':
                    destination[w++] = mode == UnescapeMode.Attribute ? (byte)' ' : (byte)'\n';
                    i += i + 1 < source.Length && source[i + 1] == '\n' ? 2 : 1;
                    break;
                default:
                    // Tab or LF in an attribute value.
                    destination[w++] = (byte)' ';
                    i++;
                    break;
            }
        }
        consumed = i;
        written = w;
        return OperationStatus.Done;
    }

    /// <summary>Decodes <c>&amp;name;</c>, <c>&amp;#NNN;</c> or <c>&amp;#xHHH;</c> at the start of <paramref name="source"/>.</summary>
    internal static bool TryDecodeReference(ReadOnlySpan<byte> source, out int length, out Rune rune)
    {
        length = 0;
        rune = default;
        var semicolon = source.IndexOf((byte)';');
        if (semicolon < 2)
            return false;
        var body = source[1..semicolon];
        length = semicolon + 1;
        if (body[0] != '#')
        {
            char c;
            if (body.SequenceEqual("lt"u8)) c = '<';
            else if (body.SequenceEqual("gt"u8)) c = '>';
            else if (body.SequenceEqual("amp"u8)) c = '&';
            else if (body.SequenceEqual("quot"u8)) c = '"';
            else if (body.SequenceEqual("apos"u8)) c = '\'';
            else return false;
            rune = new Rune(c);
            return true;
        }

        var hex = body.Length > 1 && body[1] == 'x';
        var digits = body[(hex ? 2 : 1)..];
        if (digits.IsEmpty)
            return false;
        var value = 0;
        foreach (var d in digits)
        {
            int digit;
            if (d is >= (byte)'0' and <= (byte)'9') digit = d - '0';
            else if (hex && d is >= (byte)'a' and <= (byte)'f') digit = d - 'a' + 10;
            else if (hex && d is >= (byte)'A' and <= (byte)'F') digit = d - 'A' + 10;
            else return false;
            value = value * (hex ? 16 : 10) + digit;
            // Leading zeros are legal, so bound the value rather than the digit count.
            if (value > 0x10FFFF)
                return false;
        }
        if (!IsXmlChar(value))
            return false;
        rune = new Rune(value);
        return true;
    }

    /// <summary>XML 1.0 production [2] Char.</summary>
    internal static bool IsXmlChar(int c)
        => c is 0x9 or 0xA or 0xD or (>= 0x20 and <= 0xD7FF) or (>= 0xE000 and <= 0xFFFD) or (>= 0x10000 and <= 0x10FFFF);

    [DoesNotReturn]
    private static void ThrowMalformedReference(ReadOnlySpan<byte> at)
    {
        var shown = Encoding.UTF8.GetString(at[..Math.Min(at.Length, 16)]);
        throw new FormatException($"Malformed entity or character reference at '{shown}'.");
    }
}

/// <summary>Which normalization unescaping applies besides resolving references (XML 1.0 sections 2.11, 3.3.3).</summary>
internal enum UnescapeMode : byte
{
    /// <summary>Character data: CR LF and lone CR become LF.</summary>
    Text,

    /// <summary>Attribute value: literal tab, LF, CR (CR LF once) become a space.</summary>
    Attribute,

    /// <summary>CDATA section content: no references, only line-end normalization.</summary>
    CData,
}

/// <summary>Comparisons between UTF-8 and UTF-16 text without transcoding to a new buffer.</summary>
internal static class Utf8Text
{
    public static bool Equals(ReadOnlySpan<byte> utf8, ReadOnlySpan<char> text)
    {
        if (Ascii.Equals(utf8, text))
            return true;
        // Ascii.Equals is also false when either side has non-ASCII text that may still be equal.
        if (Ascii.IsValid(utf8) && Ascii.IsValid(text))
            return false;
        while (!utf8.IsEmpty && !text.IsEmpty)
        {
            if (Rune.DecodeFromUtf8(utf8, out var left, out var leftLength) != OperationStatus.Done
                || Rune.DecodeFromUtf16(text, out var right, out var rightLength) != OperationStatus.Done
                || left != right)
            {
                return false;
            }
            utf8 = utf8[leftLength..];
            text = text[rightLength..];
        }
        return utf8.IsEmpty && text.IsEmpty;
    }
}
