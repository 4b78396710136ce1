using System.Net;
using ConnMgr.Protocol.Link;

namespace ConnMgr.Options;

/// <summary>Section <c>Edge</c>: the connection manager facing clients.</summary>
internal sealed class EdgeOptions : SectionOptions
{
    internal const string Section = "Edge";

    // Openfire closes the whole link on a top-level element over
    // xmpp.parser.buffer.size = 1 048 576 characters (spec section 2), and that
    // element is the <route> envelope around the client's stanza. The envelope
    // (three JIDs of at most 3071 bytes each, RFC 7622 section 3.1, a stream id
    // and namespace declarations) stays far below the 48 576 left over here.
    internal const int MaxStanzaBytesLimit = 1_000_000;

    // Jive's connection manager cut a client whose pending output exceeded
    // session.stalled.cap = 5 242 880 bytes (spec section 9.2).
    internal const int DefaultMaxPendingOutputBytes = 5_242_880;

    // A client must be able to receive at least one stanza of the largest size
    // the core accepts (1 MiB, spec section 2) without being cut as stalled.
    internal const int MinPendingOutputBytes = 1_048_576;

    internal override string? SectionName => Section;

    /// <summary><c>Edge:Enabled</c>: run the connection manager in this process. Default <c>true</c>.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// <c>Edge:Name</c>: this connection manager's name on the upstream links;
    /// link N presents itself as <c>NAME/link-N</c> (spec section 3.2). Characters
    /// <c>a-z 0-9 . -</c> only, 1 to 40 of them in host-name labels, unique among the edges of one
    /// core. Default: this machine's host name, lowercased, other characters
    /// dropped (<c>connmgr</c> if nothing is left).
    /// </summary>
    public string Name { get; set; } = EdgeName.FromHostName(Dns.GetHostName());

    /// <summary>
    /// <c>Edge:ListenAddress</c>: the local address every client listener binds
    /// (c2s, Direct TLS, HTTP). Default <c>::</c>, every IPv6 and IPv4 address;
    /// use <c>0.0.0.0</c> on a host with IPv6 turned off.
    /// </summary>
    public string ListenAddress { get; set; } = "::";

    /// <summary><c>Edge:ClientPort</c>: TCP port for client streams with STARTTLS (RFC 6120). Default <c>5222</c>.</summary>
    public int ClientPort { get; set; } = 5222;

    /// <summary><c>Edge:DirectTlsPort</c>: TCP port for Direct TLS client streams (XEP-0368). Default <c>5223</c>; <c>0</c> = off.</summary>
    public int DirectTlsPort { get; set; } = 5223;

    /// <summary>
    /// <c>Edge:HttpPort</c>: plain HTTP port serving WebSocket (RFC 7395), BOSH
    /// (XEP-0124/0206), <c>/metrics</c> and <c>/health</c>. Default <c>5280</c>; <c>0</c> = off.
    /// </summary>
    public int HttpPort { get; set; } = 5280;

    /// <summary>
    /// <c>Edge:HttpsPort</c>: HTTPS port serving the same routes as <see cref="HttpPort"/> with the
    /// client TLS certificate (<c>Tls:*</c>), for browsers that connect directly; web sessions on it
    /// count as encrypted. Default <c>0</c> = off (5281 is the usual choice).
    /// </summary>
    public int HttpsPort { get; set; }

    /// <summary>
    /// <c>Edge:MaxStanzaBytes</c>: largest top-level element a client may send, in
    /// bytes; a larger one ends the stream with <c>policy-violation</c>. Default
    /// <c>262144</c> (256 KiB, Prosody's c2s limit); 1024 to 1000000, staying
    /// under Openfire's 1 MiB per routed element.
    /// </summary>
    public int MaxStanzaBytes { get; set; } = 262_144;

    /// <summary>
    /// <c>Edge:NegotiationTimeoutSeconds</c>: seconds a client has from connecting
    /// to a bound resource (TLS, SASL, bind); then <c>connection-timeout</c>.
    /// Default <c>60</c>; 1 to 3600.
    /// </summary>
    public int NegotiationTimeoutSeconds { get; set; } = 60;

    /// <summary>
    /// <c>Edge:IdleTimeoutSeconds</c>: seconds of silence from an established client
    /// after which the edge pings it (XEP-0199); a client that still sends nothing
    /// is closed with <c>connection-timeout</c>. Default <c>300</c>, below the
    /// idle timeouts of common NAT gateways and mobile networks; 10 to 86400, or
    /// <c>0</c> = never.
    /// </summary>
    public int IdleTimeoutSeconds { get; set; } = 300;

    /// <summary>
    /// <c>Edge:MaxConnections</c>: client connections open at once, all transports
    /// together; further connections are refused. Default <c>100000</c>; 1 to
    /// 10000000. Each takes a file descriptor: keep it under the process limit
    /// (<c>LimitNOFILE</c>).
    /// </summary>
    public int MaxConnections { get; set; } = 100_000;

    /// <summary>
    /// <c>Edge:MaxUnauthenticatedPerIp</c>: connections from one client address
    /// still negotiating (not yet authenticated) at once; more are refused.
    /// Default <c>100</c>; <c>0</c> = no limit.
    /// </summary>
    public int MaxUnauthenticatedPerIp { get; set; } = 100;

    /// <summary>
    /// <c>Edge:ClientRateBytesPerSecond</c>: sustained input rate allowed per client,
    /// in bytes per second; a faster client is read more slowly, not cut. Bursts
    /// up to <see cref="MaxStanzaBytes"/> pass at once. Default <c>65536</c>;
    /// 1024 or more, or <c>0</c> = no limit.
    /// </summary>
    public int ClientRateBytesPerSecond { get; set; } = 65_536;

    /// <summary>
    /// <c>Edge:MaxPendingOutputBytes</c>: bytes waiting to be written to one
    /// client; a client that lets more pile up is closed so that it cannot stall
    /// the shared upstream link. Default <c>5242880</c> (5 MiB, spec section 9.2);
    /// 1048576 to 1073741824.
    /// </summary>
    public int MaxPendingOutputBytes { get; set; } = DefaultMaxPendingOutputBytes;

    /// <summary>
    /// <c>Edge:ProxyProtocol</c>: expect a PROXY protocol header (HAProxy, v1 or v2)
    /// at the start of every client TCP connection and use the client address it
    /// carries for limits and logs. Only behind a proxy that always sends it.
    /// Default <c>false</c>.
    /// </summary>
    public bool ProxyProtocol { get; set; }

    /// <summary>
    /// <c>Edge:ShutdownDrainSeconds</c>: on shutdown, seconds given to clients to
    /// receive what is queued for them after the edge stops accepting and closes
    /// their streams; connections still open then are aborted. Default <c>10</c>;
    /// 0 to 300.
    /// </summary>
    public int ShutdownDrainSeconds { get; set; } = 10;

    /// <summary>
    /// <c>Edge:HttpAllowedOrigins</c>: browser origins allowed to open a WebSocket
    /// or BOSH session on <see cref="HttpPort"/>, comma-separated, each a scheme
    /// and host with an optional port (<c>https://chat.example.com</c>). A
    /// browser page from another origin gets 403; a client that sends no
    /// <c>Origin</c> (not a browser) is always allowed. Default empty = any origin.
    /// </summary>
    public string HttpAllowedOrigins { get; set; } = "";

    /// <summary>
    /// <c>Edge:HttpCountsAsEncrypted</c>: web sessions on the plain
    /// <see cref="HttpPort"/> count as encrypted (login allowed where TLS is
    /// required) from any client address, for a TLS-terminating proxy on another
    /// host. Default <c>false</c>: only sessions from loopback (a proxy on this
    /// host) count as encrypted.
    /// </summary>
    public bool HttpCountsAsEncrypted { get; set; }

    /// <summary><see cref="HttpAllowedOrigins"/> as a list (empty = any origin).</summary>
    internal IReadOnlyList<string> AllowedOriginList =>
        HttpAllowedOrigins.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}

internal sealed class EdgeOptionsValidator(UnvalidatedOptions<CoreOptions> core) : SectionValidator<EdgeOptions>
{
    protected override void Check(EdgeOptions o, List<string> failures)
    {
        if (!EdgeName.IsValid(o.Name))
        {
            failures.Add($"{o.Key(nameof(o.Name))} must be 1 to {StreamIdGenerator.MaxCmNameLength} characters of a-z, 0-9, '.' and '-', in dot-separated labels that neither are empty nor start or end with '-' (got \"{o.Name}\")");
        }
        IpAddress(failures, o, nameof(o.ListenAddress), o.ListenAddress);
        Port(failures, o, nameof(o.ClientPort), o.ClientPort);
        OptionalPort(failures, o, nameof(o.DirectTlsPort), o.DirectTlsPort);
        OptionalPort(failures, o, nameof(o.HttpPort), o.HttpPort);
        OptionalPort(failures, o, nameof(o.HttpsPort), o.HttpsPort);
        Range(failures, o, nameof(o.MaxStanzaBytes), o.MaxStanzaBytes, 1024, EdgeOptions.MaxStanzaBytesLimit);
        Range(failures, o, nameof(o.NegotiationTimeoutSeconds), o.NegotiationTimeoutSeconds, 1, 3600);
        if (o.IdleTimeoutSeconds != 0 && (o.IdleTimeoutSeconds < 10 || o.IdleTimeoutSeconds > 86_400))
        {
            failures.Add($"{o.Key(nameof(o.IdleTimeoutSeconds))} must be between 10 and 86400, or 0 for never (got {o.IdleTimeoutSeconds})");
        }
        Range(failures, o, nameof(o.MaxConnections), o.MaxConnections, 1, 10_000_000);
        Range(failures, o, nameof(o.MaxUnauthenticatedPerIp), o.MaxUnauthenticatedPerIp, 0, 10_000_000);
        if (o.ClientRateBytesPerSecond != 0 && o.ClientRateBytesPerSecond < 1024)
        {
            failures.Add($"{o.Key(nameof(o.ClientRateBytesPerSecond))} must be at least 1024, or 0 for no limit (got {o.ClientRateBytesPerSecond})");
        }
        Range(failures, o, nameof(o.MaxPendingOutputBytes), o.MaxPendingOutputBytes, EdgeOptions.MinPendingOutputBytes, 1 << 30);
        Range(failures, o, nameof(o.ShutdownDrainSeconds), o.ShutdownDrainSeconds, 0, 300);
        foreach (string origin in o.AllowedOriginList)
        {
            if (!IsOrigin(origin))
            {
                failures.Add($"{o.Key(nameof(o.HttpAllowedOrigins))} must list origins such as https://chat.example.com, separated by commas (got \"{origin}\")");
            }
        }

        if (o.Enabled)
        {
            CheckPortClashes(o, failures);
        }
    }

    /// <summary>An origin as browsers send it (RFC 6454 6.1): http or https, a host, an optional port, no path.</summary>
    private static bool IsOrigin(string origin) =>
        Uri.TryCreate(origin, UriKind.Absolute, out Uri? uri)
        && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
        && uri.AbsolutePath == "/" && !origin.EndsWith('/') && uri.Query.Length == 0 && uri.UserInfo.Length == 0;

    private void CheckPortClashes(EdgeOptions o, List<string> failures)
    {
        var ports = new List<(string Key, int Port)> { (o.Key(nameof(o.ClientPort)), o.ClientPort) };
        if (o.DirectTlsPort != 0)
        {
            ports.Add((o.Key(nameof(o.DirectTlsPort)), o.DirectTlsPort));
        }
        if (o.HttpPort != 0)
        {
            ports.Add((o.Key(nameof(o.HttpPort)), o.HttpPort));
        }
        if (o.HttpsPort != 0)
        {
            ports.Add((o.Key(nameof(o.HttpsPort)), o.HttpsPort));
        }
        CoreOptions coreOptions = core.Create();
        if (coreOptions.Enabled)
        {
            // The core listens on loopback by default and the edge on every
            // address, which includes loopback: one port cannot serve both.
            ports.Add((coreOptions.Key(nameof(coreOptions.Port)), coreOptions.Port));
        }
        for (int i = 0; i < ports.Count; i++)
        {
            for (int j = i + 1; j < ports.Count; j++)
            {
                if (ports[i].Port == ports[j].Port)
                {
                    failures.Add($"{ports[j].Key} must differ from {ports[i].Key} (both are {ports[i].Port})");
                }
            }
        }
    }
}

/// <summary>The default and the syntax of <see cref="EdgeOptions.Name"/>.</summary>
/// <remarks>
/// The name is the domain of the link JID and the prefix of every stream ID the edge makes, so it
/// follows <see cref="StreamIdGenerator.IsValidCmName"/>: at most
/// <see cref="StreamIdGenerator.MaxCmNameLength"/> characters of <c>[a-z0-9.-]</c> in host-name labels
/// (spec 3.2, 5.1). A name checked here cannot fail later when the first link starts.
/// </remarks>
internal static class EdgeName
{
    private const string Fallback = "connmgr";

    public static bool IsValid(string name) => StreamIdGenerator.IsValidCmName(name);

    /// <summary>
    /// The default: the host name lower-cased, without the characters a CM name cannot hold. A fully
    /// qualified name too long for the limit keeps its leading labels (the host's own name comes first).
    /// </summary>
    public static string FromHostName(string hostName)
    {
        var labels = new List<string>();
        int length = 0;
        foreach (string rawLabel in hostName.ToLowerInvariant().Split('.'))
        {
            var label = new System.Text.StringBuilder(rawLabel.Length);
            foreach (char c in rawLabel)
            {
                if (char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-')
                {
                    label.Append(c);
                }
            }
            string cleaned = label.ToString().Trim('-');
            if (cleaned.Length == 0)
            {
                continue;
            }
            int added = labels.Count == 0 ? cleaned.Length : cleaned.Length + 1;
            if (length + added > StreamIdGenerator.MaxCmNameLength)
            {
                if (labels.Count == 0)
                {
                    labels.Add(cleaned[..StreamIdGenerator.MaxCmNameLength].TrimEnd('-'));
                }
                break;
            }
            labels.Add(cleaned);
            length += added;
        }
        string result = string.Join('.', labels);
        return StreamIdGenerator.IsValidCmName(result) ? result : Fallback;
    }
}
