namespace ConnMgr.Options;

/// <summary>Section <c>Upstream</c>: the edge's links to the core (Openfire or the embedded core).</summary>
internal sealed class UpstreamOptions : SectionOptions
{
    internal const string Section = "Upstream";

    internal override string? SectionName => Section;

    /// <summary><c>Upstream:Host</c>: host name or IP address of the core's link listener. Default <c>127.0.0.1</c>.</summary>
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>
    /// <c>Upstream:Port</c>: the core's link listener port (Openfire:
    /// <c>xmpp.multiplex.socket.port</c>, spec section 2). Default <c>5262</c>.
    /// </summary>
    public int Port { get; set; } = 5262;

    /// <summary>
    /// <c>Upstream:Secret</c>: the shared secret of the link handshake (Openfire:
    /// <c>xmpp.multiplex.defaultSecret</c>, spec section 3.6); printable ASCII,
    /// since Openfire hashes the platform encoding of it. Required when
    /// <c>Core:Enabled</c> is false. Default unset: with the embedded core, a
    /// random secret is generated once into <c>DataDirectory/link-secret</c>.
    /// </summary>
    public string? Secret { get; set; }

    /// <summary>
    /// <c>Upstream:Links</c>: number of links kept open to the core; each client is
    /// pinned to one of them. Default <c>4</c>; 1 to 64.
    /// </summary>
    public int Links { get; set; } = 4;

    /// <summary>
    /// <c>Upstream:KeepaliveSeconds</c>: seconds between whitespace keepalives sent
    /// on an otherwise quiet link. Default <c>30</c>, as Openfire and Jive's
    /// connection manager do (spec section 8.3); 1 to 120, well inside Openfire's
    /// 150-second read-idle check.
    /// </summary>
    public int KeepaliveSeconds { get; set; } = 30;

    /// <summary>
    /// <c>Upstream:DeadAfterSeconds</c>: seconds without a byte from the core after
    /// which a link is declared dead and replaced. The core sends a keepalive
    /// every 30 s (spec section 8.3). Default <c>90</c>; 60 to 3600.
    /// </summary>
    public int DeadAfterSeconds { get; set; } = 90;
}

internal sealed class UpstreamOptionsValidator(UnvalidatedOptions<CoreOptions> core, UnvalidatedOptions<EdgeOptions> edge)
    : SectionValidator<UpstreamOptions>
{
    protected override void Check(UpstreamOptions o, List<string> failures)
    {
        if (Uri.CheckHostName(o.Host) is not (UriHostNameType.Dns or UriHostNameType.IPv4 or UriHostNameType.IPv6))
        {
            failures.Add($"{o.Key(nameof(o.Host))} must be a host name or an IP address (got \"{o.Host}\")");
        }
        Port(failures, o, nameof(o.Port), o.Port);
        Range(failures, o, nameof(o.Links), o.Links, 1, 64);
        Range(failures, o, nameof(o.KeepaliveSeconds), o.KeepaliveSeconds, 1, 120);
        Range(failures, o, nameof(o.DeadAfterSeconds), o.DeadAfterSeconds, 60, 3600);

        string secretKey = o.Key(nameof(o.Secret));
        if (string.IsNullOrEmpty(o.Secret))
        {
            CoreOptions coreOptions = core.Create();
            if (!coreOptions.Enabled && edge.Create().Enabled)
            {
                failures.Add($"{secretKey} is required when {coreOptions.Key(nameof(coreOptions.Enabled))} is false "
                    + "(use the core's xmpp.multiplex.defaultSecret)");
            }
        }
        else if (!IsPrintableAscii(o.Secret))
        {
            failures.Add($"{secretKey} must be printable ASCII (characters 0x20 to 0x7E)");
        }
    }

    private static bool IsPrintableAscii(string value)
    {
        foreach (char c in value)
        {
            if (c < 0x20 || c > 0x7E)
            {
                return false;
            }
        }
        return true;
    }
}
