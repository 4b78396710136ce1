using ConnMgr.Http;
using ConnMgr.Options;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ConnMgr.Edge.Web;

/// <summary>
/// Puts the <see cref="WebTransport"/> on the daemon's HTTP listener (<c>Edge:HttpPort</c>), with
/// the edge's stream layer once the edge has started.
/// </summary>
internal sealed class WebEndpoints(
    IOptions<EdgeOptions> edgeOptions,
    IOptions<XmppOptions> xmppOptions,
    EdgeService edge,
    IHostApplicationLifetime lifetime,
    ILoggerFactory loggerFactory) : IHttpEndpointContributor, IAsyncDisposable
{
    private WebTransport? _transport;

    public void Configure(WebApplication app)
    {
        var options = edgeOptions.Value;
        _transport = new WebTransport(SettingsFor(options, xmppOptions.Value.Domain), () => edge.Streams, loggerFactory, lifetime.ApplicationStopping, edge.Connections);
        _transport.Map(app);
    }

    public ValueTask DisposeAsync() => _transport?.DisposeAsync() ?? ValueTask.CompletedTask;

    internal static WebSettings SettingsFor(EdgeOptions edge, string domain) => new()
    {
        Domain = domain,
        MaxStanzaBytes = edge.MaxStanzaBytes,
        MaxPendingOutputBytes = edge.MaxPendingOutputBytes,
        AllowedOrigins = edge.AllowedOriginList,
        TrustAllAsSecure = edge.HttpCountsAsEncrypted,
    };
}
