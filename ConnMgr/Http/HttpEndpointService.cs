using System.Net;
using System.Net.Security;
using ConnMgr.Edge.Web;
using ConnMgr.Hosting;
using ConnMgr.Options;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ConnMgr.Http;

/// <summary>
/// The Kestrel listeners on <c>Edge:HttpPort</c> and <c>Edge:HttpsPort</c> (each off
/// when its port is 0; both off when the edge is disabled), serving the same routes;
/// HTTPS presents the edge's client certificate. Routes come from every registered
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
    ILoggerFactory loggerFactory,
    IHttpsCertificateSource? certificates = null) : IHostedService, IAsyncDisposable
{
    public const string ListenerKey = "Edge:HttpPort";
    public const string HttpsListenerKey = "Edge:HttpsPort";

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
        if (!edge.Enabled || (edge.HttpPort == 0 && edge.HttpsPort == 0))
        {
            Log.Off(_logger);
            return;
        }
        if (edge.HttpsPort != 0 && certificates is null)
        {
            throw new DaemonStartupException($"{HttpsListenerKey} needs the edge's TLS certificate, and no component provides one");
        }
        ReadinessToken ready = readiness.Register("Edge:HttpPort/HttpsPort listeners");
        IPEndPoint? http = edge.HttpPort == 0 ? null : endpoints.BindEndPoint(edge.ListenAddress, edge.HttpPort);
        IPEndPoint? https = edge.HttpsPort == 0 ? null : endpoints.BindEndPoint(edge.ListenAddress, edge.HttpsPort);
        _app = Build(edge, http, https);
        try
        {
            await _app.StartAsync(cancellationToken);
        }
        catch (IOException e)
        {
            string listeners = string.Join(", ", new[] { (http, ListenerKey), (https, HttpsListenerKey) }
                .Where(listener => listener.Item1 is not null).Select(listener => $"{listener.Item1} ({listener.Item2})"));
            throw new DaemonStartupException($"cannot listen on {listeners}: {e.Message}", e);
        }
        if (http is not null)
        {
            IPEndPoint bound = BoundEndPoint(_app, http, Uri.UriSchemeHttp);
            endpoints.Record(ListenerKey, bound);
            Log.Listening(_logger, Uri.UriSchemeHttp, bound);
        }
        if (https is not null)
        {
            IPEndPoint bound = BoundEndPoint(_app, https, Uri.UriSchemeHttps);
            endpoints.Record(HttpsListenerKey, bound);
            Log.Listening(_logger, Uri.UriSchemeHttps, bound);
        }
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

    private WebApplication Build(EdgeOptions edge, IPEndPoint? http, IPEndPoint? https)
    {
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Services.AddSingleton(loggerFactory);
        builder.Services.AddSingleton<IHostLifetime, FollowerLifetime>();
        builder.Services.AddRoutingCore();
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // The edge enforces Edge:MaxConnections across transports; these are Kestrel's own ceilings. A BOSH
            // session may have BoshSession.Requests requests open at once (XEP-0124 7.1), each on an
            // HTTP/1.1 connection of its own, so the HTTP ceiling leaves room for every admitted client being one.
            kestrel.Limits.MaxConcurrentConnections = (long)edge.MaxConnections * BoshSession.Requests;
            kestrel.Limits.MaxConcurrentUpgradedConnections = edge.MaxConnections;
            kestrel.Limits.MaxRequestBodySize = edge.MaxStanzaBytes + BodyWrapperBytes;
            kestrel.Limits.MaxRequestHeadersTotalSize = MaxRequestHeadersBytes;
            kestrel.Limits.MaxRequestHeaderCount = MaxRequestHeaders;
            kestrel.Limits.RequestHeadersTimeout = s_requestHeadersTimeout;
            if (http is not null)
            {
                kestrel.Listen(http, listen => listen.Protocols = HttpProtocols.Http1);
            }
            if (https is not null)
            {
                kestrel.Listen(https, listen =>
                {
                    listen.Protocols = HttpProtocols.Http1;
                    // Asked per handshake, so a reloaded certificate serves the next connection.
                    listen.UseHttps(new TlsHandshakeCallbackOptions
                    {
                        OnConnection = _ => certificates!.HttpsOptions is { } options
                            ? ValueTask.FromResult(options)
                            : ValueTask.FromException<SslServerAuthenticationOptions>(
                                new InvalidOperationException("the edge has not loaded its TLS certificate yet")),
                    });
                });
            }
        });
        WebApplication app = builder.Build();
        foreach (IHttpEndpointContributor contributor in contributors)
        {
            contributor.Configure(app);
        }
        return app;
    }

    private static IPEndPoint BoundEndPoint(WebApplication app, IPEndPoint requested, string scheme)
    {
        foreach (string address in app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [])
        {
            if (Uri.TryCreate(address, UriKind.Absolute, out Uri? uri) && uri.Scheme == scheme)
            {
                return new IPEndPoint(requested.Address, uri.Port);
            }
        }
        return requested;
    }

    /// <summary>The web application starts and stops with the daemon; only the daemon's host listens for signals.</summary>
    private sealed class FollowerLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 120, Level = LogLevel.Information, Message = "{Scheme} listener (WebSocket, BOSH, /metrics, /health) on {EndPoint}")]
        public static partial void Listening(ILogger logger, string scheme, IPEndPoint endPoint);

        [LoggerMessage(EventId = 121, Level = LogLevel.Information, Message = "HTTP listener off (Edge:HttpPort and Edge:HttpsPort are 0, or Edge:Enabled is false)")]
        public static partial void Off(ILogger logger);
    }
}
