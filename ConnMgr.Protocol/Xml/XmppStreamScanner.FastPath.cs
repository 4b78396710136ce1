using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Text.Unicode;
using ConnMgr.Protocol.Xml.Scanning;

namespace ConnMgr.Protocol.Xml;

/// <summary>
/// The fast path: markup and text of the common shape, read from one span with the scanner's state in
/// locals. It only ever accepts; anything it does not handle, and every error, goes back to the state
/// machine at a point where the machine can resume (see <see cref="FastMarkup"/>).
/// </summary>
public sealed partial class XmppStreamScanner
{
    private const int Handover = -3;

    // What a start tag needs beyond the fast path's own reading: all of CheckAttributes when a prefix is used
    // or declared (the xml prefix aside), a look at an xmlns='...' that may name a reserved namespace, or the
    // pairwise comparison of attribute names when two of them may be equal.
    private const int PrefixChecks = 1;
    private const int DefaultNamespaceCheck = 2;
    private const int DuplicateCheck = 4;

    // Signature (see AttrFields) of a five-byte name from 'x' to 's': a possible xmlns="..." declaration.
    private const int XmlnsSignature = 5 | 'x' << 16 | 's' << 24;

    /// <summary>
    /// From the '&lt;' at <c>span[i]</c> (top level or in content, stream phase), scans tags and text for as
    /// long as they take the common form and the span lasts: ASCII names with at most one colon, attributes
    /// written <c>name='value'</c>, the five predefined entities and character references, CDATA sections,
    /// UTF-8 checked per run between ASCII delimiters. Returns the frame's length if the top-level element
    /// ends here, <see cref="Failed"/> if the namespace checks of a complete start tag reject it, or
    /// <see cref="Handover"/> with <paramref name="i"/> and the state machine's fields set to resume: in
    /// <see cref="State.Lt"/> after the '&lt;' of a tag it did not finish, or in <see cref="State.Text"/> at a
    /// character it left. Tags it finished are committed (tag stack, declarations, depth), so the state
    /// machine scans again only the unfinished tag, reference or CDATA section. A tag that needs the checks of
    /// its attributes is read twice by the fast path (see <c>recording</c>) and never by the state machine: no
    /// byte is read more than twice.
    /// </summary>
    private int FastMarkup(ref Input input, ref int i, out XmlFrameKind kind)
    {
        kind = default;
        var span = input.Span;
        var s = _scratch ??= ArrayPool<int>.Shared.Rent(NsBase + InitialNsCapacity * NsFields);
        var depth = _depth;
        var maxDepth = _options.MaxDepth;
        var maxAttributes = _options.MaxAttributes;
        var maxName = _options.MaxNameLength;
        var window = new TagWindow { Start = NoWindow };
        var lt = i;
        int p;
        while (true)
        {
            // span[lt] is '<'.
            p = lt + 1;
            if (p >= span.Length)
                goto InTag;
            var b = span[p];
            if (b == (byte)'/')
            {
                if (depth == 0)
                    goto InTag;
                var open = (depth - 1) * TagFields;
                var openLength = s[open + 1];
                p++;
                if (p + openLength >= span.Length || !EndNameMatches(ref input, p, s[open], openLength))
                    goto InTag;
                p += openLength;
                b = span[p];
                if (b != (byte)'>')
                {
                    p = SkipSpaces(span, p);
                    if (p == span.Length || span[p] != (byte)'>')
                        goto InTag;
                }
                if (_nsCount > 0)
                    PopNamespaces(depth);
                p++;
                if (--depth == 0)
                    goto FrameEnd;
            }
            else if (b == (byte)'!')
            {
                // A CDATA section in content, ended by the first "]]>"; comments and DTD markup go to the state machine.
                if (depth == 0 || !span[p..].StartsWith("![CDATA["u8))
                    goto InTag;
                p += 8;
                var length = span[p..].IndexOf("]]>"u8);
                if (length < 0 || !XmlChars.IsCharacterData(span.Slice(p, length)))
                    goto InTag;
                p += length + 3;
            }
            else
            {
                if (depth >= maxDepth)
                    goto InTag;
                // A tag is read without keeping its attributes, which only the checks below need. When it turns out
                // to need one, the tag is read a second time with the attribute records kept (and only then).
                var recording = false;
            StartTag:
                var colon = -1;
                var nameEnd = WindowNameEnd(span, p, ref window);
                if (nameEnd < 0)
                    nameEnd = QNameEnd(span, p, out colon);
                if (nameEnd < 0 || nameEnd - p > maxName)
                    goto InTag;
                var tag = s.AsSpan(depth * TagFields, TagFields); // one bounds check for the record
                tag[0] = input.Base + p;
                tag[1] = nameEnd - p;
                tag[2] = colon < 0 ? -1 : colon - p;
                p = nameEnd;
                b = span[p];
                var count = 0;
                ulong seen = 0;
                var checks = 0;
                if (colon >= 0)
                {
                    checks = PrefixChecks;
                    recording = true; // no attribute has been read yet: nothing to read again
                }
                while (b != (byte)'>')
                {
                    if (b == (byte)'/')
                        break;
                    if (!XmlChars.IsSpace(b))
                        goto InTag;
                    p = SkipSpaces(span, p + 1);
                    if (p == span.Length)
                        goto InTag;
                    b = span[p];
                    if (b is (byte)'>' or (byte)'/')
                        break;
                    if (count >= maxAttributes)
                        goto InTag;
                    var attrColon = -1;
                    var attrEnd = WindowAttribute(span, p, ref window, out var valueEnd);
                    if (attrEnd < 0)
                    {
                        attrEnd = QNameEnd(span, p, out attrColon);
                        if (attrEnd < 0 || attrEnd + 1 >= span.Length || span[attrEnd] != (byte)'=')
                            goto InTag;
                        var quote = span[attrEnd + 1];
                        if (quote is not ((byte)'"' or (byte)'\''))
                            goto InTag;
                        valueEnd = WindowValueEnd(span, attrEnd + 2, quote, ref window);
                        // The xml prefix is bound everywhere and no other prefix to its namespace (Namespaces in XML 1.0
                        // section 3): an xml:lang needs none of the prefix checks of CheckAttributes, only the duplicate check.
                        if (attrColon >= 0 && !(attrColon - p == 3 && span[p] == (byte)'x' && span[p + 1] == (byte)'m' && span[p + 2] == (byte)'l'))
                        {
                            checks |= PrefixChecks;
                            recording |= count == 0;
                        }
                    }
                    if (valueEnd < 0 || attrEnd - p > maxName)
                        goto InTag;
                    var length = attrEnd - p;
                    var signature = (length & 0xFFFF) | (span[p] << 16) | (span[attrEnd - 1] << 24);
                    // Equal names have equal signatures, so they set the same one of 64 bits: only a tag where two
                    // signatures hash alike needs the pairwise comparison of HasDuplicateName.
                    var bit = 1UL << (int)(((uint)signature * 0x9E3779B1u) >> 26);
                    if ((seen & bit) != 0)
                        checks |= DuplicateCheck;
                    seen |= bit;
                    if (signature == XmlnsSignature && span.Slice(p, 5).SequenceEqual("xmlns"u8) && !IsPlainDefaultNamespace(span[(attrEnd + 2)..valueEnd]))
                        checks |= DefaultNamespaceCheck;
                    if (recording)
                    {
                        var fields = s.AsSpan(AttrBase + count * AttrFields, AttrFields);
                        fields[0] = input.Base + p;
                        fields[1] = length;
                        fields[2] = attrColon < 0 ? -1 : attrColon - p;
                        fields[3] = input.Base + attrEnd + 2;
                        fields[4] = valueEnd - attrEnd - 2;
                        fields[5] = signature;
                    }
                    count++;
                    p = valueEnd + 1;
                    if (p == span.Length)
                        goto InTag;
                    b = span[p];
                }
                var empty = b == (byte)'/';
                if (empty)
                {
                    if (++p == span.Length || span[p] != (byte)'>')
                        goto InTag;
                }
                if (checks != 0)
                {
                    if (!recording)
                    {
                        recording = true;
                        p = lt + 1;
                        goto StartTag;
                    }
                    if ((checks & DuplicateCheck) != 0 && HasDuplicateName(ref input, count))
                        return Fail(StreamErrorCondition.NotWellFormed, DuplicateAttribute);
                    if ((checks & PrefixChecks) != 0)
                    {
                        _depth = depth;
                        _attrCount = count;
                        if (!CheckAttributes(ref input, depth + 1, namesUnique: true))
                            return Failed;
                        _attrCount = 0;
                        s = _scratch!; // a declaration may have grown it
                    }
                    else if ((checks & DefaultNamespaceCheck) != 0 && !CheckDefaultDeclarations(ref input, count))
                    {
                        // What CheckAttributes would check after the duplicates without prefixes (two xmlns are duplicates).
                        return Failed;
                    }
                }
                p++;
                if (!empty)
                {
                    depth++;
                }
                else
                {
                    if (_nsCount > 0)
                        PopNamespaces(depth + 1);
                    if (depth == 0)
                        goto FrameEnd;
                }
            }

            // Content of the open element from span[p]: on to the next '<'.
            while (true)
            {
                var k = WindowTextStop(span, p, ref window);
                if (k < 0)
                {
                    p = span.Length;
                    goto InText;
                }
                b = span[k];
                if (b == (byte)'<')
                {
                    lt = k;
                    break;
                }
                p = k;
                if (b == (byte)'&')
                {
                    var after = ReferenceEnd(span, k + 1);
                    if (after < 0)
                        goto InText;
                    p = after;
                }
                else if (b >= 0x80)
                {
                    var after = Utf8RunEnd(span, k, XmlChars.TextSpecialSet);
                    if (after < 0)
                        goto InText;
                    p = after;
                }
                else if (b == (byte)']')
                {
                    // "]]>" may not appear in text; a second ']' is rare enough to leave to the state machine.
                    if (k + 1 == span.Length || span[k + 1] == (byte)']')
                        goto InText;
                    p = k + 1;
                }
                else if (XmlChars.IsSpace(b))
                {
                    p = k + 1;
                }
                else
                {
                    goto InText;
                }
            }
        }

    FrameEnd:
        EndFrame();
        kind = XmlFrameKind.Element;
        return input.Base + p;

    InTag:
        // Resume in the tag that begins at span[lt]; the tags before it are complete.
        _depth = depth;
        _attrCount = 0;
        _state = State.Lt;
        i = lt + 1;
        return Handover;

    InText:
        _depth = depth;
        _attrCount = 0;
        _state = State.Text;
        i = p;
        return Handover;
    }

    /// <summary>
    /// Whether the <paramref name="length"/> bytes at <c>span[p]</c> (all in the span) repeat the open element's
    /// name at frame offset <paramref name="openAt"/>. Most names are at most 8 bytes and lie in the same span
    /// as their end tag: one masked compare of two 8-byte loads then, where a call to SequenceEqual cost more
    /// than the rest of the end tag.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool EndNameMatches(ref Input input, int p, int openAt, int length)
    {
        var span = input.Span;
        var open = openAt - input.Base;
        if (length <= sizeof(ulong) && open >= 0 && p <= span.Length - sizeof(ulong))
        {
            // open < p, so both loads are inside the span.
            ref var start = ref MemoryMarshal.GetReference(span);
            var difference = Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, p)) ^ Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref start, open));
            var shift = 64 - 8 * length; // the name's bytes are the low ones of a little-endian load
            return (difference & (BitConverter.IsLittleEndian ? ulong.MaxValue >> shift : ulong.MaxValue << shift)) == 0;
        }
        return TryGetContiguous(ref input, openAt, length, out var name) && span.Slice(p, length).SequenceEqual(name);
    }

    /// <summary>
    /// Whether two of the current start tag's attributes have the same name: the first check of
    /// <see cref="CheckAttributes"/>, and with <see cref="CheckDefaultDeclarations"/> all of it that applies
    /// to a tag without prefixes.
    /// </summary>
    private bool HasDuplicateName(ref Input input, int count)
    {
        var s = _scratch!;
        var attrBase = AttrBase;
        for (var a = 1; a < count; a++)
        {
            var ra = attrBase + a * AttrFields;
            for (var c = 0; c < a; c++)
            {
                var rc = attrBase + c * AttrFields;
                if (s[ra + 5] == s[rc + 5] && s[ra + 1] == s[rc + 1] && RangesEqual(ref input, s[ra], s[rc], s[ra + 1]))
                    return true;
            }
        }
        return false;
    }

    /// <summary>
    /// Whether the raw value of <c>xmlns='...'</c> cannot be one of the two reserved namespaces: the two
    /// early answers of <see cref="CheckDefaultDeclaration"/>, on the span, without its calls.
    /// </summary>
    private static bool IsPlainDefaultNamespace(ReadOnlySpan<byte> value)
        => value.Length < XmlnsNamespaceUtf8.Length
            || (!value[..W3cPrefixUtf8.Length].Contains((byte)'&') && !value.StartsWith(W3cPrefixUtf8));

    /// <summary>Checks each <c>xmlns='...'</c> among the current start tag's unprefixed attributes.</summary>
    private bool CheckDefaultDeclarations(ref Input input, int count)
    {
        var s = _scratch!;
        for (var record = AttrBase; count > 0; count--, record += AttrFields)
        {
            if (s[record + 5] == XmlnsSignature && RangeIs(ref input, s[record], 5, "xmlns"u8) && !CheckDefaultDeclaration(ref input, record))
                return false;
        }
        return true;
    }

    /// <summary>
    /// The end of an ASCII QName (at most one colon, each part an ASCII NCName) starting at
    /// <c>span[i]</c>, with the colon's index or -1; -1 if the name is not of that form or reaches the span's end.
    /// </summary>
    private static int QNameEnd(ReadOnlySpan<byte> span, int i, out int colon)
    {
        colon = -1;
        var end = NameCharsEnd(span, i);
        if (end < 0)
            return -1;
        var b = span[end];
        if (b == (byte)':')
        {
            colon = end;
            if (end + 1 == span.Length || (end = NameCharsEnd(span, end + 1)) < 0)
                return -1;
            b = span[end];
            if (b == (byte)':')
                return -1;
        }
        return b >= 0x80 ? -1 : end;
    }

    /// <summary>
    /// The index of the closing <paramref name="quote"/> of an attribute value starting at <c>span[i]</c>,
    /// or -1 if the value is not in the span or holds anything but characters and accepted references.
    /// </summary>
    private static int ValueEnd(ReadOnlySpan<byte> span, int i, byte quote)
    {
        while (true)
        {
            var k = XmlChars.IndexOfSpecial(span, i, quote, (byte)'<', (byte)'&');
            if (k < 0)
                return -1;
            var b = span[k];
            if (b == quote)
                return k;
            if (b == (byte)'&')
                i = ReferenceEnd(span, k + 1);
            else if (b >= 0x80)
                i = Utf8RunEnd(span, k, quote == (byte)'"' ? XmlChars.DoubleQuotedSpecialSet : XmlChars.SingleQuotedSpecialSet);
            else if (XmlChars.IsSpace(b))
                i = k + 1;
            else
                return -1;
            if (i < 0)
                return -1;
        }
    }

    /// <summary>
    /// After the '&amp;' of a reference at <c>span[i - 1]</c>: the index after its ';' if it is one of the five
    /// predefined entities or a character reference to an XML character; else -1.
    /// </summary>
    private static int ReferenceEnd(ReadOnlySpan<byte> span, int i)
    {
        if (i >= span.Length)
            return -1;
        if (span[i] != (byte)'#')
        {
            // amp, lt, gt, quot, apos: 2 to 4 bytes, then ';'.
            var semicolon = span.Slice(i, Math.Min(5, span.Length - i)).IndexOf((byte)';');
            return semicolon >= 2 && XmlAttributeValue.PredefinedEntity(span.Slice(i, semicolon)) != 0 ? i + semicolon + 1 : -1;
        }
        var hex = ++i < span.Length && span[i] == (byte)'x';
        if (hex)
            i++;
        var first = i;
        var value = 0;
        for (; i < span.Length; i++)
        {
            var b = span[i];
            if (hex ? !char.IsAsciiHexDigit((char)b) : !char.IsAsciiDigit((char)b))
                break;
            // Saturate above U+10FFFF, as the state machine does.
            value = Math.Min(hex ? value * 16 + XmlAttributeValue.HexValue(b) : value * 10 + (b - '0'), 0x110000);
        }
        return i > first && i < span.Length && span[i] == (byte)';' && XmlChars.IsChar(value) ? i + 1 : -1;
    }

    /// <summary>
    /// At a byte >= 0x80: the index of the ASCII delimiter from <paramref name="special"/> that ends the run,
    /// if the run before it is well-formed UTF-8 of XML characters; -1 if not, or if the span ends first.
    /// </summary>
    private static int Utf8RunEnd(ReadOnlySpan<byte> span, int i, SearchValues<byte> special)
    {
        var end = span[i..].IndexOfAny(special);
        if (end < 0)
            return -1;
        var run = span.Slice(i, end);
        return Utf8.IsValid(run) && !XmlChars.ContainsNonCharacterFffx(run) ? i + end : -1;
    }

    /// <summary>
    /// Classes of the 64 bytes from <see cref="Start"/>, one bit per byte: inside a tag, names, '=', quotes and
    /// value delimiters are then found with bit arithmetic instead of a vector search per token.
    /// </summary>
    private struct TagWindow
    {
        public int Start;
        public ulong NonName;     // not an ASCII NameChar: ':' and bytes >= 0x80 included
        public ulong ApostropheStop; // what ends a value in '...': the apostrophe, '<', '&', C0 controls, bytes >= 0x80
        public ulong QuoteStop;   // the same for a value in "..."
        public ulong TextStop;    // what a text search stops at: '<', '&', ']', C0 controls, bytes >= 0x80
    }

    // Class bits of the ASCII bytes for the table lookup of TryLoadWindow, one per mask of TagWindow. Each is
    // set where the mask's bit is clear, so that every mask is the "class bit clear" test with no inversion.
    private const byte WindowNameCharClass = 1;
    private const byte WindowApostropheValueClass = 2; // passes inside '...'
    private const byte WindowQuoteValueClass = 4;      // passes inside "..."
    private const byte WindowTextClass = 8;            // passes in text

    private static readonly Vector512<byte> s_windowClassesLow = WindowClasses(0);
    private static readonly Vector512<byte> s_windowClassesHigh = WindowClasses(64);

    /// <summary>The window classes of the 64 bytes from <paramref name="first"/>: what the other load paths compute by comparisons.</summary>
    private static Vector512<byte> WindowClasses(int first)
    {
        Span<byte> table = stackalloc byte[64];
        for (var k = 0; k < 64; k++)
        {
            var b = (byte)(first + k);
            var stop = b < 0x20 || b is (byte)'<' or (byte)'&';
            table[k] = (byte)(
                ((XmlChars.Class[b] & XmlChars.NameChar) != 0 ? WindowNameCharClass : 0)
                | (stop || b == (byte)'\'' ? 0 : WindowApostropheValueClass)
                | (stop || b == (byte)'"' ? 0 : WindowQuoteValueClass)
                | (stop || b == (byte)']' ? 0 : WindowTextClass));
        }
        return Vector512.Create((ReadOnlySpan<byte>)table);
    }

    // The start of no window: every span index is too far from it to fall inside.
    private const int NoWindow = int.MinValue / 2;

    // A window is reloaded when a name starts this far into it, or when the name runs past its end. 32, 40,
    // 48 and 56 measured alike on the stanza mix (within 2%), once a load was one table lookup.
    private const int WindowReloadAt = 48;

    private static bool TryLoadWindow(ReadOnlySpan<byte> span, int at, ref TagWindow w)
    {
        if (at > span.Length - 64)
            return false;
        ref var start = ref MemoryMarshal.GetReference(span);
        if (Avx512Vbmi.IsSupported)
        {
            // One table lookup (VPERMI2B, 128 entries) classes all 64 bytes; bytes >= 0x80 index it by their low
            // seven bits, so their sign bit is added to each mask afterwards.
            var v = Vector512.LoadUnsafe(ref start, (nuint)at);
            var classes = Avx512Vbmi.PermuteVar64x8x2(s_windowClassesLow, v, s_windowClassesHigh);
            var nonAscii = v.ExtractMostSignificantBits();
            w.NonName = Vector512.Equals(classes & Vector512.Create(WindowNameCharClass), Vector512<byte>.Zero).ExtractMostSignificantBits() | nonAscii;
            w.ApostropheStop = Vector512.Equals(classes & Vector512.Create(WindowApostropheValueClass), Vector512<byte>.Zero).ExtractMostSignificantBits() | nonAscii;
            w.QuoteStop = Vector512.Equals(classes & Vector512.Create(WindowQuoteValueClass), Vector512<byte>.Zero).ExtractMostSignificantBits() | nonAscii;
            w.TextStop = Vector512.Equals(classes & Vector512.Create(WindowTextClass), Vector512<byte>.Zero).ExtractMostSignificantBits() | nonAscii;
        }
        else if (Vector512.IsHardwareAccelerated)
        {
            var v = Vector512.LoadUnsafe(ref start, (nuint)at);
            w.NonName = ~XmlChars.AsciiNameChars(v).ExtractMostSignificantBits();
            var stop = Vector512.Equals(v, Vector512.Create((byte)'<')) | Vector512.Equals(v, Vector512.Create((byte)'&'))
                | Vector512.LessThan(v.AsSByte(), Vector512.Create((sbyte)0x20)).AsByte();
            w.ApostropheStop = (stop | Vector512.Equals(v, Vector512.Create((byte)'\''))).ExtractMostSignificantBits();
            w.QuoteStop = (stop | Vector512.Equals(v, Vector512.Create((byte)'"'))).ExtractMostSignificantBits();
            w.TextStop = (stop | Vector512.Equals(v, Vector512.Create((byte)']'))).ExtractMostSignificantBits();
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var lo = Vector256.LoadUnsafe(ref start, (nuint)at);
            var hi = Vector256.LoadUnsafe(ref start, (nuint)at + 32);
            w.NonName = ~Join(XmlChars.AsciiNameChars(lo).ExtractMostSignificantBits(), XmlChars.AsciiNameChars(hi).ExtractMostSignificantBits());
            w.ApostropheStop = Join(Stops(lo, (byte)'\''), Stops(hi, (byte)'\''));
            w.QuoteStop = Join(Stops(lo, (byte)'"'), Stops(hi, (byte)'"'));
            w.TextStop = Join(Stops(lo, (byte)']'), Stops(hi, (byte)']'));
        }
        else
        {
            return false;
        }
        w.Start = at;
        return true;

        static ulong Join(uint low, uint high) => low | (ulong)high << 32;

        static uint Stops(Vector256<byte> v, byte delimiter)
            => (Vector256.Equals(v, Vector256.Create((byte)'<')) | Vector256.Equals(v, Vector256.Create((byte)'&'))
                | Vector256.Equals(v, Vector256.Create(delimiter))
                | Vector256.LessThan(v.AsSByte(), Vector256.Create((sbyte)0x20)).AsByte()).ExtractMostSignificantBits();
    }

    /// <summary>
    /// The end of an ASCII name without a colon starting at <c>span[i]</c>, found in the window (reloaded at
    /// <paramref name="i"/> if the name starts late in it, or runs past its end); -1 if the window cannot tell
    /// or the name has a prefix (the caller then uses <see cref="QNameEnd"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int WindowNameEnd(ReadOnlySpan<byte> span, int i, ref TagWindow w)
    {
        var r = i - w.Start;
        if ((uint)r > WindowReloadAt)
        {
            if (!TryLoadWindow(span, i, ref w))
                return -1;
            r = 0;
        }
        if ((XmlChars.Class[span[i]] & XmlChars.NameStart) == 0)
            return -1;
        var end = r + 1 + BitOperations.TrailingZeroCount(w.NonName >> (r + 1));
        if (end > 63)
        {
            // The attributes after a long name are better read from a window that starts at it.
            if (r == 0 || !TryLoadWindow(span, i, ref w))
                return -1;
            end = 1 + BitOperations.TrailingZeroCount(w.NonName >> 1);
            if (end > 63)
                return -1;
        }
        var at = w.Start + end;
        var b = span[at];
        return b == (byte)':' || b >= 0x80 ? -1 : at;
    }

    /// <summary>
    /// An attribute of the plain form <c>name='value'</c> (ASCII name without a colon, '=' and the quote straight
    /// after it) starting at <c>span[i]</c>, read from the window (reloaded at <paramref name="i"/> if the name
    /// starts late in it): returns the name's end, with the index of the closing quote in
    /// <paramref name="valueEnd"/> (-1 if the value is not acceptable); -1 if the attribute is not of that form
    /// within the window. The caller then reads it with <see cref="QNameEnd"/>: prefixed names take that way.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int WindowAttribute(ReadOnlySpan<byte> span, int i, ref TagWindow w, out int valueEnd)
    {
        valueEnd = -1;
        var r = i - w.Start;
        if ((uint)r > WindowReloadAt)
        {
            if (!TryLoadWindow(span, i, ref w))
                return -1;
            r = 0;
        }
        if ((XmlChars.Class[span[i]] & XmlChars.NameStart) == 0)
            return -1;
        // The '=', the quote and the value's first byte must be in the window.
        var end = r + 1 + BitOperations.TrailingZeroCount(w.NonName >> (r + 1));
        if (end > 61)
            return -1;
        var at = w.Start + end;
        if (span[at] != (byte)'=')
            return -1;
        var quote = span[at + 1];
        ulong stops;
        if (quote == (byte)'\'')
            stops = w.ApostropheStop;
        else if (quote == (byte)'"')
            stops = w.QuoteStop;
        else
            return -1;
        stops >>= end + 2;
        if (stops == 0)
        {
            valueEnd = ValueEnd(span, w.Start + 64, quote); // the rest of the window is plain characters
        }
        else
        {
            var k = at + 2 + BitOperations.TrailingZeroCount(stops);
            valueEnd = span[k] == quote ? k : ValueEnd(span, k, quote);
        }
        return at;
    }

    /// <summary>
    /// The next byte from <c>span[i]</c> that text cannot simply pass (see <see cref="XmlChars.IndexOfSpecial"/>
    /// with '&lt;', '&amp;', ']'), from the window when <paramref name="i"/> is inside it; -1 if none.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int WindowTextStop(ReadOnlySpan<byte> span, int i, ref TagWindow w)
    {
        var r = i - w.Start;
        if ((uint)r >= 64)
            return XmlChars.IndexOfSpecial(span, i, (byte)'<', (byte)'&', (byte)']');
        var stops = w.TextStop >> r;
        return stops != 0
            ? i + BitOperations.TrailingZeroCount(stops)
            : XmlChars.IndexOfSpecial(span, w.Start + 64, (byte)'<', (byte)'&', (byte)']');
    }

    /// <summary>
    /// <see cref="ValueEnd"/>, with the first stop taken from the window when the value starts inside it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int WindowValueEnd(ReadOnlySpan<byte> span, int i, byte quote, ref TagWindow w)
    {
        var r = i - w.Start;
        if ((uint)r >= 64)
            return ValueEnd(span, i, quote);
        var stops = (quote == (byte)'\'' ? w.ApostropheStop : w.QuoteStop) >> r;
        if (stops == 0)
            return ValueEnd(span, w.Start + 64, quote); // the rest of the window is plain characters
        var k = i + BitOperations.TrailingZeroCount(stops);
        return span[k] == quote ? k : ValueEnd(span, k, quote);
    }
}
