using ConnMgr.Options;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ConnMgr.Hosting;

/// <summary>
/// The daemon's own lines in the journal: what it starts as, which keys it
/// ignores, and when it stops. <see cref="ReadinessGate"/> logs when it is ready.
/// </summary>
internal sealed partial class DaemonLifecycleLog(
    IConfiguration configuration,
    IOptions<DaemonOptions> daemon,
    IOptions<XmppOptions> xmpp,
    IOptions<EdgeOptions> edge,
    IOptions<CoreOptions> core,
    IHostApplicationLifetime lifetime,
    ILogger<DaemonLifecycleLog> logger) : IHostedService
{
    private CancellationTokenRegistration _onStopping;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        string version = typeof(DaemonLifecycleLog).Assembly.GetName().Version?.ToString(3) ?? "?";
        Log.Starting(logger, version, xmpp.Value.Domain, edge.Value.Enabled ? edge.Value.Name : "off",
            core.Value.Enabled ? "on" : "off", daemon.Value.DataDirectoryFullPath);
        foreach (string key in OptionsRegistration.FindUnknownKeys(configuration))
        {
            Log.UnknownKey(logger, key);
        }
        _onStopping = lifetime.ApplicationStopping.Register(() => Log.Stopping(logger));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _onStopping.Dispose();
        return Task.CompletedTask;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 100, Level = LogLevel.Information,
            Message = "connmgr {Version} starting: domain {Domain}, edge {Edge}, core {Core}, data in {DataDirectory}")]
        public static partial void Starting(ILogger logger, string version, string domain, string edge, string core, string dataDirectory);

        [LoggerMessage(EventId = 101, Level = LogLevel.Warning, Message = "Configuration key {Key} is not a known setting and is ignored")]
        public static partial void UnknownKey(ILogger logger, string key);

        [LoggerMessage(EventId = 103, Level = LogLevel.Information, Message = "Stopping")]
        public static partial void Stopping(ILogger logger);
    }
}
