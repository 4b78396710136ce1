using ConnMgr.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;

namespace ConnMgr.Http;

/// <summary>
/// <c>GET /metrics</c> (Prometheus text format) and <c>GET /health</c>: 200 <c>ok</c>
/// while at least one upstream link is up, 503 otherwise and during shutdown,
/// so that a load balancer stops sending clients to an edge that cannot serve them.
/// </summary>
internal sealed class DiagnosticsEndpoints(PrometheusExporter exporter, IUpstreamHealth upstream, IHostApplicationLifetime lifetime)
    : IHttpEndpointContributor
{
    public void Configure(WebApplication app)
    {
        app.MapGet("/metrics", context =>
        {
            context.Response.ContentType = PrometheusExporter.ContentType;
            return context.Response.WriteAsync(exporter.Render(), context.RequestAborted);
        });
        app.MapGet("/health", context =>
        {
            (int status, string body) = lifetime.ApplicationStopping.IsCancellationRequested
                ? (StatusCodes.Status503ServiceUnavailable, "stopping\n")
                : upstream.LinksUp > 0
                    ? (StatusCodes.Status200OK, "ok\n")
                    : (StatusCodes.Status503ServiceUnavailable, "no upstream link\n");
            context.Response.StatusCode = status;
            context.Response.ContentType = "text/plain; charset=utf-8";
            return context.Response.WriteAsync(body, context.RequestAborted);
        });
    }
}
