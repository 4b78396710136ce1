using System.Buffers;
using System.Runtime.CompilerServices;

namespace ConnMgr.Protocol.Xml.Scanning;

/// <summary>
/// Character classes of XML 1.0 (fifth edition) over UTF-8 bytes, and a strict UTF-8 decoder
/// (Unicode table 3-7: no overlongs, no surrogates, nothing above U+10FFFF).
/// </summary>
internal static class XmlChars
{
    /// <summary>ASCII letters and <c>_</c>: NameStartChar without <c>:</c> (the scanner handles QName colons itself).</summary>
    public const byte NameStart = 1;

    /// <summary>NameStart plus digits, <c>-</c> and <c>.</c>: NameChar without <c>:</c>.</summary>
    public const byte NameChar = 2;

    /// <summary>XML's S production: space, tab, CR, LF.</summary>
    public const byte Space = 4;

    /// <summary>Class bits of each ASCII byte.</summary>
    public static ReadOnlySpan<byte> AsciiClass =>
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 0, 0, 4, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 0,
        2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0,
        0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
        3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 0, 3,
        0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
        3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 0, 0,    ];

    public static readonly SearchValues<byte> Whitespace = SearchValues.Create(" \t\r\n"u8);

    // "Plain" bytes need no attention in a state: printable ASCII (0x20-0x7F; DEL is an XML Char) and
    // tab/CR/LF, minus the state's delimiters. "Special" bytes are the ASCII bytes that are not plain,
    // i.e. the delimiters and the C0 controls XML 1.0 forbids. Bytes >= 0x80 are in neither set: a run
    // of them is validated as UTF-8 up to the next special byte.
    public static readonly SearchValues<byte> TextPlain = Plain("<&]"u8);
    public static readonly SearchValues<byte> TextSpecial = Special("<&]"u8);
    public static readonly SearchValues<byte> CdataPlain = Plain("]"u8);
    public static readonly SearchValues<byte> CdataSpecial = Special("]"u8);
    public static readonly SearchValues<byte> DoubleQuotedPlain = Plain("<&\""u8);
    public static readonly SearchValues<byte> DoubleQuotedSpecial = Special("<&\""u8);
    public static readonly SearchValues<byte> SingleQuotedPlain = Plain("<&'"u8);
    public static readonly SearchValues<byte> SingleQuotedSpecial = Special("<&'"u8);

    private static SearchValues<byte> Plain(ReadOnlySpan<byte> delimiters)
    {
        var bytes = new List<byte>(128);
        for (var b = 0; b < 0x80; b++)
        {
            if (IsPlainAscii((byte)b, delimiters))
                bytes.Add((byte)b);
        }
        return SearchValues.Create(bytes.ToArray());
    }

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
    public static bool IsSpace(byte b) => b <= 0x20 && (AsciiClass[b] & Space) != 0;

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
