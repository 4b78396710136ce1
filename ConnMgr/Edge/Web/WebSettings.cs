namespace ConnMgr.Edge.Web;

/// <summary>
/// Settings of the web transports on <c>Edge:HttpPort</c>, filled from the <c>Edge:*</c> options
/// by the composition root; tests shorten the times. Units are in the names.
/// </summary>
internal sealed record WebSettings
{
    /// <summary>The XMPP domain (<c>Xmpp:Domain</c>), for XEP-0156 discovery and BOSH's <c>to</c>.</summary>
    public required string Domain { get; init; }

    /// <summary><c>Edge:MaxStanzaBytes</c>: the stream layer's limit, which also bounds a web message.</summary>
    public int MaxStanzaBytes { get; init; } = 256 * 1024;

    /// <summary><c>Edge:MaxPendingOutputBytes</c>: output held for one web session before it is cut.</summary>
    public long MaxPendingOutputBytes { get; init; } = 5 * 1024 * 1024;

    /// <summary>
    /// <c>Edge:HttpAllowedOrigins</c>: browser origins (<c>https://chat.example.com</c>) allowed to
    /// open a web session; empty = any. A request without an <c>Origin</c> header (not a
    /// browser) is always allowed: the check protects users' browsers, not the server.
    /// </summary>
    public IReadOnlyList<string> AllowedOrigins { get; init; } = [];

    /// <summary>
    /// <c>Edge:HttpTrustForwarded</c>: web sessions on the plain HTTP port count as encrypted from
    /// any address (a TLS-terminating proxy on another host). When false only loopback clients
    /// (a proxy on this host) do.
    /// </summary>
    public bool TrustAllAsSecure { get; init; }

    /// <summary>Time a closing session gets to send its last messages before it is cut.</summary>
    public TimeSpan CloseTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Longest a BOSH request is held waiting for data (the client's <c>wait</c> is capped to it).
    /// 60 s: XEP-0124's example value, under the idle timeouts of common HTTP proxies (90-120 s).
    /// </summary>
    public TimeSpan BoshMaxWait { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// A BOSH session with no request open for this long is ended (XEP-0124 7.1 <c>inactivity</c>).
    /// 60 s: a client between two polls has at most a round trip of silence; this allows a slow one.
    /// </summary>
    public TimeSpan BoshInactivity { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Longest pause a BOSH client may ask for (XEP-0124 10 <c>maxpause</c>): 120 s, for a page reload.</summary>
    public TimeSpan BoshMaxPause { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>
    /// Room for the BOSH <c>&lt;body/&gt;</c> wrapper around one maximal stanza in a request: 16 KiB,
    /// as the HTTP listener's request body limit allows.
    /// </summary>
    public const int BoshWrapperBytes = 16 * 1024;

    /// <summary>
    /// Largest RFC 7395 <c>&lt;open/&gt;</c> or <c>&lt;close/&gt;</c> message. 8 KiB, the stream
    /// layer's limit on a stream header (real ones are 150 to 400 bytes).
    /// </summary>
    public const int MaxFramingElementBytes = 8 * 1024;

    internal void Validate()
    {
        ArgumentException.ThrowIfNullOrEmpty(Domain, nameof(Domain));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxStanzaBytes, 1024, nameof(MaxStanzaBytes));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxPendingOutputBytes, MaxStanzaBytes, nameof(MaxPendingOutputBytes));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(CloseTimeout, TimeSpan.Zero, nameof(CloseTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThan(BoshMaxWait, TimeSpan.FromSeconds(1), nameof(BoshMaxWait));
        ArgumentOutOfRangeException.ThrowIfLessThan(BoshInactivity, TimeSpan.FromSeconds(1), nameof(BoshInactivity));
        ArgumentOutOfRangeException.ThrowIfLessThan(BoshMaxPause, TimeSpan.Zero, nameof(BoshMaxPause));
    }
}
