namespace ConnMgr.Options;

/// <summary>Syntax of host names as RFC 1123 section 2.1 restricts them, lowercase only.</summary>
internal static class DnsName
{
    // RFC 1035 section 2.3.4: 63 octets per label, 255 on the wire, i.e. 253 in dotted text.
    private const int MaxLabelLength = 63;
    private const int MaxNameLength = 253;

    /// <summary>
    /// True for a name such as <c>chat.example.com</c>. Uppercase is refused rather
    /// than folded: a JID domain is compared after case folding, but the same
    /// name also ends up in certificate names and file names, where a second
    /// spelling only causes confusion.
    /// </summary>
    public static bool IsValid(string name)
    {
        if (name.Length == 0 || name.Length > MaxNameLength)
        {
            return false;
        }
        foreach (Range range in name.AsSpan().Split('.'))
        {
            ReadOnlySpan<char> label = name.AsSpan()[range];
            if (label.Length == 0 || label.Length > MaxLabelLength || label[0] == '-' || label[^1] == '-')
            {
                return false;
            }
            foreach (char c in label)
            {
                if (!char.IsAsciiLetterLower(c) && !char.IsAsciiDigit(c) && c != '-')
                {
                    return false;
                }
            }
        }
        return true;
    }
}
