using System.Net;
using ConnMgr.Core;
using ConnMgr.Core.Storage;
using ConnMgr.Tests.Core.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ConnMgr.Tests.Core;

/// <summary>An embedded core on a loopback ephemeral port with a fresh data directory and fast store settings.</summary>
internal sealed class CoreTestServer : IAsyncDisposable
{
    public const string Secret = "s3cret";
    public const string Domain = "localhost";
    public const string Password = "pencil";

    private readonly Func<CoreServerOptions, CoreServerOptions>? _configure;
    private readonly ILoggerFactory _loggerFactory;
    private readonly bool _ownsDirectory;

    private CoreTestServer(string directory, bool ownsDirectory, Func<CoreServerOptions, CoreServerOptions>? configure, ILoggerFactory? loggerFactory)
    {
        DataDirectory = directory;
        _ownsDirectory = ownsDirectory;
        _configure = configure;
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        Server = StartServer(null);
    }

    public string DataDirectory { get; }

    public CoreServer Server { get; private set; }

    public XmppStore Store => Server.Store;

    public IPEndPoint EndPoint => Server.LocalEndPoint;

    public static XmppStoreOptions StoreOptions { get; } = StoreTestSupport.Fast();

    /// <param name="configure">Changes to the default test options (a <c>with</c> expression on a copy).</param>
    /// <param name="loggerFactory">Where the core logs; nowhere by default.</param>
    public static CoreTestServer Start(Func<CoreServerOptions, CoreServerOptions>? configure = null, string? directory = null, ILoggerFactory? loggerFactory = null)
        => new(directory ?? StoreTestSupport.CreateTempDirectory(), directory is null, configure, loggerFactory);

    /// <summary>Stops the core and starts a new one on the same data directory (and port).</summary>
    public async Task RestartAsync()
    {
        var port = Server.LocalEndPoint.Port;
        await Server.DisposeAsync();
        Server = StartServer(port);
    }

    public Task<TestCmLink> OpenLinkAsync(string linkJid = "cm1/link-1") => TestCmLink.OpenAsync(EndPoint, Secret, linkJid);

    public async Task AddUsersAsync(params string[] names)
    {
        foreach (var name in names)
        {
            await Store.AddUserAsync(name, Password);
        }
    }

    private CoreServer StartServer(int? port)
    {
        var options = new CoreServerOptions
        {
            Domain = Domain,
            Secret = Secret,
            ListenEndPoint = new IPEndPoint(IPAddress.Loopback, port ?? 0),
            DataDirectory = DataDirectory,
            StoreOptions = StoreOptions,
            TimerResolution = TimeSpan.FromMilliseconds(50),
        };
        return CoreServer.Start(_configure?.Invoke(options) ?? options, _loggerFactory);
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        if (_ownsDirectory)
        {
            StoreTestSupport.DeleteDirectory(DataDirectory);
        }
    }
}
