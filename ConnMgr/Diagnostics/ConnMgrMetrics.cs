using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;

namespace ConnMgr.Diagnostics;

/// <summary>How a client reached the edge (the <c>transport</c> label).</summary>
internal enum ClientTransport
{
    /// <summary><c>Edge:ClientPort</c>, with or without STARTTLS.</summary>
    Tcp,

    /// <summary><c>Edge:DirectTlsPort</c> (XEP-0368).</summary>
    Tls,

    /// <summary>RFC 7395 on <c>Edge:HttpPort</c>.</summary>
    WebSocket,

    /// <summary>XEP-0124/0206 on <c>Edge:HttpPort</c>.</summary>
    Bosh,
}

/// <summary>Where a client connection is in its life (the <c>state</c> label).</summary>
internal enum ClientConnectionState
{
    /// <summary>Connected, not yet a session on the core (TLS, SASL, bind in progress).</summary>
    Negotiating,

    /// <summary>Session created on the core; stanzas flow.</summary>
    Established,
}

/// <summary>
/// The daemon's instruments, on the meter <c>ConnMgr</c>. The edge calls these
/// methods per connection and per stanza, so each is one interlocked operation
/// on a field and allocates nothing; the instruments are observable and read
/// the fields only when a collector (the <c>/metrics</c> endpoint, dotnet-counters)
/// asks. A component with a metric of its own creates it on <see cref="Meter"/>
/// with a name starting <c>connmgr.</c>; <see cref="PrometheusExporter"/> exports it.
/// </summary>
internal sealed class ConnMgrMetrics
{
    public const string MeterName = "ConnMgr";

    /// <summary>Close reasons beyond this many distinct values count as <c>other</c>, bounding the series.</summary>
    internal const int MaxCloseReasons = 64;

    internal const string OtherReason = "other";

    private static readonly string[] s_transports = ["tcp", "tls", "websocket", "bosh"];
    private static readonly string[] s_states = ["negotiating", "established"];
    private static readonly KeyValuePair<string, object?>[] s_in = [new("direction", "in")];
    private static readonly KeyValuePair<string, object?>[] s_out = [new("direction", "out")];

    private readonly long[] _connections = new long[s_transports.Length * s_states.Length];
    private readonly ConcurrentDictionary<string, StrongBox<long>> _closes = new(StringComparer.Ordinal);
    private long _logins;
    private long _loginFailures;
    private long _stanzasIn;
    private long _stanzasOut;
    private long _bytesIn;
    private long _bytesOut;
    private long _upstreamLinks;
    private long _pendingOutputBytes;

    public ConnMgrMetrics(IMeterFactory meterFactory)
    {
        Meter = meterFactory.Create(MeterName);
        Meter.CreateObservableUpDownCounter<long>("connmgr.client.connections", ObserveConnections, "{connection}",
            "Client connections open, by transport and state.");
        Meter.CreateObservableCounter<long>("connmgr.client.logins", () => Volatile.Read(ref _logins), "{login}",
            "Successful client authentications.");
        Meter.CreateObservableCounter<long>("connmgr.client.login_failures", () => Volatile.Read(ref _loginFailures), "{login}",
            "Failed client authentications.");
        Meter.CreateObservableCounter<long>("connmgr.client.stanzas", () => Pair(ref _stanzasIn, ref _stanzasOut), "{stanza}",
            "Client stanzas relayed; direction in = from clients, out = to clients.");
        Meter.CreateObservableCounter<long>("connmgr.client.bytes", () => Pair(ref _bytesIn, ref _bytesOut), "By",
            "Bytes on client connections; direction in = read from clients, out = written to clients.");
        Meter.CreateObservableCounter<long>("connmgr.client.closes", ObserveCloses, "{connection}",
            "Client connections closed, by reason.");
        Meter.CreateObservableGauge<long>("connmgr.client.pending_output_bytes", () => Volatile.Read(ref _pendingOutputBytes), "By",
            "Bytes queued for clients and not yet written, all clients together.");
        Meter.CreateObservableGauge<long>("connmgr.upstream.links", () => Volatile.Read(ref _upstreamLinks), "{link}",
            "Upstream links to the core that are authenticated and usable.");
    }

    public Meter Meter { get; }

    /// <summary>A client connection was accepted (state negotiating).</summary>
    public void ConnectionOpened(ClientTransport transport) =>
        Interlocked.Increment(ref _connections[Index(transport, ClientConnectionState.Negotiating)]);

    /// <summary>A client's session was created on the core (negotiating → established).</summary>
    public void ConnectionEstablished(ClientTransport transport)
    {
        Interlocked.Decrement(ref _connections[Index(transport, ClientConnectionState.Negotiating)]);
        Interlocked.Increment(ref _connections[Index(transport, ClientConnectionState.Established)]);
    }

    /// <summary>A client connection ended.</summary>
    /// <param name="reason">
    /// Why, from a small fixed set (the name of the edge's close-reason enum
    /// value, cached, not built per call): each distinct value is a time series.
    /// </param>
    public void ConnectionClosed(ClientTransport transport, ClientConnectionState state, string reason)
    {
        Interlocked.Decrement(ref _connections[Index(transport, state)]);
        if (!_closes.TryGetValue(reason, out StrongBox<long>? count))
        {
            count = _closes.Count < MaxCloseReasons
                ? _closes.GetOrAdd(reason, static _ => new StrongBox<long>())
                : _closes.GetOrAdd(OtherReason, static _ => new StrongBox<long>());
        }
        Interlocked.Increment(ref count.Value);
    }

    public void LoginSucceeded() => Interlocked.Increment(ref _logins);

    public void LoginFailed() => Interlocked.Increment(ref _loginFailures);

    public void StanzaReceived() => Interlocked.Increment(ref _stanzasIn);

    public void StanzaSent() => Interlocked.Increment(ref _stanzasOut);

    public void BytesReceived(long bytes) => Interlocked.Add(ref _bytesIn, bytes);

    public void BytesSent(long bytes) => Interlocked.Add(ref _bytesOut, bytes);

    /// <summary>Bytes were queued for a client (positive) or written or dropped (negative).</summary>
    public void PendingOutputChanged(long deltaBytes) => Interlocked.Add(ref _pendingOutputBytes, deltaBytes);

    /// <summary>An upstream link finished its handshake.</summary>
    public void UpstreamLinkUp() => Interlocked.Increment(ref _upstreamLinks);

    /// <summary>An upstream link that was up is gone.</summary>
    public void UpstreamLinkDown() => Interlocked.Decrement(ref _upstreamLinks);

    private static int Index(ClientTransport transport, ClientConnectionState state) =>
        (int)transport * s_states.Length + (int)state;

    private static Measurement<long>[] Pair(ref long inbound, ref long outbound) =>
        [new(Volatile.Read(ref inbound), s_in), new(Volatile.Read(ref outbound), s_out)];

    private IEnumerable<Measurement<long>> ObserveConnections()
    {
        var measurements = new Measurement<long>[_connections.Length];
        for (int t = 0; t < s_transports.Length; t++)
        {
            for (int s = 0; s < s_states.Length; s++)
            {
                int i = t * s_states.Length + s;
                measurements[i] = new Measurement<long>(Volatile.Read(ref _connections[i]),
                    new KeyValuePair<string, object?>("transport", s_transports[t]),
                    new KeyValuePair<string, object?>("state", s_states[s]));
            }
        }
        return measurements;
    }

    private IEnumerable<Measurement<long>> ObserveCloses()
    {
        foreach (KeyValuePair<string, StrongBox<long>> pair in _closes)
        {
            yield return new Measurement<long>(Volatile.Read(ref pair.Value.Value), new KeyValuePair<string, object?>("reason", pair.Key));
        }
    }
}
