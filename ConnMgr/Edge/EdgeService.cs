using System.Net;
using System.Net.Security;
using ConnMgr.Diagnostics;
using ConnMgr.Edge.Streams;
using ConnMgr.Edge.Tls;
using ConnMgr.Edge.Transport;
using ClientTransport = ConnMgr.Edge.Transport.ClientTransport;
using ConnMgr.Edge.Upstream;
using ConnMgr.Hosting;
using ConnMgr.Http;
using ConnMgr.Options;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ConnMgr.Edge;

/// <summary>
/// The connection manager in the daemon: the upstream link pool, the client stream layer and the
/// client transport with its listeners (<c>Edge:ClientPort</c> with STARTTLS,
/// <c>Edge:DirectTlsPort</c> with Direct TLS), the certificate they present, and the heartbeat
/// behind every client timeout. Off when <c>Edge:Enabled</c> is false.
/// </summary>
/// <remarks>
/// <para>Start: the pool first; the listeners open only once a first link is authenticated and
/// the core's configuration IQ has arrived, so no client is accepted that could not be served and
/// the features it is offered come from the core (spec 0.1 point 3, 3.7). Until then clients are
/// refused at the TCP level and the daemon is not ready; this waits in the background, so the
/// daemon (its <c>/health</c> endpoint) runs while the core is unreachable.</para>
/// <para>Stop (SIGTERM), bounded by <c>Edge:ShutdownDrainSeconds</c>: the listeners close; every
/// client gets <c>system-shutdown</c> and its session a <c>&lt;close/&gt;</c> upstream, before the
/// links themselves end (spec 0.1 point 2, so that Openfire 5.x keeps no ghost sessions); clients
/// get the drain time to read their last bytes, then are cut.</para>
/// </remarks>
internal sealed partial class EdgeService(
    IOptions<EdgeOptions> edgeOptions,
    IOptions<XmppOptions> xmppOptions,
    IOptions<TlsOptions> tlsOptions,
    IOptions<UpstreamOptions> upstreamOptions,
    IOptions<CoreOptions> coreOptions,
    IOptions<DaemonOptions> daemonOptions,
    IOptions<TestingOptions> testingOptions,
    LinkSecretProvider secrets,
    ListenerEndpoints endpoints,
    ReadinessGate readiness,
    ConnMgrMetrics metrics,
    IHostApplicationLifetime lifetime,
    ILoggerFactory loggerFactory) : IHostedService, IUpstreamHealth, IHttpsCertificateSource, IAsyncDisposable
{
    public const string ClientPortKey = "Edge:ClientPort";
    public const string DirectTlsPortKey = "Edge:DirectTlsPort";

    /// <summary>What the core's own listener key is called in <see cref="ListenerEndpoints"/>.</summary>
    private const string CorePortKey = "Core:Port";

    private readonly ILogger _logger = loggerFactory.CreateLogger<EdgeService>();
    private readonly CancellationTokenSource _stopping = new();
    private UpstreamPool? _pool;
    private ClientTransport? _transport;
    private Heartbeat? _heartbeat;
    private Task _opening = Task.CompletedTask;
    private CertificateProvider? _certificates;

    /// <summary><c>Edge:MaxConnections</c>: one count for the TCP transport and the web transports.</summary>
    internal ConnectionSlots Connections { get; } = new(edgeOptions.Value.MaxConnections);

    /// <summary>The stream layer, once started; for in-process tests.</summary>
    internal ClientStreamHandler? Streams { get; private set; }

    /// <summary>The transport, once started; for in-process tests.</summary>
    internal ClientTransport? Transport => _transport;

    public int LinksUp => _pool?.LinksUp ?? 0;

    public SslServerAuthenticationOptions? HttpsOptions => Volatile.Read(ref _certificates)?.Current.Https;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var edge = edgeOptions.Value;
        if (!edge.Enabled)
        {
            Log.Off(_logger);
            return Task.CompletedTask;
        }
        var domain = xmppOptions.Value.Domain;
        var ready = readiness.Register("Edge client listeners");

        var tls = tlsOptions.Value;
        var certificates = new CertificateProvider(
            new CertificateSettings(domain, daemonOptions.Value.DataDirectoryFullPath) { CertificatePath = tls.CertificatePath, KeyPath = tls.KeyPath },
            loggerFactory.CreateLogger<CertificateProvider>());
        _pool = new UpstreamPool(UpstreamSettingsFor(edge), loggerFactory.CreateLogger<UpstreamPool>(), metrics);
        Streams = new ClientStreamHandler(StreamSettingsFor(edge, domain), _pool, loggerFactory.CreateLogger<ClientStreamHandler>(), metrics);
        _transport = new ClientTransport(TransportSettingsFor(edge), Streams, certificates, loggerFactory.CreateLogger<ClientTransport>(), slots: Connections);
        _heartbeat = new Heartbeat(loggerFactory.CreateLogger<Heartbeat>());
        _heartbeat.Register(_transport);
        _heartbeat.Register(certificates);
        Volatile.Write(ref _certificates, certificates);
        _heartbeat.Start();

        _opening = OpenWhenUpstreamReadyAsync(edge, ready);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_transport is null)
        {
            return;
        }
        await _stopping.CancelAsync();
        await _opening;

        var drain = TimeSpan.FromSeconds(edgeOptions.Value.ShutdownDrainSeconds);
        Log.Stopping(_logger, _transport.ConnectionCount, drain);
        // Listeners close and every stream is told system-shutdown at once; the pool closes the
        // sessions still open, then its links, while the clients drain.
        var clients = _transport.ShutdownAsync(drain);
        await _pool!.StopAsync(cancellationToken);
        await clients;
        await _heartbeat!.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (_transport is not null)
        {
            await _transport.DisposeAsync();
        }
        if (_pool is not null)
        {
            await _pool.DisposeAsync();
        }
        if (_heartbeat is not null)
        {
            await _heartbeat.DisposeAsync();
        }
        _stopping.Dispose();
    }

    private async Task OpenWhenUpstreamReadyAsync(EdgeOptions edge, ReadinessToken ready)
    {
        var pool = _pool!;
        Log.WaitingForUpstream(_logger, pool.LinksUp);
        try
        {
            await pool.StartAsync(_stopping.Token);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        try
        {
            Listen(edge, ClientPortKey, edge.ClientPort, TransportKind.Tcp);
            if (edge.DirectTlsPort != 0)
            {
                Listen(edge, DirectTlsPortKey, edge.DirectTlsPort, TransportKind.DirectTls);
            }
        }
        catch (InvalidOperationException e)
        {
            // A port in use or not allowed: nothing to serve clients with.
            Log.ListenFailed(_logger, e.Message);
            lifetime.StopApplication();
            return;
        }
        ready.SetReady();
    }

    private void Listen(EdgeOptions edge, string key, int port, TransportKind kind)
    {
        var listener = _transport!.Listen(endpoints.BindEndPoint(edge.ListenAddress, port), kind);
        endpoints.Record(key, listener.LocalEndPoint);
        Log.Listening(_logger, kind, listener.LocalEndPoint, key);
    }

    private UpstreamSettings UpstreamSettingsFor(EdgeOptions edge)
    {
        var upstream = upstreamOptions.Value;
        var host = upstream.Host;
        var port = upstream.Port;
        // Ports the system picked (tests): the embedded core is where it says it is, not on Upstream:Port.
        if (testingOptions.Value.EphemeralPorts && coreOptions.Value.Enabled && endpoints.TryGet(CorePortKey, out var core))
        {
            host = (core.Address.Equals(IPAddress.Any) ? IPAddress.Loopback : core.Address.Equals(IPAddress.IPv6Any) ? IPAddress.IPv6Loopback : core.Address).ToString();
            port = core.Port;
        }
        return new UpstreamSettings
        {
            Host = host,
            Port = port,
            Secret = secrets.GetSecret(),
            CmName = edge.Name,
            Links = upstream.Links,
            Keepalive = TimeSpan.FromSeconds(upstream.KeepaliveSeconds),
            DeadAfter = TimeSpan.FromSeconds(upstream.DeadAfterSeconds),
        };
    }

    internal static StreamSettings StreamSettingsFor(EdgeOptions edge, string domain) => new()
    {
        Domain = domain,
        MaxStanzaBytes = edge.MaxStanzaBytes,
        NegotiationTimeout = TimeSpan.FromSeconds(edge.NegotiationTimeoutSeconds),
        IdleTimeout = TimeSpan.FromSeconds(edge.IdleTimeoutSeconds),
        MaxUnauthenticatedPerIp = edge.MaxUnauthenticatedPerIp,
        MaxPendingOutputBytes = edge.MaxPendingOutputBytes,
    };

    internal static TransportSettings TransportSettingsFor(EdgeOptions edge) => new()
    {
        MaxConnections = edge.MaxConnections,
        MaxStanzaBytes = edge.MaxStanzaBytes,
        MaxPendingOutputBytes = edge.MaxPendingOutputBytes,
        ClientRateBytesPerSecond = edge.ClientRateBytesPerSecond,
        // Edge:ClientRateBytesPerSecond promises that a burst of one maximum-size stanza passes at once.
        ClientRateBurstSeconds = edge.ClientRateBytesPerSecond == 0
            ? 1
            : Math.Max(1, (edge.MaxStanzaBytes + edge.ClientRateBytesPerSecond - 1) / edge.ClientRateBytesPerSecond),
        ProxyProtocol = edge.ProxyProtocol,
    };

    private static partial class Log
    {
        [LoggerMessage(2100, LogLevel.Information, "Edge off (Edge:Enabled is false)")]
        public static partial void Off(ILogger logger);

        [LoggerMessage(2101, LogLevel.Information, "Edge waiting for a first upstream link before accepting clients ({LinksUp} up)")]
        public static partial void WaitingForUpstream(ILogger logger, int linksUp);

        [LoggerMessage(2102, LogLevel.Information, "Edge accepting {Kind} clients on {EndPoint} ({Key})")]
        public static partial void Listening(ILogger logger, TransportKind kind, IPEndPoint endPoint, string key);

        [LoggerMessage(2103, LogLevel.Critical, "Edge cannot open its client listeners: {Message}")]
        public static partial void ListenFailed(ILogger logger, string message);

        [LoggerMessage(2104, LogLevel.Information, "Edge stopping: {Connections} clients get system-shutdown and {Drain} to drain")]
        public static partial void Stopping(ILogger logger, int connections, TimeSpan drain);
    }
}
