using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Unicode;

namespace ConnMgr.Protocol;

/// <summary>
/// An XMPP address, <c>[localpart@]domainpart[/resourcepart]</c> (RFC 7622), held in prepared form:
/// two JIDs are equal exactly when their prepared parts are.
/// </summary>
/// <remarks>
/// <para>Preparation follows RFC 7622 section 3 with these approximations of PRECIS (RFC 8264, 8265),
/// which .NET does not implement:</para>
/// <list type="bullet">
/// <item>Localpart (UsernameCaseMapped): fullwidth/halfwidth forms mapped to their decompositions, then
/// lower-cased (invariant culture) and NFC-normalized. Allowed are printable ASCII except
/// <c>"&amp;'/:&lt;&gt;@</c> (RFC 7622 3.3.1), and non-ASCII letters, marks and decimal digits (by .NET's
/// Unicode categories, standing in for PRECIS's LetterDigits) that have no compatibility decomposition.
/// Not implemented: the Bidi rule (RFC 5893) and the contextual rules for joiners (ZWJ and ZWNJ are
/// rejected).</item>
/// <item>Domainpart: one trailing dot stripped, lower-cased; an IPv4 dotted quad, an <c>[IPv6]</c> literal, or a
/// name whose labels are 1..63 bytes of letters, digits, <c>-</c> and <c>_</c> in ASCII form (underscore is
/// tolerated as Openfire tolerates it). Non-ASCII names and <c>xn--</c> labels go through
/// <see cref="IdnMapping"/> (UTS #46 on ICU, standing in for IDNA2008) and are kept as U-labels.</item>
/// <item>Resourcepart (OpaqueString): non-ASCII spaces mapped to U+0020, NFC-normalized; control characters
/// (C0, DEL, C1) and U+FFFE/U+FFFF rejected. Other PRECIS FreeformClass exclusions (unassigned code
/// points, default-ignorables) are not checked.</item>
/// </list>
/// <para>Each part is 1 to 1023 bytes of UTF-8 after preparation (RFC 7622 3.1); a separator with an
/// empty part beside it (<c>@domain</c>, <c>domain/</c>) is invalid.</para>
/// </remarks>
public sealed class Jid : IEquatable<Jid>
{
    /// <summary>Longest part in bytes of UTF-8 (RFC 7622 section 3.1).</summary>
    public const int MaxPartLength = 1023;

    /// <summary>Longest DNS label in bytes (RFC 1035 section 2.3.4).</summary>
    private const int MaxLabelLength = 63;

    private static readonly IdnMapping s_idn = new() { AllowUnassigned = false, UseStd3AsciiRules = false };

    // Printable ASCII a localpart may not contain (RFC 7622 section 3.3.1).
    private static readonly SearchValues<char> s_localExcludedChars = SearchValues.Create("\"&'/:<>@");
    private static readonly SearchValues<byte> s_localExcludedBytes = SearchValues.Create("\"&'/:<>@"u8);

    private Jid? _bare;
    private string? _text;

    private Jid(string? local, string domain, string? resource)
    {
        Local = local;
        Domain = domain;
        Resource = resource;
    }

    /// <summary>The prepared localpart, or null.</summary>
    public string? Local { get; }

    /// <summary>The prepared domainpart (lower case, U-labels, no trailing dot).</summary>
    public string Domain { get; }

    /// <summary>The prepared resourcepart, or null.</summary>
    public string? Resource { get; }

    public bool IsBare => Resource is null;

    /// <summary>This JID without its resource (the same instance when it has none).</summary>
    public Jid Bare => IsBare ? this : _bare ??= new Jid(Local, Domain, null);

    /// <summary>The JID with another resource.</summary>
    /// <exception cref="FormatException"><paramref name="resource"/> is not a valid resourcepart.</exception>
    public Jid WithResource(string resource)
        => new(Local, Domain, PrepareResource(resource) ?? throw InvalidPart("resourcepart", resource));

    /// <summary>Builds a JID from separate parts, preparing each.</summary>
    /// <exception cref="FormatException">A part is invalid.</exception>
    public static Jid Create(string? local, string domain, string? resource = null)
    {
        var preparedLocal = local is null ? null : PrepareLocal(local) ?? throw InvalidPart("localpart", local);
        var preparedDomain = PrepareDomain(domain) ?? throw InvalidPart("domainpart", domain);
        var preparedResource = resource is null ? null : PrepareResource(resource) ?? throw InvalidPart("resourcepart", resource);
        return new Jid(preparedLocal, preparedDomain, preparedResource);
    }

    /// <exception cref="FormatException"><paramref name="text"/> is not a valid JID.</exception>
    public static Jid Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!TryParse(text, out var jid))
            throw new FormatException($"'{text}' is not a valid JID.");
        return jid;
    }

    /// <summary>Splits per RFC 7622 section 3.2 (resource from the first <c>/</c>, localpart up to the first
    /// <c>@</c> before it) and prepares each part.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, [NotNullWhen(true)] out Jid? jid)
    {
        jid = null;
        if (!TrySplit(text, out var local, out var domain, out var resource, out var hasLocal, out var hasResource))
            return false;
        string? preparedLocal = null, preparedResource = null;
        if (hasLocal && (preparedLocal = PrepareLocal(local)) is null)
            return false;
        var preparedDomain = PrepareDomain(domain);
        if (preparedDomain is null)
            return false;
        if (hasResource && (preparedResource = PrepareResource(resource)) is null)
            return false;
        jid = new Jid(preparedLocal, preparedDomain, preparedResource);
        return true;
    }

    /// <summary>Parses a JID from UTF-8, e.g. an unescaped attribute value; invalid UTF-8 is not a JID.</summary>
    public static bool TryParse(ReadOnlySpan<byte> utf8, [NotNullWhen(true)] out Jid? jid)
    {
        jid = null;
        if (!Utf8.IsValid(utf8))
            return false;
        char[]? rented = null;
        var chars = utf8.Length <= 256 ? stackalloc char[256] : (rented = ArrayPool<char>.Shared.Rent(utf8.Length));
        try
        {
            var count = Encoding.UTF8.GetChars(utf8, chars);
            return TryParse(chars[..count], out jid);
        }
        finally
        {
            if (rented is not null)
                ArrayPool<char>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// Whether UTF-8 text (unescaped) is a valid JID. Allocation-free for ASCII addresses, which is what
    /// the edge checks on every stanza's <c>to</c>; other input is fully parsed.
    /// </summary>
    public static bool IsValid(ReadOnlySpan<byte> utf8)
    {
        if (!Ascii.IsValid(utf8))
            return TryParse(utf8, out _);
        var slash = utf8.IndexOf((byte)'/');
        var head = slash < 0 ? utf8 : utf8[..slash];
        var at = head.IndexOf((byte)'@');
        if (at >= 0 && !IsValidAsciiLocal(head[..at]))
            return false;
        if (slash >= 0 && !IsValidAsciiResource(utf8[(slash + 1)..]))
            return false;
        var domain = head[(at + 1)..];
        if (domain.Length > 0 && domain[^1] == '.')
            domain = domain[..^1];
        return domain.Length > 0 && domain[0] != '['
            && domain.Length <= MaxPartLength && !ContainsAceLabel(domain)
            ? IsValidAsciiDomain(domain)
            : TryParse(utf8, out _);
    }

    public bool Equals(Jid? other)
        => other is not null
           && (ReferenceEquals(this, other)
               || (string.Equals(Local, other.Local, StringComparison.Ordinal)
                   && string.Equals(Domain, other.Domain, StringComparison.Ordinal)
                   && string.Equals(Resource, other.Resource, StringComparison.Ordinal)));

    public override bool Equals(object? obj) => Equals(obj as Jid);

    public override int GetHashCode()
        => HashCode.Combine(
            Local is null ? 0 : StringComparer.Ordinal.GetHashCode(Local),
            StringComparer.Ordinal.GetHashCode(Domain),
            Resource is null ? 0 : StringComparer.Ordinal.GetHashCode(Resource));

    public static bool operator ==(Jid? left, Jid? right) => left is null ? right is null : left.Equals(right);

    public static bool operator !=(Jid? left, Jid? right) => !(left == right);

    /// <summary><c>local@domain/resource</c>, built once.</summary>
    public override string ToString() => _text ??= (Local is null ? "" : Local + "@") + Domain + (Resource is null ? "" : "/" + Resource);

    // ---- splitting ------------------------------------------------------------------------

    private static bool TrySplit(
        ReadOnlySpan<char> text, out ReadOnlySpan<char> local, out ReadOnlySpan<char> domain, out ReadOnlySpan<char> resource,
        out bool hasLocal, out bool hasResource)
    {
        var slash = text.IndexOf('/');
        var head = slash < 0 ? text : text[..slash];
        var at = head.IndexOf('@');
        hasLocal = at >= 0;
        hasResource = slash >= 0;
        local = hasLocal ? head[..at] : default;
        domain = head[(at + 1)..];
        resource = hasResource ? text[(slash + 1)..] : default;
        return !domain.IsEmpty;
    }

    // ---- localpart ------------------------------------------------------------------------

    private static bool IsValidAsciiLocal(ReadOnlySpan<byte> local)
        => local.Length is > 0 and <= MaxPartLength
           && !local.ContainsAnyExceptInRange((byte)0x21, (byte)0x7E)
           && !local.ContainsAny(s_localExcludedBytes);

    /// <summary>The prepared localpart, or null when invalid.</summary>
    internal static string? PrepareLocal(ReadOnlySpan<char> local)
    {
        if (local.IsEmpty)
            return null;
        if (Ascii.IsValid(local))
        {
            if (local.Length > MaxPartLength || local.ContainsAnyExceptInRange('\x21', '\x7E') || local.ContainsAny(s_localExcludedChars))
                return null;
            Span<char> lower = stackalloc char[local.Length];
            Ascii.ToLower(local, lower, out _);
            return new string(lower);
        }

        if (!IsValidUtf16(local))
            return null;
        var prepared = MapWidth(local).ToLowerInvariant().Normalize(NormalizationForm.FormC);
        // A code point with a compatibility decomposition (PRECIS HasCompat) changes under NFKC.
        if (!prepared.IsNormalized(NormalizationForm.FormKC))
            return null;
        foreach (var rune in prepared.EnumerateRunes())
        {
            if (rune.IsAscii)
            {
                if (rune.Value is < 0x21 or > 0x7E || s_localExcludedChars.Contains((char)rune.Value))
                    return null;
                continue;
            }
            if (!IsLetterDigit(rune))
                return null;
        }
        return Encoding.UTF8.GetByteCount(prepared) <= MaxPartLength ? prepared : null;
    }

    /// <summary>PRECIS width mapping: fullwidth and halfwidth forms (U+FF00 to U+FFEF) to their decompositions.</summary>
    private static string MapWidth(ReadOnlySpan<char> text)
    {
        if (!text.ContainsAnyInRange('\uFF00', '\uFFEF'))
            return new string(text);
        var builder = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (c is >= '\uFF00' and <= '\uFFEF')
                builder.Append(c.ToString().Normalize(NormalizationForm.FormKC));
            else
                builder.Append(c);
        }
        return builder.ToString();
    }

    // ---- domainpart -----------------------------------------------------------------------

    /// <summary>The prepared domainpart, or null when invalid.</summary>
    internal static string? PrepareDomain(ReadOnlySpan<char> domain)
    {
        // RFC 7622 section 3.2: a trailing label separator is stripped before any other processing.
        if (domain.Length > 0 && domain[^1] == '.')
            domain = domain[..^1];
        if (domain.IsEmpty)
            return null;
        if (domain[0] == '[')
            return PrepareIPv6Literal(domain);
        if (Ascii.IsValid(domain) && !ContainsAceLabel(domain))
        {
            if (domain.Length > MaxPartLength)
                return null;
            Span<byte> ascii = stackalloc byte[domain.Length];
            Ascii.FromUtf16(domain, ascii, out _);
            if (!IsValidAsciiDomain(ascii))
                return null;
            Span<char> lower = stackalloc char[domain.Length];
            Ascii.ToLower(domain, lower, out _);
            return new string(lower);
        }

        if (!IsValidUtf16(domain))
            return null;
        try
        {
            var asciiForm = s_idn.GetAscii(new string(domain).ToLowerInvariant().Normalize(NormalizationForm.FormC));
            if (asciiForm.Length > MaxPartLength || !IsValidAsciiDomain(Encoding.ASCII.GetBytes(asciiForm)))
                return null;
            // RFC 7622 section 3.2.1: A-labels are converted to U-labels.
            var unicodeForm = s_idn.GetUnicode(asciiForm);
            return Encoding.UTF8.GetByteCount(unicodeForm) <= MaxPartLength && HasOnlyIdnaLetterDigits(unicodeForm) ? unicodeForm : null;
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    /// <summary>
    /// UTS #46 lets symbols and punctuation through (emoji, brackets) that IDNA2008 disallows (RFC 5892);
    /// keeping non-ASCII code points to letters, marks and digits rejects those.
    /// </summary>
    private static bool HasOnlyIdnaLetterDigits(string unicodeForm)
    {
        foreach (var rune in unicodeForm.EnumerateRunes())
        {
            if (!rune.IsAscii && !IsLetterDigit(rune))
                return false;
        }
        return true;
    }

    /// <summary>Approximates PRECIS LetterDigits (RFC 8264 section 9.1) with .NET's Unicode categories.</summary>
    private static bool IsLetterDigit(Rune rune) => Rune.GetUnicodeCategory(rune) switch
    {
        UnicodeCategory.LowercaseLetter or UnicodeCategory.UppercaseLetter or UnicodeCategory.ModifierLetter
            or UnicodeCategory.OtherLetter or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark
            or UnicodeCategory.DecimalDigitNumber => true,
        _ => false,
    };

    /// <summary>ASCII labels of letters, digits, '-' and '_', 1..63 bytes each; all-numeric means an IPv4 dotted quad.</summary>
    private static bool IsValidAsciiDomain(ReadOnlySpan<byte> domain)
    {
        if (domain.Length is 0 or > MaxPartLength)
            return false;
        if (!domain.ContainsAnyExcept("0123456789."u8))
            return IsDottedQuad(domain);
        foreach (var range in domain.Split((byte)'.'))
        {
            var label = domain[range];
            if (label.Length is 0 or > MaxLabelLength)
                return false;
            foreach (var b in label)
            {
                if (!(char.IsAsciiLetterOrDigit((char)b) || b is (byte)'-' or (byte)'_'))
                    return false;
            }
        }
        return true;
    }

    /// <summary>Four decimal octets 0..255 without leading zeros (RFC 3986 IPv4address).</summary>
    private static bool IsDottedQuad(ReadOnlySpan<byte> text)
    {
        var octets = 0;
        foreach (var range in text.Split((byte)'.'))
        {
            var octet = text[range];
            if (++octets > 4 || octet.Length is 0 or > 3 || (octet.Length > 1 && octet[0] == '0'))
                return false;
            var value = 0;
            foreach (var d in octet)
                value = value * 10 + (d - '0');
            if (value > 255)
                return false;
        }
        return octets == 4;
    }

    private static string? PrepareIPv6Literal(ReadOnlySpan<char> domain)
    {
        // RFC 7622 3.2 takes IP-literal from RFC 3986 without IPvFuture; zone identifiers have no place in an address.
        if (domain.Length < 4 || domain[^1] != ']' || domain.Contains('%'))
            return null;
        var inner = domain[1..^1];
        if (!IPAddress.TryParse(inner, out var address) || address.AddressFamily != AddressFamily.InterNetworkV6)
            return null;
        return "[" + address + "]";
    }

    private static bool ContainsAceLabel(ReadOnlySpan<char> domain)
    {
        foreach (var range in domain.Split('.'))
        {
            if (domain[range].StartsWith("xn--", StringComparison.OrdinalIgnoreCase))
                return true;
        }
        return false;
    }

    private static bool ContainsAceLabel(ReadOnlySpan<byte> domain)
    {
        foreach (var range in domain.Split((byte)'.'))
        {
            var label = domain[range];
            if (label.Length >= 4 && (label[0] | 0x20) == 'x' && (label[1] | 0x20) == 'n' && label[2] == '-' && label[3] == '-')
                return true;
        }
        return false;
    }

    // ---- resourcepart ---------------------------------------------------------------------

    private static bool IsValidAsciiResource(ReadOnlySpan<byte> resource)
        => resource.Length is > 0 and <= MaxPartLength && !resource.ContainsAnyExceptInRange((byte)0x20, (byte)0x7E);

    /// <summary>The prepared resourcepart, or null when invalid.</summary>
    internal static string? PrepareResource(ReadOnlySpan<char> resource)
    {
        if (resource.IsEmpty)
            return null;
        if (Ascii.IsValid(resource))
        {
            return resource.Length <= MaxPartLength && !resource.ContainsAnyExceptInRange('\x20', '\x7E')
                ? new string(resource)
                : null;
        }

        if (!IsValidUtf16(resource))
            return null;
        // OpaqueString additional mapping: non-ASCII spaces (Zs) become U+0020 (RFC 8265 section 4.2.1).
        var mapped = new StringBuilder(resource.Length);
        foreach (var rune in resource.EnumerateRunes())
        {
            if (Rune.IsControl(rune) || rune.Value is 0xFFFE or 0xFFFF)
                return null;
            if (!rune.IsAscii && Rune.GetUnicodeCategory(rune) == UnicodeCategory.SpaceSeparator)
                mapped.Append(' ');
            else
                mapped.Append(rune.ToString());
        }
        var prepared = mapped.ToString().Normalize(NormalizationForm.FormC);
        return Encoding.UTF8.GetByteCount(prepared) <= MaxPartLength ? prepared : null;
    }

    // ---- shared ---------------------------------------------------------------------------

    /// <summary>No lone surrogates, which <see cref="string.Normalize()"/> would reject with an exception.</summary>
    private static bool IsValidUtf16(ReadOnlySpan<char> text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]))
            {
                if (i + 1 >= text.Length || !char.IsLowSurrogate(text[i + 1]))
                    return false;
                i++;
            }
            else if (char.IsLowSurrogate(text[i]))
            {
                return false;
            }
        }
        return true;
    }

    private static FormatException InvalidPart(string part, string value) => new($"'{value}' is not a valid JID {part}.");
}
