using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Text;
using System.Text.Unicode;

namespace ConnMgr.Protocol.Xml.Scanning;

/// <summary>
/// Character classes of XML 1.0 (fifth edition) over UTF-8 bytes, and a strict UTF-8 decoder
/// (Unicode table 3-7: no overlongs, no surrogates, nothing above U+10FFFF).
/// </summary>
internal static class XmlChars
{
    // Class bits of each byte value (all zero above 0x7F).
    public const byte NameStart = 1; // ASCII NameStartChar without ':' (letters, _); the scanner handles QName colons
    public const byte NameChar = 2;  // ASCII NameChar without ':' (NameStart, digits, -, .)
    public const byte Space = 4;     // XML's S production: space, tab, CR, LF

    public static ReadOnlySpan<byte> Class =>
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 0, 0, 4, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 0,
        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0,
        0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
        3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 0, 3,
        0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
        3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    /// <summary>
    /// Index of the first byte at or after <paramref name="i"/> that needs attention in text or an attribute
    /// value: one of the three delimiters, a byte below 0x20 (tab, CR and LF included: the caller lets them
    /// pass) or above 0x7F (the start of a multi-byte character); -1 if there is none.
    /// </summary>
    /// <remarks>
    /// Runs between delimiters are short in XMPP (ids, JIDs, short bodies), so this checks 16 bytes per step,
    /// with one signed compare for both control and non-ASCII bytes; its single, well-predicted exit is what
    /// makes it cheaper than a byte loop. 256-bit vectors measured slower on the benchmark's stanza mix, whose
    /// runs rarely fill them.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int IndexOfSpecial(ReadOnlySpan<byte> span, int i, byte d1, byte d2, byte d3)
    {
        ref var start = ref MemoryMarshal.GetReference(span);
        if (Vector128.IsHardwareAccelerated)
        {
            var v1 = Vector128.Create(d1);
            var v2 = Vector128.Create(d2);
            var v3 = Vector128.Create(d3);
            var below = Vector128.Create((sbyte)0x20);
            for (; i <= span.Length - Vector128<byte>.Count; i += Vector128<byte>.Count)
            {
                var v = Vector128.LoadUnsafe(ref start, (nuint)i);
                var hits = Vector128.Equals(v, v1) | Vector128.Equals(v, v2) | Vector128.Equals(v, v3)
                    | Vector128.LessThan(v.AsSByte(), below).AsByte();
                var bits = hits.ExtractMostSignificantBits();
                if (bits != 0)
                    return i + BitOperations.TrailingZeroCount(bits);
            }
        }
        for (; i < span.Length; i++)
        {
            var b = span[i];
            if (b == d1 || b == d2 || b == d3 || (sbyte)b < 0x20)
                return i;
        }
        return -1;
    }

    /// <summary>
    /// Index of the first byte at or after <paramref name="i"/> that is not an ASCII NameChar other than ':'
    /// (letters, digits, '-', '.', '_'), or -1 if the span ends first. Names are a few bytes long: one
    /// 16-byte step finds the end without a byte loop's mispredicted exit.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int IndexOfNonNameChar(ReadOnlySpan<byte> span, int i)
    {
        if (Vector128.IsHardwareAccelerated)
        {
            ref var start = ref MemoryMarshal.GetReference(span);
            for (; i <= span.Length - Vector128<byte>.Count; i += Vector128<byte>.Count)
            {
                var bits = ~AsciiNameChars(Vector128.LoadUnsafe(ref start, (nuint)i)).ExtractMostSignificantBits() & 0xFFFF;
                if (bits != 0)
                    return i + BitOperations.TrailingZeroCount(bits);
            }
        }
        var classes = Class;
        for (; i < span.Length; i++)
        {
            if ((classes[span[i]] & NameChar) == 0)
                return i;
        }
        return -1;
    }

    /// <summary>Marks the ASCII NameChars other than ':' (letters, digits, '-', '.', '_') with all bits set.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> AsciiNameChars(Vector128<byte> v)
    {
        var letter = Vector128.LessThan((v | Vector128.Create((byte)0x20)) - Vector128.Create((byte)'a'), Vector128.Create((byte)26));
        var digit = Vector128.LessThan(v - Vector128.Create((byte)'0'), Vector128.Create((byte)10));
        // '-' (0x2D) and '.' (0x2E) are adjacent; '_' is alone.
        var punct = Vector128.LessThan(v - Vector128.Create((byte)'-'), Vector128.Create((byte)2))
            | Vector128.Equals(v, Vector128.Create((byte)'_'));
        return letter | digit | punct;
    }

    /// <inheritdoc cref="AsciiNameChars(Vector128{byte})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> AsciiNameChars(Vector256<byte> v)
    {
        var letter = Vector256.LessThan((v | Vector256.Create((byte)0x20)) - Vector256.Create((byte)'a'), Vector256.Create((byte)26));
        var digit = Vector256.LessThan(v - Vector256.Create((byte)'0'), Vector256.Create((byte)10));
        var punct = Vector256.LessThan(v - Vector256.Create((byte)'-'), Vector256.Create((byte)2))
            | Vector256.Equals(v, Vector256.Create((byte)'_'));
        return letter | digit | punct;
    }

    /// <inheritdoc cref="AsciiNameChars(Vector128{byte})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> AsciiNameChars(Vector512<byte> v)
    {
        var letter = Vector512.LessThan((v | Vector512.Create((byte)0x20)) - Vector512.Create((byte)'a'), Vector512.Create((byte)26));
        var digit = Vector512.LessThan(v - Vector512.Create((byte)'0'), Vector512.Create((byte)10));
        var punct = Vector512.LessThan(v - Vector512.Create((byte)'-'), Vector512.Create((byte)2))
            | Vector512.Equals(v, Vector512.Create((byte)'_'));
        return letter | digit | punct;
    }

    // The ASCII bytes that end a run of non-ASCII text being validated in bulk: a state's delimiters and the
    // C0 controls XML 1.0 forbids (everything below 0x20 but tab, CR and LF).
    public static readonly SearchValues<byte> TextSpecialSet = Special("<&]"u8);
    public static readonly SearchValues<byte> CdataSpecialSet = Special("]"u8);
    public static readonly SearchValues<byte> DoubleQuotedSpecialSet = Special("<&\""u8);
    public static readonly SearchValues<byte> SingleQuotedSpecialSet = Special("<&'"u8);

    // The C0 controls XML 1.0 forbids: all below 0x20 but tab, LF and CR.
    private static readonly SearchValues<byte> s_forbiddenControls = SearchValues.Create(
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31]);

    /// <summary>
    /// Whether <paramref name="data"/> is well-formed UTF-8 of XML characters only (XML 1.0 Char), as the
    /// content of a CDATA section must be.
    /// </summary>
    public static bool IsCharacterData(ReadOnlySpan<byte> data)
        => !data.ContainsAny(s_forbiddenControls) && (Ascii.IsValid(data) || (Utf8.IsValid(data) && !ContainsNonCharacterFffx(data)));

    private static SearchValues<byte> Special(ReadOnlySpan<byte> delimiters)
    {
        var bytes = new List<byte>(40);
        for (var b = 0; b < 0x80; b++)
        {
            if (!IsPlainAscii((byte)b, delimiters))
                bytes.Add((byte)b);
        }
        return SearchValues.Create(bytes.ToArray());
    }

    private static bool IsPlainAscii(byte b, ReadOnlySpan<byte> delimiters)
        => (b >= 0x20 || b is (byte)'\t' or (byte)'\n' or (byte)'\r') && !delimiters.Contains(b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsSpace(byte b) => (Class[b] & Space) != 0;

    /// <summary>
    /// Decodes the multi-byte sequence at the start of <paramref name="s"/> (whose first byte is >= 0x80).
    /// Returns its length (2 to 4) with the code point; 0 if <paramref name="s"/> ends inside a sequence
    /// that is valid so far; -1 if the bytes are not well-formed UTF-8.
    /// </summary>
    public static int DecodeNonAscii(ReadOnlySpan<byte> s, out int codePoint)
    {
        codePoint = 0;
        int lead = s[0];
        int length;
        int lo = 0x80, hi = 0xBF;
        if (lead < 0xC2)
        {
            return -1; // a continuation byte, or C0/C1 (always overlong)
        }
        if (lead < 0xE0)
        {
            length = 2;
            codePoint = lead & 0x1F;
        }
        else if (lead < 0xF0)
        {
            length = 3;
            codePoint = lead & 0x0F;
            if (lead == 0xE0) lo = 0xA0;      // overlong below U+0800
            else if (lead == 0xED) hi = 0x9F; // surrogates U+D800-U+DFFF
        }
        else if (lead < 0xF5)
        {
            length = 4;
            codePoint = lead & 0x07;
            if (lead == 0xF0) lo = 0x90;      // overlong below U+10000
            else if (lead == 0xF4) hi = 0x8F; // above U+10FFFF
        }
        else
        {
            return -1;
        }
        for (var k = 1; k < length; k++)
        {
            if (k >= s.Length)
                return 0;
            int b = s[k];
            if (b < lo || b > hi)
                return -1;
            lo = 0x80;
            hi = 0xBF;
            codePoint = (codePoint << 6) | (b & 0x3F);
        }
        return length;
    }

    /// <summary>
    /// Length of an incomplete multi-byte sequence at the end of <paramref name="s"/> (0 if the last
    /// sequence is complete, or the tail is ill-formed in a way the full validation will catch).
    /// </summary>
    public static int IncompleteTailLength(ReadOnlySpan<byte> s)
    {
        for (var k = 1; k <= 3 && k <= s.Length; k++)
        {
            var b = s[^k];
            if (b < 0x80)
                return 0;
            if (b >= 0xC0)
            {
                var needed = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
                return needed > k ? k : 0;
            }
        }
        return 0;
    }

    private static ReadOnlySpan<byte> EfBf => [0xEF, 0xBF];

    /// <summary>
    /// Whether well-formed UTF-8 contains U+FFFE or U+FFFF (EF BF BE, EF BF BF), the only code points
    /// above U+007F that UTF-8 can carry but XML's Char production excludes.
    /// </summary>
    public static bool ContainsNonCharacterFffx(ReadOnlySpan<byte> utf8)
    {
        int at;
        while ((at = utf8.IndexOf(EfBf)) >= 0)
        {
            if (at + 2 < utf8.Length && utf8[at + 2] >= 0xBE)
                return true;
            utf8 = utf8[(at + 2)..];
        }
        return false;
    }

    /// <summary>XML 1.0 Char for a code point that arrived as a multi-byte UTF-8 sequence.</summary>
    public static bool IsCharNonAscii(int c) => c is not (0xFFFE or 0xFFFF);

    /// <summary>XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF].</summary>
    public static bool IsChar(int c)
        => c >= 0x20 ? c <= 0xD7FF || (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF)
                     : c is 0x9 or 0xA or 0xD;

    /// <summary>NameStartChar above U+007F (XML 1.0 fifth edition, production [4]).</summary>
    public static bool IsNameStartNonAscii(int c)
        => (c >= 0xC0 && c <= 0xD6) || (c >= 0xD8 && c <= 0xF6) || (c >= 0xF8 && c <= 0x2FF)
           || (c >= 0x370 && c <= 0x37D) || (c >= 0x37F && c <= 0x1FFF) || c is 0x200C or 0x200D
           || (c >= 0x2070 && c <= 0x218F) || (c >= 0x2C00 && c <= 0x2FEF) || (c >= 0x3001 && c <= 0xD7FF)
           || (c >= 0xF900 && c <= 0xFDCF) || (c >= 0xFDF0 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0xEFFFF);

    /// <summary>NameChar above U+007F (production [4a]).</summary>
    public static bool IsNameCharNonAscii(int c)
        => IsNameStartNonAscii(c) || c == 0xB7 || (c >= 0x300 && c <= 0x36F) || c is 0x203F or 0x2040;
}
