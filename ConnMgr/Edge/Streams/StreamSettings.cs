namespace ConnMgr.Edge.Streams;

/// <summary>
/// Settings of the client stream layer, a plain record the composition root fills from the
/// <c>Xmpp:*</c> and <c>Edge:*</c> options (whose documentation gives the defaults' reasons);
/// tests shorten the timeouts. Units are in the names.
/// </summary>
internal sealed record StreamSettings
{
    /// <summary>The XMPP domain served (<c>Xmpp:Domain</c>): a client header must name it in <c>to</c>.</summary>
    public required string Domain { get; init; }

    /// <summary>Largest top-level element from a client (<c>Edge:MaxStanzaBytes</c>), enforced by the scanner.</summary>
    public int MaxStanzaBytes { get; init; } = 256 * 1024;

    /// <summary>From connection to a bound resource (<c>Edge:NegotiationTimeoutSeconds</c>); then <c>connection-timeout</c>.</summary>
    public TimeSpan NegotiationTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Silence from an established client after which it is pinged (XEP-0199,
    /// <c>Edge:IdleTimeoutSeconds</c>); <see cref="TimeSpan.Zero"/> = never.
    /// </summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(300);

    /// <summary>
    /// Time a pinged client has to send anything at all before it is closed with
    /// <c>connection-timeout</c>. 30 s: a phone whose radio was asleep needs a few seconds to
    /// wake and answer; the whole round trip stays well under a NAT binding's lifetime.
    /// </summary>
    public TimeSpan IdlePingGrace { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Unauthenticated connections per client address (<c>Edge:MaxUnauthenticatedPerIp</c>); 0 = no limit.</summary>
    public int MaxUnauthenticatedPerIp { get; init; } = 100;

    /// <summary>
    /// Bytes pending for one client beyond which a delivery cuts it (<c>Edge:MaxPendingOutputBytes</c>,
    /// the transport's cap). The stream layer stops <see cref="OutputReserveBytes"/> short of it, so the
    /// closing stream error still fits under the cap.
    /// </summary>
    public long MaxPendingOutputBytes { get; init; } = 5 * 1024 * 1024;

    /// <summary>
    /// Room kept under <see cref="MaxPendingOutputBytes"/> for the last words to a client cut for not
    /// reading: a stream error with its text and <c>&lt;/stream:stream&gt;</c> take about 250 bytes.
    /// </summary>
    public const int OutputReserveBytes = 1024;

    /// <summary>
    /// Once a stream is being closed, the time its handler gets to write the last words before the
    /// transport cuts the connection anyway: a handler blocked on a congested upstream link must
    /// not keep a dead client's socket.
    /// </summary>
    public TimeSpan CloseGrace { get; init; } = TimeSpan.FromSeconds(10);

    internal void Validate()
    {
        ArgumentException.ThrowIfNullOrEmpty(Domain, nameof(Domain));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxStanzaBytes, 1024, nameof(MaxStanzaBytes));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(NegotiationTimeout, TimeSpan.Zero, nameof(NegotiationTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThan(IdleTimeout, TimeSpan.Zero, nameof(IdleTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(IdlePingGrace, TimeSpan.Zero, nameof(IdlePingGrace));
        ArgumentOutOfRangeException.ThrowIfNegative(MaxUnauthenticatedPerIp, nameof(MaxUnauthenticatedPerIp));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxPendingOutputBytes, MaxStanzaBytes + (long)OutputReserveBytes, nameof(MaxPendingOutputBytes));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(CloseGrace, TimeSpan.Zero, nameof(CloseGrace));
    }
}
