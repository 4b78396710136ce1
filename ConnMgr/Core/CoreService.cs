using System.Net.Sockets;
using ConnMgr.Hosting;
using ConnMgr.Options;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ConnMgr.Core;

/// <summary>
/// Runs the embedded core in the daemon: resolves <see cref="CoreServerOptions"/> from
/// <c>Xmpp:Domain</c>, <c>DataDirectory</c>, <c>Core:*</c> and the link secret, starts
/// <see cref="CoreServer"/>, records <c>Core:Port</c> in <see cref="ListenerEndpoints"/> and
/// reports ready once the listener is open. Registered before the edge, so the edge's links
/// find it listening (hosted services start in registration order).
/// </summary>
internal sealed class CoreService(
    IOptions<CoreOptions> core,
    IOptions<XmppOptions> xmpp,
    IOptions<DaemonOptions> daemon,
    LinkSecretProvider secrets,
    ListenerEndpoints endpoints,
    ReadinessGate readiness,
    ILoggerFactory loggerFactory) : IHostedService
{
    internal const string EndpointKey = "Core:Port";

    private CoreServer? _server;

    /// <summary>The running server, once started; for in-process tests.</summary>
    internal CoreServer? Server => _server;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var options = core.Value;
        if (!options.Enabled)
        {
            return Task.CompletedTask;
        }
        var ready = readiness.Register($"{EndpointKey} listener");
        var endPoint = endpoints.BindEndPoint(options.ListenAddress, options.Port);
        try
        {
            _server = CoreServer.Start(new CoreServerOptions
            {
                Domain = xmpp.Value.Domain,
                Secret = secrets.GetSecret(),
                ListenEndPoint = endPoint,
                DataDirectory = daemon.Value.DataDirectoryFullPath,
                RequireClientTls = options.RequireClientTls,
            }, loggerFactory);
        }
        catch (SocketException e)
        {
            throw new DaemonStartupException($"cannot listen for links on {endPoint} ({EndpointKey}): {e.Message}", e);
        }
        endpoints.Record(EndpointKey, _server.LocalEndPoint);
        ready.SetReady();
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is { } server)
        {
            _server = null;
            await server.DisposeAsync();
        }
    }
}
