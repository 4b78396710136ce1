using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace ConnMgr.Core;

internal static class CoreServiceCollectionExtensions
{
    /// <summary>
    /// Registers the embedded core's hosted service unless <c>Core:Enabled</c> is false. A value
    /// that is not a boolean registers it anyway: the options validator then stops start-up
    /// with a message naming the key.
    /// </summary>
    public static IServiceCollection AddEmbeddedCore(this IServiceCollection services, IConfiguration configuration)
    {
        if (bool.TryParse(configuration["Core:Enabled"], out var enabled) && !enabled)
        {
            return services;
        }
        services.AddHostedService<CoreService>();
        return services;
    }
}
