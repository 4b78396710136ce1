namespace ConnMgr.Edge.Transport;

/// <summary>
/// Why a client connection ended: recorded once, before the socket is closed (the first reason
/// wins), and used as the log line and the metric label. The stream layer may add values.
/// </summary>
internal enum CloseReason : byte
{
    /// <summary>Still open.</summary>
    None = 0,

    /// <summary>The client closed its side (end of stream).</summary>
    ClientClosed,

    /// <summary>The connection failed under us: reset by the peer, broken pipe, network error.</summary>
    ClientReset,

    /// <summary>The client broke the protocol: bad PROXY header, plaintext after &lt;starttls/&gt;, bad XML.</summary>
    ProtocolError,

    /// <summary>The stream did not reach its negotiated state in time (deadline set by the stream layer).</summary>
    NegotiationTimeout,

    /// <summary>The TLS handshake or the PROXY header did not complete in time.</summary>
    HandshakeTimeout,

    /// <summary>The client stayed silent too long (decided by the stream layer).</summary>
    IdleTimeout,

    /// <summary>The client did not read fast enough: its pending output went over the cap.</summary>
    OutputOverflow,

    /// <summary>The stream layer cut a client for its stanza rate. The byte-rate shaper never does.</summary>
    RateLimited,

    /// <summary>Accepted above the global connection cap and closed at once.</summary>
    ConnectionCap,

    /// <summary>Too many unauthenticated connections from the client's address.</summary>
    PerIpCap,

    /// <summary>The daemon is stopping.</summary>
    ServerShutdown,

    /// <summary>The upstream link carrying the client's session went away.</summary>
    UpstreamLost,

    /// <summary>Another login took over the session (resource conflict).</summary>
    SessionReplaced,

    /// <summary>The TLS handshake failed (protocol version, cipher, garbage instead of a ClientHello).</summary>
    TlsFailed,

    /// <summary>The stream layer ended the stream without naming a reason.</summary>
    ServerClosed,

    /// <summary>A bug on our side: the connection handler threw.</summary>
    InternalError,

    /// <summary>The core ended the client's session: its close, a stream error, or a session it no longer knows (spec 5.4, 6.1.3).</summary>
    CoreClosed,

    /// <summary>The core refused to create the client's session (Openfire: the client's address is blocked, spec 5.2).</summary>
    CoreRefused,
}
