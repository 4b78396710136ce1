using System.Buffers;
using System.Text;

namespace ConnMgr.Protocol.Xml.Scanning;

/// <summary>
/// Turns an attribute value the scanner has already validated into its XML value: references replaced,
/// then whitespace normalized as XML 1.0 2.11 and 3.3.3 require for an undeclared (CDATA) attribute
/// (CR LF, CR, LF and TAB each become one space; characters written as references stay as they are).
/// Used for namespace URIs and stream header attributes only; relayed stanzas are never decoded.
/// </summary>
internal static class XmlAttributeValue
{
    private static readonly SearchValues<byte> s_needsDecoding = SearchValues.Create("&\t\n\r"u8);

    public static bool NeedsDecoding(ReadOnlySpan<byte> raw) => raw.ContainsAny(s_needsDecoding);

    /// <summary>Decodes <paramref name="raw"/>; the result is never longer than the input.</summary>
    public static int Decode(ReadOnlySpan<byte> raw, Span<byte> destination)
    {
        var written = 0;
        var i = 0;
        while (i < raw.Length)
        {
            var b = raw[i];
            if (b == (byte)'&')
            {
                var length = raw[i..].IndexOf((byte)';');
                var name = raw.Slice(i + 1, length - 1);
                i += length + 1;
                if (name[0] == (byte)'#')
                    written += new Rune(CharacterReference(name[1..])).EncodeToUtf8(destination[written..]);
                else
                    destination[written++] = PredefinedEntity(name);
                continue;
            }
            if (b == (byte)'\r')
            {
                destination[written++] = (byte)' ';
                i += i + 1 < raw.Length && raw[i + 1] == (byte)'\n' ? 2 : 1;
                continue;
            }
            destination[written++] = b is (byte)'\t' or (byte)'\n' ? (byte)' ' : b;
            i++;
        }
        return written;
    }

    /// <summary>The value of the digits of <c>&amp;#NNN;</c> or <c>&amp;#xHHH;</c> (already checked to be an XML Char).</summary>
    private static int CharacterReference(ReadOnlySpan<byte> digits)
    {
        var value = 0;
        if (digits[0] == (byte)'x')
        {
            foreach (var d in digits[1..])
                value = value * 16 + HexValue(d);
        }
        else
        {
            foreach (var d in digits)
                value = value * 10 + (d - '0');
        }
        return value;
    }

    public static int HexValue(byte d) => d <= '9' ? d - '0' : (d | 0x20) - 'a' + 10;

    /// <summary>The character of one of the five predefined entities, or 0 if the name is not one of them.</summary>
    public static byte PredefinedEntity(ReadOnlySpan<byte> name)
    {
        if (name.SequenceEqual("lt"u8)) return (byte)'<';
        if (name.SequenceEqual("gt"u8)) return (byte)'>';
        if (name.SequenceEqual("amp"u8)) return (byte)'&';
        if (name.SequenceEqual("quot"u8)) return (byte)'"';
        if (name.SequenceEqual("apos"u8)) return (byte)'\'';
        return 0;
    }
}
