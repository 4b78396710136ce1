using ConnMgr.Core;
using ConnMgr.Diagnostics;
using ConnMgr.Edge;
using ConnMgr.Http;
using ConnMgr.Options;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace ConnMgr.Hosting;

/// <summary>
/// The composition root: builds the daemon's generic host from its arguments.
/// <c>connmgr run</c> and <c>connmgr check-config</c> use it, and so do in-process
/// tests (<c>--Testing:EphemeralPorts=true</c>, ports from <see cref="ListenerEndpoints"/>).
/// </summary>
/// <remarks>
/// Hosted services start in registration order and stop in reverse. A
/// component adds its own here, after the HTTP endpoint, and decides in its
/// <c>StartAsync</c> (options are validated by then) whether it runs at all.
/// </remarks>
internal static class DaemonHost
{
    // Added to Edge:ShutdownDrainSeconds for the host's stop deadline: closing
    // streams and links and flushing logs after the drain itself.
    private const int ShutdownMarginSeconds = 5;

    /// <param name="args">Settings only (<c>--config FILE</c>, <c>--Section:Key=value</c>), no command.</param>
    /// <param name="extra">Registrations applied last, which therefore win: test doubles.</param>
    /// <exception cref="ConfigurationLoadException">The arguments or the config file cannot be read.</exception>
    public static IHost Build(string[] args, Action<IServiceCollection, IConfiguration>? extra = null)
    {
        ConfigurationManager configuration = DaemonConfiguration.Load(args);
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            // No appsettings.json, no DOTNET_ or unprefixed environment variables,
            // no default console logger: configuration comes from exactly the
            // sources DaemonConfiguration documents.
            DisableDefaults = true,
            Configuration = configuration,
            ApplicationName = "connmgr",
            ContentRootPath = Environment.CurrentDirectory,
        });
        builder.ConfigureContainer(new DefaultServiceProviderFactory(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true }));

        builder.Services.AddConnMgrOptions(builder.Configuration);
        DaemonLogging.Configure(builder.Logging, builder.Configuration);
        builder.Services.Configure<ConsoleLifetimeOptions>(options => options.SuppressStatusMessages = true);
        builder.Services.AddOptions<HostOptions>().Configure<UnvalidatedOptions<EdgeOptions>>((host, edge) =>
            host.ShutdownTimeout = TimeSpan.FromSeconds(Math.Clamp(edge.Create().ShutdownDrainSeconds, 0, 300) + ShutdownMarginSeconds));

        builder.Services.AddSingleton<ListenerEndpoints>();
        builder.Services.AddSingleton<ReadinessGate>();
        builder.Services.AddSingleton<LinkSecretProvider>();
        builder.Services.AddSingleton<ConnMgrMetrics>();
        builder.Services.AddSingleton<PrometheusExporter>();
        builder.Services.TryAddSingleton<IUpstreamHealth, NoUpstreamLinks>();
        builder.Services.AddSingleton(SystemdSettings.FromEnvironment());
        builder.Services.AddSingleton<IHttpEndpointContributor, DiagnosticsEndpoints>();

        builder.Services.AddHostedService<DaemonLifecycleLog>();
        builder.Services.AddHostedService<SystemdNotifier>();
        builder.Services.AddHostedService<HttpEndpointService>();
        // The core before the edge: hosted services start in order, and the edge links to the core.
        builder.Services.AddEmbeddedCore(builder.Configuration);
        builder.Services.AddEdge(builder.Configuration);

        extra?.Invoke(builder.Services, builder.Configuration);
        return builder.Build();
    }
}
