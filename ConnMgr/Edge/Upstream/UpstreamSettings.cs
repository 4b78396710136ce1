using System.Net.Security;

namespace ConnMgr.Edge.Upstream;

/// <summary>How a link negotiates STARTTLS on the plain connection-manager port (spec 3.5).</summary>
internal enum LinkTlsMode
{
    /// <summary>Never send <c>&lt;starttls/&gt;</c>; a server that requires TLS refuses the link.</summary>
    Never,

    /// <summary>Upgrade when the server offers STARTTLS, as Jive's CM did (spec 3.5).</summary>
    IfOffered,

    /// <summary>Refuse to authenticate over a link the server does not offer to encrypt.</summary>
    Required,
}

/// <summary>
/// Everything the upstream pool needs, independent of the hosting options classes; the
/// composition root maps <c>Upstream:*</c> and <c>Edge:Name</c> onto it.
/// </summary>
internal sealed record UpstreamSettings
{
    /// <summary>The core's connection-manager listener (Openfire: 5262 plain, 5263 Direct TLS; spec 2).</summary>
    public required string Host { get; init; }

    public int Port { get; init; } = 5262;

    /// <summary>Shared secret for the handshake (Openfire <c>xmpp.multiplex.defaultSecret</c>); keep it ASCII (spec 3.6).</summary>
    public required string Secret { get; init; }

    /// <summary>
    /// The CM name: the domain of every link JID and the prefix of every stream ID. It must stay
    /// the same across restarts so that ghost sessions left on Openfire 5.x reach us and get
    /// closed (spec 0.1 point 2). Use <c>[a-z0-9.-]</c> (spec 3.2).
    /// </summary>
    public required string CmName { get; init; }

    /// <summary>Number of links, 1 to 64 (default 4). Each client is pinned to one (spec 8.1).</summary>
    public int Links { get; init; } = 4;

    /// <summary>STARTTLS on the plain port. Ignored with <see cref="DirectTls"/>.</summary>
    public LinkTlsMode LinkTls { get; init; } = LinkTlsMode.IfOffered;

    /// <summary>TLS from the first byte (Openfire port 5263), preferred where offered (spec 0.1 point 3).</summary>
    public bool DirectTls { get; init; }

    /// <summary>Name checked against the server certificate; null means <see cref="Host"/>.</summary>
    public string? TlsServerName { get; init; }

    /// <summary>Certificate check for the link; null means the platform's default validation.</summary>
    public RemoteCertificateValidationCallback? ServerCertificateValidation { get; init; }

    /// <summary>Whitespace is written on a link that sent nothing for this long (spec 8.3: 30 s, like both Openfire and Jive's CM).</summary>
    public TimeSpan Keepalive { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A link that read no byte for this long is dead (spec 8.3: three missed 30-s server
    /// heartbeats). The same limit applies to a link that cannot send its pending output.
    /// </summary>
    public TimeSpan DeadAfter { get; init; } = TimeSpan.FromSeconds(90);

    /// <summary>Limit for TCP connect plus the whole link negotiation up to the handshake reply.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>First reconnect delay; doubles per failed attempt up to <see cref="ReconnectMax"/>, with jitter.</summary>
    public TimeSpan ReconnectInitial { get; init; } = TimeSpan.FromMilliseconds(500);

    public TimeSpan ReconnectMax { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Bytes queued on one link above which a client's <see cref="UpstreamSession.RouteAsync"/>
    /// waits (it resumes at half). 1 MiB: about a second of traffic for a busy link, and far
    /// below what would make the server's 30-s write stall matter.
    /// </summary>
    public int LinkOutputPauseBytes { get; init; } = 1024 * 1024;

    /// <summary>How long <see cref="UpstreamPool.StopAsync"/> waits for links to flush before it aborts them.</summary>
    public TimeSpan StopDrainTimeout { get; init; } = TimeSpan.FromSeconds(5);
}
