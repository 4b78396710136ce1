using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Runtime;
using System.Security.Cryptography;
using System.Text;
using ConnMgr.Core;
using ConnMgr.Edge.Streams;
using ConnMgr.Edge.Tls;
using ConnMgr.Edge.Transport;
using ConnMgr.Edge.Upstream;
using ConnMgr.Edge.Web;
using ConnMgr.Protocol.Sasl;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace ConnMgr.Benchmarks.Memory;

/// <summary>
/// Memory held by idle, logged-in clients of the whole edge (transport, stream layer, upstream
/// session): <c>dotnet run -c Release --project ConnMgr.Benchmarks -- idle-memory --edge --count 10000 [--tls | --websocket]</c>.
/// </summary>
/// <remarks>
/// This process runs the edge as <c>EdgeService</c> builds it: the upstream pool, the stream layer,
/// the transport and its heartbeat. A child process (this program again, with <c>--client</c>) runs
/// the embedded core, so the core's sessions do not count, and the clients, so their sockets and TLS
/// state do not count either. Every client logs in and binds a resource, then idles: plain TCP with
/// SCRAM-SHA-1 (PLAIN is refused in clear), Direct TLS with PLAIN, or WebSocket (RFC 7395, on a
/// Kestrel listener as the daemon's <c>Edge:HttpPort</c>; loopback counts as encrypted) with PLAIN. Measured as in
/// <see cref="IdleConnectionsBenchmark"/>: forced compacting GCs around the run, per connection the
/// managed heap, the GC's committed memory, the process RSS, and their difference (native: OpenSSL
/// with --tls). Kernel socket buffers are not in RSS.
/// </remarks>
internal static class EdgeIdleMemoryBenchmark
{
    private const string Domain = "localhost";
    private const string User = "bench";
    private const string Password = "bench-password";

    /// <summary>Logins in flight at once: the core's SQLite reads and the links stay busy without piling up.</summary>
    private const int LoginParallelism = 64;

    public static int Run(int count, bool tls, bool client, bool webSocket = false)
        => client ? RunClientAsync(count, tls, webSocket).GetAwaiter().GetResult() : RunServerAsync(count, tls, webSocket).GetAwaiter().GetResult();

    private static async Task<int> RunServerAsync(int count, bool tls, bool webSocket)
    {
        using var process = StartClientProcess(count, tls, webSocket);
        var core = (await process.StandardOutput.ReadLineAsync())?.Split(' ');
        if (core is not ["core", var corePort, var secret])
        {
            Console.Error.WriteLine($"client process failed: {string.Join(' ', core ?? [])} {await process.StandardError.ReadToEndAsync()}");
            return 1;
        }

        var directory = Directory.CreateTempSubdirectory("connmgr-edge-memory-");
        await using var pool = new UpstreamPool(new UpstreamSettings
        {
            Host = "127.0.0.1",
            Port = int.Parse(corePort, CultureInfo.InvariantCulture),
            Secret = secret,
            CmName = "bench",
            LinkTls = LinkTlsMode.Never,
        }, NullLogger<UpstreamPool>.Instance);
        await pool.StartAsync(CancellationToken.None);
        var streams = new ClientStreamHandler(new StreamSettings
        {
            Domain = Domain,
            MaxUnauthenticatedPerIp = 0,
            // No idle pings while the logins of a large run are still under way.
            IdleTimeout = TimeSpan.Zero,
            NegotiationTimeout = TimeSpan.FromMinutes(10),
        }, pool, NullLogger<ClientStreamHandler>.Instance);
        var certificates = tls ? new CertificateProvider(new CertificateSettings(Domain, directory.FullName), NullLogger<CertificateProvider>.Instance) : null;
        var transport = new ClientTransport(new TransportSettings { MaxConnections = count + 100 }, streams, certificates, NullLogger<ClientTransport>.Instance);
        await using var heartbeat = new Heartbeat(NullLogger<Heartbeat>.Instance);
        heartbeat.Register(transport);
        heartbeat.Start();
        var listener = transport.Listen(new IPEndPoint(IPAddress.Loopback, 0), tls ? TransportKind.DirectTls : TransportKind.Tcp);
        await using var web = webSocket ? await WebListener.StartAsync(streams, count) : null;
        Func<int> connections = web is null ? () => transport.ConnectionCount : () => web.Transport.SessionCount;

        await process.StandardInput.WriteLineAsync($"listen {(web is null ? listener.LocalEndPoint.Port : web.Port)}");
        await process.StandardInput.FlushAsync();
        if (await process.StandardOutput.ReadLineAsync() != "warm")
        {
            Console.Error.WriteLine($"warm-up failed: {await process.StandardError.ReadToEndAsync()}");
            return 1;
        }
        await WaitForAsync(() => connections() == 0 && pool.SessionCount == 0);
        var before = IdleConnectionsBenchmark.Snapshot.Take();

        var watch = Stopwatch.StartNew();
        await process.StandardInput.WriteLineAsync("go");
        await process.StandardInput.FlushAsync();
        var ready = await process.StandardOutput.ReadLineAsync();
        if (ready != "ready")
        {
            Console.Error.WriteLine($"logins failed: {ready} {await process.StandardError.ReadToEndAsync()}");
            return 1;
        }
        var loginTime = watch.Elapsed;
        await WaitForAsync(() => connections() == count && pool.SessionCount == count);
        // Let the last flushes, pipe completions and thread-pool work settle before measuring.
        await Task.Delay(TimeSpan.FromSeconds(2));
        var after = IdleConnectionsBenchmark.Snapshot.Take();

        Report(count, webSocket ? "WebSocket (PLAIN)" : tls ? "Direct TLS (PLAIN)" : "plain TCP (SCRAM-SHA-1)", before, after, transport, loginTime);

        process.StandardInput.Close();
        await process.WaitForExitAsync();
        await transport.ShutdownAsync(TimeSpan.FromSeconds(5));
        await transport.DisposeAsync();
        directory.Delete(recursive: true);
        return 0;
    }

    private static void Report(int count, string kind, IdleConnectionsBenchmark.Snapshot before, IdleConnectionsBenchmark.Snapshot after,
        ClientTransport transport, TimeSpan loginTime)
    {
        var n = (double)count;
        string PerConnection(long delta) => string.Create(CultureInfo.InvariantCulture, $"{delta / n / 1024,8:F2} KiB");

        var committed = after.CommittedBytes - before.CommittedBytes;
        var rss = after.RssBytes - before.RssBytes;
        Console.WriteLine($"idle-memory --edge: {count} idle logged-in {kind} clients through the edge, .NET {Environment.Version}, server GC {GCSettings.IsServerGC}");
        Console.WriteLine($"  per connection   managed (GetTotalMemory) {PerConnection(after.ManagedBytes - before.ManagedBytes)}");
        Console.WriteLine($"                   GC heap size             {PerConnection(after.HeapSizeBytes - before.HeapSizeBytes)}");
        Console.WriteLine($"                   GC committed             {PerConnection(committed)}");
        Console.WriteLine($"                   process RSS              {PerConnection(rss)}");
        Console.WriteLine($"                   native (RSS - committed) {PerConnection(rss - committed)}");
        Console.WriteLine($"  totals           RSS {before.RssBytes / 1048576.0:F1} -> {after.RssBytes / 1048576.0:F1} MiB, GC heap {before.HeapSizeBytes / 1048576.0:F1} -> {after.HeapSizeBytes / 1048576.0:F1} MiB");
        Console.WriteLine($"  transport blocks rented while idle: {transport.BufferPool.RentedBlocks}; logins took {loginTime.TotalSeconds:F1} s");
    }

    // ---- the child: the core and the clients -----------------------------------------------------

    private static async Task<int> RunClientAsync(int count, bool tls, bool webSocket)
    {
        var directory = Directory.CreateTempSubdirectory("connmgr-edge-memory-core-");
        var secret = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        await using (var core = CoreServer.Start(new CoreServerOptions
        {
            Domain = Domain,
            Secret = secret,
            ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
            DataDirectory = directory.FullName,
            RequireClientTls = false,
        }, NullLoggerFactory.Instance))
        {
            await core.Store.AddUserAsync(User, Password);
            Console.WriteLine($"core {core.LocalEndPoint.Port} {secret}");

            var listen = (await Console.In.ReadLineAsync())?.Split(' ');
            var endPoint = new IPEndPoint(IPAddress.Loopback, int.Parse(listen![1], CultureInfo.InvariantCulture));
            var cache = new ScramSaltedPasswordCache();
            await (await LoginAnyAsync(endPoint, tls, webSocket, "warm-up", cache)).DisposeAsync();
            Console.WriteLine("warm");

            await Console.In.ReadLineAsync();
            var clients = new IAsyncDisposable[count];
            await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = LoginParallelism },
                async (i, _) => clients[i] = await LoginAnyAsync(endPoint, tls, webSocket, "r" + i.ToString(CultureInfo.InvariantCulture), cache));
            Console.WriteLine("ready");

            // Hold the clients until the measuring side closes our standard input.
            await Console.In.ReadToEndAsync();
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }
        directory.Delete(recursive: true);
        return 0;
    }

    private static async Task<IAsyncDisposable> LoginAnyAsync(IPEndPoint endPoint, bool tls, bool webSocket, string resource, ScramSaltedPasswordCache cache)
        => webSocket ? await LoginWebSocketAsync(endPoint, resource) : await LoginAsync(endPoint, tls, resource, cache);

    /// <summary>RFC 7395: open, PLAIN (loopback counts as encrypted), open again, bind; one element per message.</summary>
    private static async Task<IAsyncDisposable> LoginWebSocketAsync(IPEndPoint endPoint, string resource)
    {
        var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol(WebTransport.SubProtocol);
        await socket.ConnectAsync(new Uri($"ws://{endPoint}{WebTransport.WebSocketPath}"), CancellationToken.None);
        const string open = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>";
        var buffer = new byte[8192];
        async Task SendAsync(string text) => await socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);
        async Task<string> ReceiveUntilAsync(string part)
        {
            while (true)
            {
                var message = new StringBuilder();
                WebSocketReceiveResult result;
                do
                {
                    result = await socket.ReceiveAsync(buffer, CancellationToken.None);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        throw new InvalidOperationException($"the edge closed the WebSocket; waiting for {part}");
                    }
                    message.Append(Encoding.UTF8.GetString(buffer, 0, result.Count));
                }
                while (!result.EndOfMessage);
                if (message.ToString().Contains(part, StringComparison.Ordinal))
                {
                    return message.ToString();
                }
            }
        }

        await SendAsync(open);
        await ReceiveUntilAsync("<stream:features");
        var plain = Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{User}\0{Password}"));
        await SendAsync($"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>");
        await ReceiveUntilAsync("<success");
        await SendAsync(open);
        await ReceiveUntilAsync("<stream:features");
        await SendAsync($"<iq xmlns='jabber:client' type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>");
        await ReceiveUntilAsync("<jid>");
        return new WebSocketClient(socket);
    }

    private sealed class WebSocketClient(ClientWebSocket socket) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            socket.Abort();
            socket.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>The web transport on a Kestrel listener, as the daemon's HTTP listener carries it.</summary>
    private sealed class WebListener : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly CancellationTokenSource _stopping;

        private WebListener(WebApplication app, WebTransport transport, int port, CancellationTokenSource stopping)
        {
            _app = app;
            Transport = transport;
            Port = port;
            _stopping = stopping;
        }

        public WebTransport Transport { get; }

        public int Port { get; }

        public static async Task<WebListener> StartAsync(ClientStreamHandler streams, int count)
        {
            var stopping = new CancellationTokenSource();
            var transport = new WebTransport(new WebSettings { Domain = Domain }, () => streams, NullLoggerFactory.Instance, stopping.Token);
            var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
            builder.Services.AddSingleton<ILoggerFactory>(NullLoggerFactory.Instance);
            builder.Services.AddRoutingCore();
            builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
            {
                kestrel.Limits.MaxConcurrentConnections = count + 100;
                kestrel.Limits.MaxConcurrentUpgradedConnections = count + 100;
                kestrel.Listen(IPAddress.Loopback, 0);
            });
            var app = builder.Build();
            transport.Map(app);
            await app.StartAsync();
            var server = app.Services.GetRequiredService<IServer>();
            var address = server.Features.Get<IServerAddressesFeature>()!.Addresses.First();
            return new WebListener(app, transport, new Uri(address).Port, stopping);
        }

        public async ValueTask DisposeAsync()
        {
            await _stopping.CancelAsync();
            await _app.StopAsync();
            await _app.DisposeAsync();
            await Transport.DisposeAsync();
            _stopping.Dispose();
        }
    }

    /// <summary>Stream header, SASL, restart, bind; returns the open stream of the logged-in client.</summary>
    private static async Task<Stream> LoginAsync(IPEndPoint endPoint, bool tls, string resource, ScramSaltedPasswordCache cache)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endPoint);
        Stream stream = new NetworkStream(socket, ownsSocket: true);
        if (tls)
        {
            var secure = new SslStream(stream, leaveInnerStreamOpen: false);
            await secure.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = Domain,
                ApplicationProtocols = [TlsServerContext.XmppClient],
                // The benchmark's own throw-away self-signed certificate.
                RemoteCertificateValidationCallback = (_, _, _, _) => true,
            });
            stream = secure;
        }
        var reader = new MarkerReader(stream);
        const string header = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
        await SendAsync(stream, header);
        await reader.ReadUntilAsync("</stream:features>");

        if (tls)
        {
            var plain = Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{User}\0{Password}"));
            await SendAsync(stream, $"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>");
            Expect(await reader.ReadUntilAsync(">"), "<success");
        }
        else
        {
            var scram = new ScramClient(ScramHash.Sha1, User, Password, cache);
            await SendAsync(stream, $"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>{Convert.ToBase64String(scram.ClientFirst())}</auth>");
            var challenge = await reader.ReadUntilAsync("</challenge>");
            if (scram.ReceiveServerFirst(Convert.FromBase64String(TextOf(challenge)), out var clientFinal) != SaslResult.Continue)
            {
                throw new InvalidOperationException($"SCRAM server-first refused: {scram.Error}");
            }
            await SendAsync(stream, $"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{Convert.ToBase64String(clientFinal!)}</response>");
            var success = await reader.ReadUntilAsync("</success>");
            if (!scram.VerifyServerFinal(Convert.FromBase64String(TextOf(success))))
            {
                throw new InvalidOperationException("SCRAM server signature did not verify");
            }
        }

        await SendAsync(stream, header);
        await reader.ReadUntilAsync("</stream:features>");
        await SendAsync(stream, $"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>");
        Expect(await reader.ReadUntilAsync("</iq>"), "<jid>");
        return stream;
    }

    private static async Task SendAsync(Stream stream, string text)
    {
        await stream.WriteAsync(Encoding.UTF8.GetBytes(text));
        await stream.FlushAsync();
    }

    private static void Expect(string text, string part)
    {
        if (!text.Contains(part, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"expected {part} in: {text}");
        }
    }

    /// <summary>The character data of the last element in <paramref name="text"/>, e.g. a SASL payload.</summary>
    private static string TextOf(string text)
    {
        var end = text.LastIndexOf('<');
        var start = text.LastIndexOf('>', end) + 1;
        return text[start..end];
    }

    private static Process StartClientProcess(int count, bool tls, bool webSocket)
    {
        var start = new ProcessStartInfo
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            FileName = Environment.ProcessPath!,
        };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet")
        {
            start.ArgumentList.Add(typeof(EdgeIdleMemoryBenchmark).Assembly.Location);
        }
        foreach (var argument in new[] { "idle-memory", "--edge", "--client", "--count", count.ToString(CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(argument);
        }
        if (tls)
        {
            start.ArgumentList.Add("--tls");
        }
        if (webSocket)
        {
            start.ArgumentList.Add("--websocket");
        }
        return Process.Start(start)!;
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        while (!condition())
        {
            await Task.Delay(50);
        }
    }

    /// <summary>Reads a client's input until a marker, keeping what follows it (benchmark code: strings are fine).</summary>
    private sealed class MarkerReader(Stream stream)
    {
        private readonly byte[] _buffer = new byte[4096];
        private readonly StringBuilder _pending = new();

        public async Task<string> ReadUntilAsync(string marker)
        {
            while (true)
            {
                var text = _pending.ToString();
                var at = text.IndexOf(marker, StringComparison.Ordinal);
                if (at >= 0)
                {
                    var end = at + marker.Length;
                    _pending.Remove(0, end);
                    return text[..end];
                }
                var read = await stream.ReadAsync(_buffer);
                if (read == 0)
                {
                    throw new InvalidOperationException($"the edge closed the stream; waiting for {marker} after: {text}");
                }
                _pending.Append(Encoding.UTF8.GetString(_buffer, 0, read));
            }
        }
    }
}
