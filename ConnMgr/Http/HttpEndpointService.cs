using System.Net;
using ConnMgr.Hosting;
using ConnMgr.Options;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ConnMgr.Http;

/// <summary>
/// The Kestrel listener on <c>Edge:HttpPort</c> (off when the port is 0 or the
/// edge is disabled). Routes come from every registered
/// <see cref="IHttpEndpointContributor"/>: <c>/metrics</c> and <c>/health</c>
/// here, WebSocket and BOSH from the edge.
/// </summary>
/// <remarks>
/// Kestrel runs in a web application of its own inside this hosted service, so
/// that the daemon stays a plain generic host whether or not HTTP is on. The web
/// application shares the daemon's logger factory and follows the daemon's
/// lifetime; it does not handle signals itself.
/// </remarks>
internal sealed partial class HttpEndpointService(
    IOptions<EdgeOptions> edgeOptions,
    ListenerEndpoints endpoints,
    ReadinessGate readiness,
    IEnumerable<IHttpEndpointContributor> contributors,
    ILoggerFactory loggerFactory) : IHostedService, IAsyncDisposable
{
    public const string ListenerKey = "Edge:HttpPort";

    // Request heads: metrics scrapers, health checks and WebSocket/BOSH clients
    // send a few hundred bytes; 16 KiB (half Kestrel's default) still leaves room
    // for proxies' forwarding headers and large cookies.
    private const int MaxRequestHeadersBytes = 16 * 1024;
    private const int MaxRequestHeaders = 50;

    // A BOSH request body is a <body/> wrapper around client stanzas; the wrapper
    // needs well under the 16 KiB added to one maximal stanza.
    private const int BodyWrapperBytes = 16 * 1024;

    // Time allowed for a request's head to arrive; Kestrel's default is 30 s.
    private static readonly TimeSpan s_requestHeadersTimeout = TimeSpan.FromSeconds(10);

    private readonly ILogger _logger = loggerFactory.CreateLogger<HttpEndpointService>();
    private WebApplication? _app;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        EdgeOptions edge = edgeOptions.Value;
        if (!edge.Enabled || edge.HttpPort == 0)
        {
            Log.Off(_logger);
            return;
        }
        ReadinessToken ready = readiness.Register(ListenerKey + " listener");
        IPEndPoint bindTo = endpoints.BindEndPoint(edge.ListenAddress, edge.HttpPort);
        _app = Build(edge, bindTo);
        try
        {
            await _app.StartAsync(cancellationToken);
        }
        catch (IOException e)
        {
            throw new DaemonStartupException($"cannot listen on {bindTo} ({ListenerKey}): {e.Message}", e);
        }
        IPEndPoint bound = BoundEndPoint(_app, bindTo);
        endpoints.Record(ListenerKey, bound);
        Log.Listening(_logger, bound);
        ready.SetReady();
    }

    public Task StopAsync(CancellationToken cancellationToken) =>
        _app is null ? Task.CompletedTask : _app.StopAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }
    }

    private WebApplication Build(EdgeOptions edge, IPEndPoint bindTo)
    {
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Services.AddSingleton(loggerFactory);
        builder.Services.AddSingleton<IHostLifetime, FollowerLifetime>();
        builder.Services.AddRoutingCore();
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // The edge enforces Edge:MaxConnections across transports; this is Kestrel's own ceiling.
            kestrel.Limits.MaxConcurrentConnections = edge.MaxConnections;
            kestrel.Limits.MaxConcurrentUpgradedConnections = edge.MaxConnections;
            kestrel.Limits.MaxRequestBodySize = edge.MaxStanzaBytes + BodyWrapperBytes;
            kestrel.Limits.MaxRequestHeadersTotalSize = MaxRequestHeadersBytes;
            kestrel.Limits.MaxRequestHeaderCount = MaxRequestHeaders;
            kestrel.Limits.RequestHeadersTimeout = s_requestHeadersTimeout;
            kestrel.Listen(bindTo, listen => listen.Protocols = HttpProtocols.Http1);
        });
        WebApplication app = builder.Build();
        foreach (IHttpEndpointContributor contributor in contributors)
        {
            contributor.Configure(app);
        }
        return app;
    }

    private static IPEndPoint BoundEndPoint(WebApplication app, IPEndPoint requested)
    {
        string? address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        return address is not null && Uri.TryCreate(address, UriKind.Absolute, out Uri? uri)
            ? new IPEndPoint(requested.Address, uri.Port)
            : requested;
    }

    /// <summary>The web application starts and stops with the daemon; only the daemon's host listens for signals.</summary>
    private sealed class FollowerLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 120, Level = LogLevel.Information, Message = "HTTP listener (WebSocket, BOSH, /metrics, /health) on {EndPoint}")]
        public static partial void Listening(ILogger logger, IPEndPoint endPoint);

        [LoggerMessage(EventId = 121, Level = LogLevel.Information, Message = "HTTP listener off (Edge:HttpPort is 0 or Edge:Enabled is false)")]
        public static partial void Off(ILogger logger);
    }
}
