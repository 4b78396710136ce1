using System.Net;
using ConnMgr.Edge.Streams;
using ConnMgr.Edge.Tls;
using ConnMgr.Edge.Transport;
using ConnMgr.Edge.Upstream;
using ConnMgr.Tests.OpenfireDouble;
using Microsoft.Extensions.Logging.Abstractions;
using NUnit.Framework;
using ClientTransport = ConnMgr.Edge.Transport.ClientTransport;

namespace ConnMgr.Tests.EndToEnd;

/// <summary>
/// The whole edge on loopback, built from its real parts as <c>EdgeService</c> builds them (pool,
/// stream layer, transport, heartbeat, certificate), linked to the Openfire double.
/// </summary>
internal sealed class EdgeHarness : IAsyncDisposable
{
    private static readonly Lazy<string> s_certificateDirectory = new(CreateCertificateDirectory);

    private EdgeHarness(OpenfireDoubleServer server, UpstreamPool pool, ClientStreamHandler streams, ClientTransport transport, Heartbeat heartbeat)
    {
        Server = server;
        Pool = pool;
        Streams = streams;
        Transport = transport;
        Heartbeat = heartbeat;
    }

    public OpenfireDoubleServer Server { get; }

    public UpstreamPool Pool { get; }

    public ClientStreamHandler Streams { get; }

    public ClientTransport Transport { get; }

    public Heartbeat Heartbeat { get; }

    public IPEndPoint ClientEndPoint { get; private set; } = null!;

    public IPEndPoint DirectTlsEndPoint { get; private set; } = null!;

    public string Domain => Server.Options.Domain;

    public static async Task<EdgeHarness> StartAsync(
        OpenfireDoubleOptions? server = null,
        Func<StreamSettings, StreamSettings>? streams = null,
        Func<TransportSettings, TransportSettings>? transport = null,
        int links = 2)
    {
        var double_ = OpenfireDoubleServer.Start(server ?? new OpenfireDoubleOptions());
        var pool = new UpstreamPool(new UpstreamSettings
        {
            Host = "127.0.0.1",
            Port = double_.Port,
            Secret = double_.Options.Secret!,
            CmName = "edge1",
            Links = links,
            LinkTls = LinkTlsMode.Never,
        }, NullLogger<UpstreamPool>.Instance);
        await pool.StartAsync(CancellationToken.None).WaitAsync(XmppTestClient.Timeout);

        var streamSettings = new StreamSettings { Domain = double_.Options.Domain };
        var handler = new ClientStreamHandler(streams?.Invoke(streamSettings) ?? streamSettings, pool, NullLogger<ClientStreamHandler>.Instance);
        var certificates = new CertificateProvider(new CertificateSettings(double_.Options.Domain, s_certificateDirectory.Value), NullLogger<CertificateProvider>.Instance);
        var transportSettings = new TransportSettings();
        var clientTransport = new ClientTransport(transport?.Invoke(transportSettings) ?? transportSettings, handler, certificates, NullLogger<ClientTransport>.Instance);
        var heartbeat = new Heartbeat(NullLogger<Heartbeat>.Instance);
        heartbeat.Register(clientTransport);
        heartbeat.Start();

        var harness = new EdgeHarness(double_, pool, handler, clientTransport, heartbeat);
        harness.ClientEndPoint = clientTransport.Listen(new IPEndPoint(IPAddress.Loopback, 0), TransportKind.Tcp).LocalEndPoint;
        harness.DirectTlsEndPoint = clientTransport.Listen(new IPEndPoint(IPAddress.Loopback, 0), TransportKind.DirectTls).LocalEndPoint;
        return harness;
    }

    public Task<XmppTestClient> ConnectAsync(bool directTls = false, byte[]? proxyHeader = null, int receiveBufferSize = 0)
        => XmppTestClient.ConnectAsync(directTls ? DirectTlsEndPoint : ClientEndPoint, directTls, proxyHeader, Domain, receiveBufferSize);

    /// <summary>A client logged in over STARTTLS (or Direct TLS) with a bound resource.</summary>
    public async Task<XmppTestClient> LoginAsync(string user, string resource = "test", bool directTls = false, int receiveBufferSize = 0)
    {
        var client = await ConnectAsync(directTls, receiveBufferSize: receiveBufferSize);
        await client.LoginAsync(user, resource: resource);
        return client;
    }

    /// <summary>Sends a message from <paramref name="from"/> to <paramref name="to"/> and returns what <paramref name="to"/> received.</summary>
    public static async Task<string> ExchangeAsync(XmppTestClient from, XmppTestClient to, string body)
    {
        await from.SendAsync($"<message to='{to.Jid}' type='chat' id='m-{body}'><body>{body}</body></message>");
        return await to.NextMessageAsync($"<body>{body}</body>");
    }

    /// <summary>No link has been closed or dropped on the double's side (spec 2: a bad client must never cost a link).</summary>
    public void AssertLinksIntact()
    {
        Assert.That(Server.Links.Where(l => l.CloseReason != OpenfireDouble.LinkCloseReason.None), Is.Empty, "links closed: " + string.Join(", ", Server.Faults));
        Assert.That(Server.Counters.LinksClosed, Is.Zero);
        Assert.That(Pool.LinksUp, Is.EqualTo(Server.Links.Count(l => l.IsAuthenticated)));
    }

    public async ValueTask DisposeAsync()
    {
        await Transport.ShutdownAsync(TimeSpan.FromSeconds(2));
        await Transport.DisposeAsync();
        await Pool.DisposeAsync();
        await Heartbeat.DisposeAsync();
        await Server.DisposeAsync();
    }

    /// <summary>One generated certificate for every test (a key per test would cost for nothing); removed at exit.</summary>
    private static string CreateCertificateDirectory()
    {
        var directory = Path.Combine(Path.GetTempPath(), "connmgr-edge-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(directory, recursive: true);
            }
            catch (IOException)
            {
            }
        };
        return directory;
    }
}
