using System.Text;

namespace ConnMgr.Protocol.Xml.Scanning;

/// <summary>
/// Checks the pseudo-attributes of an XML declaration (XML 1.0 production [23]):
/// <c>version</c>, then optionally <c>encoding</c>, then optionally <c>standalone</c>.
/// </summary>
internal static class XmlDeclaration
{
    /// <param name="inner">The bytes between <c>&lt;?xml</c> and <c>?&gt;</c>.</param>
    public static StreamErrorCondition Check(ReadOnlySpan<byte> inner, out string? error)
    {
        error = null;
        var rest = inner;
        if (Take(ref rest, "version"u8, out var version) != 1 || !IsVersionNumber(version))
            return Malformed(out error);

        switch (Take(ref rest, "encoding"u8, out var encoding))
        {
            case -1:
                return Malformed(out error);
            case 1 when !IsEncodingName(encoding):
                return Malformed(out error);
            case 1 when !Ascii.EqualsIgnoreCase(encoding, "UTF-8"u8):
                // RFC 6120 11.6: UTF-8 is the only encoding an XMPP stream may use.
                error = "the stream must be encoded in UTF-8 (RFC 6120 11.6)";
                return StreamErrorCondition.UnsupportedEncoding;
        }

        switch (Take(ref rest, "standalone"u8, out var standalone))
        {
            case -1:
                return Malformed(out error);
            case 1 when !standalone.SequenceEqual("yes"u8) && !standalone.SequenceEqual("no"u8):
                return Malformed(out error);
        }

        if (!rest.TrimStart(" \t\r\n"u8).IsEmpty)
            return Malformed(out error);
        return StreamErrorCondition.None;
    }

    private static StreamErrorCondition Malformed(out string error)
    {
        error = "malformed XML declaration";
        return StreamErrorCondition.NotWellFormed;
    }

    /// <summary>
    /// Takes <c>S name Eq quoted-value</c> from the start of <paramref name="rest"/>.
    /// Returns 1 if taken, 0 if the next pseudo-attribute is not <paramref name="name"/> (nothing taken),
    /// -1 if it is but is malformed.
    /// </summary>
    private static int Take(ref ReadOnlySpan<byte> rest, ReadOnlySpan<byte> name, out ReadOnlySpan<byte> value)
    {
        value = default;
        var p = rest.TrimStart(" \t\r\n"u8);
        if (p.Length == rest.Length || !p.StartsWith(name))
            return 0;
        p = p[name.Length..].TrimStart(" \t\r\n"u8);
        if (p.IsEmpty || p[0] != (byte)'=')
            return -1;
        p = p[1..].TrimStart(" \t\r\n"u8);
        if (p.IsEmpty || p[0] is not ((byte)'"' or (byte)'\''))
            return -1;
        var close = p[1..].IndexOf(p[0]);
        if (close < 0)
            return -1;
        value = p.Slice(1, close);
        rest = p[(close + 2)..];
        return 1;
    }

    /// <summary>VersionNum ::= '1.' [0-9]+ (production [26]).</summary>
    private static bool IsVersionNumber(ReadOnlySpan<byte> v)
        => v.Length > 2 && v[0] == (byte)'1' && v[1] == (byte)'.' && !v[2..].ContainsAnyExceptInRange((byte)'0', (byte)'9');

    /// <summary>EncName ::= [A-Za-z] ([A-Za-z0-9._] | '-')* (production [81]).</summary>
    private static bool IsEncodingName(ReadOnlySpan<byte> e)
    {
        if (e.IsEmpty || !char.IsAsciiLetter((char)e[0]))
            return false;
        foreach (var c in e[1..])
        {
            if (!char.IsAsciiLetterOrDigit((char)c) && c is not ((byte)'.' or (byte)'_' or (byte)'-'))
                return false;
        }
        return true;
    }
}
