using System.Net;
using ConnMgr.Core.Storage;

namespace ConnMgr.Core;

/// <summary>
/// How SASL challenges, successes, failures and client stream errors travel inside a route
/// (spec 6.2): Openfire writes them with <c>deliverRawText</c>, spliced in as elements up to
/// 4.7 and as escaped text since 4.8.
/// </summary>
internal enum RawTextRouteForm
{
    /// <summary>Escaped text, no child element: what Openfire 4.8 and later send (the default).</summary>
    EscapedText,

    /// <summary>The XML spliced in as child elements: what Openfire 4.7 and earlier send.</summary>
    Elements,
}

/// <summary>
/// Everything the embedded core needs, resolved from configuration by <see cref="CoreService"/>
/// or built directly by tests. Times and sizes default to Openfire's (spec sections 2, 8.3, 9.1).
/// </summary>
internal sealed record CoreServerOptions
{
    /// <summary>The XMPP domain served (<c>Xmpp:Domain</c>).</summary>
    public required string Domain { get; init; }

    /// <summary>The shared link secret (spec 3.6); empty refuses every link with <c>internal-server-error</c> (spec 3.3).</summary>
    public required string Secret { get; init; }

    /// <summary>Where the link listener binds (<c>Core:ListenAddress</c>, <c>Core:Port</c>); port 0 picks a free one.</summary>
    public required IPEndPoint ListenEndPoint { get; init; }

    /// <summary>Directory of the SQLite store (<c>DataDirectory</c>).</summary>
    public required string DataDirectory { get; init; }

    /// <summary>Store tuning; tests lower the PBKDF2 iterations.</summary>
    public XmppStoreOptions StoreOptions { get; init; } = new();

    /// <summary>
    /// <c>Core:RequireClientTls</c>: the configuration IQ says <c>&lt;starttls&gt;&lt;required/&gt;</c>
    /// (spec 3.7, 0.1 point 7) and the edge enforces it (0.1 point 8). Default true. When false the
    /// element is still sent, without <c>required</c>: TLS stays offered.
    /// </summary>
    public bool RequireClientTls { get; init; } = true;

    /// <summary>Encoding of raw-text routes. Default <see cref="RawTextRouteForm.EscapedText"/>, as current Openfire.</summary>
    public RawTextRouteForm RawTextRoutes { get; init; } = RawTextRouteForm.EscapedText;

    /// <summary>Whitespace keepalive on every link. Default 30 s, as Openfire (spec 8.3).</summary>
    public TimeSpan KeepaliveInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A link from which nothing at all was read for this long is closed with <c>connection-timeout</c>.
    /// Default 5 min: Openfire's <c>xmpp.multiplex.idle</c>, two half-periods of 2.5 min (spec 8.3).
    /// </summary>
    public TimeSpan LinkIdleTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// A link that has not completed its handshake this long after connecting is closed with
    /// <c>connection-timeout</c>, so idle or dribbling strangers cannot hold connections. Default 60 s;
    /// Openfire relies on its idle limit alone.
    /// </summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// A link that has output waiting and has not accepted a byte for this long is dropped.
    /// Default 30 s: Openfire's <c>xmpp.socket.write-timeout-seconds</c> (spec 2).
    /// </summary>
    public TimeSpan LinkWriteTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Bytes that may wait to be written to one link. Beyond it the link is dropped and its CM's
    /// sessions move to its other links, so one slow edge never makes the core buffer without bound.
    /// Default 32 MiB: 32 of the largest stanzas (1 MiB, spec 2), or several seconds of a busy link.
    /// </summary>
    public long MaxLinkOutputBytes { get; init; } = 32L * 1024 * 1024;

    /// <summary>
    /// Stanzas that may wait for one session's processing (its store writes are awaited one by one).
    /// Beyond it the session ends with <c>resource-constraint</c>. Default 1000: the edge shapes
    /// each client's input, so only a client flooding a slow store comes near it.
    /// </summary>
    public int MaxSessionQueue { get; init; } = 1000;

    /// <summary>
    /// Bytes of stanzas that may wait for one session's processing; beyond it, as for
    /// <see cref="MaxSessionQueue"/>. Default 4 MiB: four of the largest stanzas (spec 2).
    /// </summary>
    public int MaxSessionQueueBytes { get; init; } = 4 * 1024 * 1024;

    /// <summary>SASL failures before the session is closed. Default 3, Openfire's <c>xmpp.auth.retries</c> (spec 9.1).</summary>
    public int MaxAuthFailures { get; init; } = 3;

    /// <summary>
    /// A session that has not bound a resource this long after its create is closed. Default 5 min,
    /// Openfire's <c>xmpp.client.preauth.timeout</c> (spec 5.4).
    /// </summary>
    public TimeSpan PreBindTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>How often timeouts are checked. Default 1 s.</summary>
    public TimeSpan TimerResolution { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How long <see cref="CoreServer.DisposeAsync"/> waits for sessions to finish their work. Default 5 s.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(5);

    internal void Validate()
    {
        ArgumentException.ThrowIfNullOrEmpty(Domain);
        ArgumentNullException.ThrowIfNull(Secret);
        ArgumentNullException.ThrowIfNull(ListenEndPoint);
        ArgumentException.ThrowIfNullOrEmpty(DataDirectory);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(KeepaliveInterval, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(LinkIdleTimeout, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(HandshakeTimeout, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(LinkWriteTimeout, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxLinkOutputBytes, 1024 * 1024);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxSessionQueue, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxSessionQueueBytes, 1024 * 1024);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxAuthFailures, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(PreBindTimeout, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(TimerResolution, TimeSpan.Zero);
    }
}
