using ConnMgr.Diagnostics;
using ConnMgr.Edge.Transport;
using ConnMgr.Edge.Upstream;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Xml;
using Microsoft.Extensions.Logging;

namespace ConnMgr.Edge.Streams;

/// <summary>
/// The XMPP stream layer on the client transport: one <see cref="ClientStream"/> per connection,
/// and everything the streams share, built once (scanner options, stream features, the per-IP
/// counter, metric labels).
/// </summary>
internal sealed class ClientStreamHandler : IClientConnectionHandler
{
    private static readonly string[] s_closeReasonNames = Enum.GetNames<CloseReason>();

    private StreamFeatures? _features;
    private int _watchingStopping;
    private volatile bool _stopping;

    public ClientStreamHandler(StreamSettings settings, UpstreamPool pool, ILogger<ClientStreamHandler> logger, ConnMgrMetrics? metrics = null)
    {
        settings.Validate();
        Settings = settings;
        Pool = pool;
        Logger = logger;
        Metrics = metrics;
        ScannerOptions = new XmlScannerOptions
        {
            MaxElementBytes = settings.MaxStanzaBytes,
            ContentNamespace = XmppNamespaces.Client,
            // A client's header names the domain in 'to', and every idle client keeps its header.
            SharedHeaderValues = [settings.Domain],
        };
        Tracker = settings.MaxUnauthenticatedPerIp > 0 ? new IpConnectionTracker(settings.MaxUnauthenticatedPerIp) : null;
        PingBytes = StreamWire.Ping(settings.Domain);
        NegotiationTicks = Ticks(settings.NegotiationTimeout);
        IdleTicks = Ticks(settings.IdleTimeout);
        PingGraceTicks = Ticks(settings.IdlePingGrace);
    }

    public StreamSettings Settings { get; }

    public UpstreamPool Pool { get; }

    public ILogger Logger { get; }

    public ConnMgrMetrics? Metrics { get; }

    public XmlScannerOptions ScannerOptions { get; }

    /// <summary>Unauthenticated connections per address; null when <c>Edge:MaxUnauthenticatedPerIp</c> is 0.</summary>
    public IpConnectionTracker? Tracker { get; }

    public byte[] PingBytes { get; }

    public long NegotiationTicks { get; }

    public long IdleTicks { get; }

    public long PingGraceTicks { get; }

    /// <summary>
    /// Features for the core's current configuration. The pool replaces the configuration when a
    /// link brings a new configuration IQ (spec 3.7); the cache follows by reference.
    /// </summary>
    public StreamFeatures Features
    {
        get
        {
            var configuration = Pool.Configuration ?? s_noConfiguration;
            var features = Volatile.Read(ref _features);
            if (features is null || !ReferenceEquals(features.Configuration, configuration))
            {
                features = StreamFeatures.For(configuration);
                Volatile.Write(ref _features, features);
            }
            return features;
        }
    }

    private static readonly ClientStreamConfiguration s_noConfiguration = new();

    /// <summary>The transport is stopping: every stream says system-shutdown at its next heartbeat.</summary>
    public bool IsStopping => _stopping;

    /// <summary>
    /// One registration on the transport's stopping token for all streams, rather than one per
    /// stream (an idle stream should hold nothing it does not need): each stream sees
    /// <see cref="IsStopping"/> within a heartbeat, a second.
    /// </summary>
    internal void WatchStopping(CancellationToken stopping)
    {
        if (Volatile.Read(ref _watchingStopping) == 0 && Interlocked.Exchange(ref _watchingStopping, 1) == 0)
        {
            stopping.UnsafeRegister(static state => ((ClientStreamHandler)state!)._stopping = true, this);
        }
    }

    public Task RunAsync(ClientConnection connection, CancellationToken stopping)
        => new ClientStream(this, connection).RunAsync(stopping);

    /// <summary>Over <c>Edge:MaxConnections</c>: a stream header and <c>resource-constraint</c> (RFC 6120 4.9.3.17), then the transport closes.</summary>
    public Task RejectAsync(ClientConnection connection, CancellationToken stopping)
    {
        var transport = ((IClientStreamConnection)connection).MetricsTransport;
        Metrics?.ConnectionOpened(transport);
        ClientStream.WriteRefusal(this, connection, StreamErrorCondition.ResourceConstraint, "too many connections (Edge:MaxConnections)");
        Metrics?.ConnectionClosed(transport, ClientConnectionState.Negotiating, ReasonName(connection.CloseReason));
        return Task.CompletedTask;
    }


    /// <summary>The enum value's name, cached: the metric label (a small fixed set, never built per call).</summary>
    internal static string ReasonName(CloseReason reason) => s_closeReasonNames[(int)reason];

    private static long Ticks(TimeSpan span) => (long)(span.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
}
