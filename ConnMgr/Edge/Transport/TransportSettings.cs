namespace ConnMgr.Edge.Transport;

/// <summary>
/// Settings of the client transport, a plain record the composition root fills from the
/// <c>Edge:*</c> options. Defaults are the daemon's defaults; units are in the names.
/// </summary>
internal sealed record TransportSettings
{
    /// <summary>
    /// Listen backlog per port. 4096 absorbs a reconnect storm (every client of a restarted edge
    /// at once) without the kernel dropping SYNs; Linux caps it at net.core.somaxconn.
    /// </summary>
    public int Backlog { get; init; } = 4096;

    /// <summary>
    /// Connections held at once over all client ports (<c>Edge:MaxConnections</c>). Above it a
    /// client is accepted and closed at once, after the handler's <c>RejectAsync</c> had a chance
    /// to say why. Each connection costs a file descriptor; this box allows 20,000 per process.
    /// </summary>
    public int MaxConnections { get; init; } = 10_000;

    /// <summary>
    /// The stream layer's stanza limit (256 KiB by default). The input pipe is sized from it: see
    /// <see cref="InputPauseThresholdBytes"/>.
    /// </summary>
    public int MaxStanzaBytes { get; init; } = 256 * 1024;

    /// <summary>
    /// Bytes queued for one client and not yet written to its socket (<c>Edge:MaxPendingOutputBytes</c>,
    /// 5 MiB). A write that would go over it aborts the client with <see cref="CloseReason.OutputOverflow"/>:
    /// a client that does not read must never stall the upstream link that feeds it.
    /// </summary>
    public long MaxPendingOutputBytes { get; init; } = 5 * 1024 * 1024;

    /// <summary>
    /// Inbound bytes per second per client (<c>Edge:ClientRateBytesPerSecond</c>); 0 = no limit.
    /// Over the rate a client is slowed (its socket is not read), never disconnected.
    /// </summary>
    public int ClientRateBytesPerSecond { get; init; }

    /// <summary>
    /// Burst allowance of the shaper, in seconds of <see cref="ClientRateBytesPerSecond"/>: a quiet
    /// client may send this much at once (a login, a roster push) before it is slowed.
    /// </summary>
    public int ClientRateBurstSeconds { get; init; } = 4;

    /// <summary>Expect a PROXY protocol header first on every client connection (<c>Edge:ProxyProtocol</c>).</summary>
    public bool ProxyProtocol { get; init; }

    /// <summary>Time allowed for the PROXY header, which a proxy sends at once on connect.</summary>
    public TimeSpan ProxyHeaderTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Time allowed for a TLS handshake, Direct TLS or after STARTTLS.</summary>
    public TimeSpan TlsHandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Time a closing connection gets to flush its last bytes before it is cut.</summary>
    public TimeSpan CloseTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The input pipe stops reading the socket once this many bytes wait unread, and resumes at
    /// half. It must exceed <see cref="MaxStanzaBytes"/>: the stream layer can only reject an
    /// oversized stanza after seeing one byte past the limit, so a smaller threshold would pause
    /// the socket under a stanza that can never complete (a deadlock). 64 KiB on top keeps reads
    /// flowing while a maximum-size stanza is relayed: 320 KiB with the defaults.
    /// </summary>
    public long InputPauseThresholdBytes => MaxStanzaBytes + (64 * 1024);

    /// <summary>
    /// When the stream layer's own writes (through <c>ClientConnection.Output</c>) wait for the
    /// socket: its flush completes only once pending output is back under half of this. 64 KiB
    /// is a few TCP windows; deliveries through <c>TryWrite</c> never wait.
    /// </summary>
    public long OutputPauseThresholdBytes => 64 * 1024;

    internal void Validate()
    {
        Require(Backlog > 0, "Backlog must be positive");
        Require(MaxConnections > 0, "MaxConnections must be positive");
        Require(MaxStanzaBytes >= 1024, "MaxStanzaBytes must be at least 1024");
        Require(MaxPendingOutputBytes >= MaxStanzaBytes, "MaxPendingOutputBytes must be at least MaxStanzaBytes");
        Require(ClientRateBytesPerSecond >= 0, "ClientRateBytesPerSecond must not be negative");
        Require(ClientRateBurstSeconds >= 1, "ClientRateBurstSeconds must be at least 1");
        Require(ProxyHeaderTimeout > TimeSpan.Zero, "ProxyHeaderTimeout must be positive");
        Require(TlsHandshakeTimeout > TimeSpan.Zero, "TlsHandshakeTimeout must be positive");
        Require(CloseTimeout > TimeSpan.Zero, "CloseTimeout must be positive");
    }

    private static void Require(bool condition, string message)
    {
        if (!condition)
        {
            throw new ArgumentException(message);
        }
    }
}
