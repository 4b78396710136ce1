using System.IO.Pipelines;
using System.Net;
using System.Security.Authentication;
using ConnMgr.Edge.Transport;
using MetricsTransport = ConnMgr.Diagnostics.ClientTransport;

namespace ConnMgr.Edge.Streams;

/// <summary>
/// What a <see cref="ClientStream"/> needs from the connection under it: the client's XMPP bytes
/// in, the stream's bytes out, counters, deadlines and the close reason. A TCP socket
/// (<see cref="ClientConnection"/>) and a web session (WebSocket, BOSH) both provide it, so every
/// transport runs the one state machine, with the same validation, pinning, limits and metrics.
/// </summary>
/// <remarks>
/// A web transport translates its framing into an ordinary XMPP stream on <see cref="Input"/>
/// (RFC 7395 <c>&lt;open/&gt;</c> becomes a stream header) and back from what the stream writes.
/// Thread rules are those of <see cref="ClientConnection"/>: <see cref="Input"/> and
/// <see cref="Output"/> belong to the stream's receive loop; <see cref="TryWrite"/>, the counters
/// and the close members may be used from any thread.
/// </remarks>
internal interface IClientStreamConnection
{
    /// <summary>Process-unique number for logs.</summary>
    long Id { get; }

    /// <summary>The client's address, for the per-address limit and the core's session (spec 5.1).</summary>
    IPEndPoint RemoteEndPoint { get; }

    /// <summary>Whether the stream counts as encrypted: TLS, or a web session the operator trusts (see design.md).</summary>
    bool IsSecure { get; }

    /// <summary>Whether &lt;starttls/&gt; may be offered; never on a web transport.</summary>
    bool CanStartTls { get; }

    SslProtocols TlsProtocol { get; }

    /// <summary>The label of the stream's metrics.</summary>
    MetricsTransport MetricsTransport { get; }

    /// <summary>The client's XMPP bytes. Completes when the client is gone.</summary>
    PipeReader Input { get; }

    /// <summary>The receive loop's writer; its bytes go out on flush, in order with <see cref="TryWrite"/>.</summary>
    PipeWriter Output { get; }

    long PendingOutputBytes { get; }

    long BytesReceived { get; }

    long BytesSent { get; }

    /// <summary>When bytes last arrived (Stopwatch ticks).</summary>
    long LastReceiveTimestamp { get; }

    /// <summary>Visited about once a second while set; the stream sets it when it starts and clears it when done.</summary>
    IConnectionHeartbeatListener? HeartbeatListener { get; set; }

    CloseReason CloseReason { get; }

    bool TrySetCloseReason(CloseReason reason);

    /// <summary>Cuts the connection when the heartbeat finds <paramref name="after"/> passed.</summary>
    void SetDeadline(TimeSpan after, CloseReason reason);

    /// <summary>Queues one element for the client from any thread, without waiting; false when it was not queued.</summary>
    bool TryWrite(ReadOnlySpan<byte> data);

    /// <summary>STARTTLS: writes <paramref name="proceed"/> in clear, then runs the handshake. Only called when <see cref="CanStartTls"/>.</summary>
    ValueTask<bool> UpgradeToTlsAsync(ReadOnlyMemory<byte> proceed, CancellationToken cancellationToken);
}
