using ConnMgr.Diagnostics;
using ConnMgr.Edge.Web;
using ConnMgr.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace ConnMgr.Edge;

internal static class EdgeServiceCollectionExtensions
{
    /// <summary>
    /// Registers the edge's hosted service, which runs only when <c>Edge:Enabled</c> is true (it
    /// reads the validated options in <c>StartAsync</c>), and makes it the daemon's
    /// <see cref="IUpstreamHealth"/> for <c>/health</c>. Call it after the embedded core's
    /// registration: hosted services start in order, and the edge links to the core.
    /// </summary>
    /// <param name="configuration">Not read: the edge takes its bound and validated options; the
    /// parameter keeps every component's registration alike.</param>
    public static IServiceCollection AddEdge(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton<EdgeService>();
        services.Replace(ServiceDescriptor.Singleton<IUpstreamHealth>(provider => provider.GetRequiredService<EdgeService>()));
        services.AddHostedService(provider => provider.GetRequiredService<EdgeService>());
        services.AddSingleton<IHttpEndpointContributor, WebEndpoints>();
        services.AddSingleton<IHttpsCertificateSource>(provider => provider.GetRequiredService<EdgeService>());
        return services;
    }
}
