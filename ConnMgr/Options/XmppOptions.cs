namespace ConnMgr.Options;

/// <summary>Section <c>Xmpp</c>: the service as clients see it.</summary>
internal sealed class XmppOptions : SectionOptions
{
    internal const string Section = "Xmpp";

    internal override string? SectionName => Section;

    /// <summary>
    /// <c>Xmpp:Domain</c>: the XMPP domain served, the domain part of every user's
    /// JID. A lowercase DNS name (international names in their <c>xn--</c> form)
    /// or an IPv4 address. Default <c>localhost</c>.
    /// </summary>
    public string Domain { get; set; } = "localhost";
}

internal sealed class XmppOptionsValidator : SectionValidator<XmppOptions>
{
    protected override void Check(XmppOptions options, List<string> failures)
    {
        if (!DnsName.IsValid(options.Domain))
        {
            failures.Add($"{options.Key(nameof(XmppOptions.Domain))} must be a lowercase domain name: "
                + $"dot-separated labels of a-z, 0-9 and '-', each 1 to 63 characters, at most 253 in all (got \"{options.Domain}\")");
        }
    }
}
