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
/// Kestrel listener as the daemon's <c>Edge:HttpPort</c> carries it; loopback counts as encrypted)
/// with PLAIN. Measured as in
/// <see cref="IdleConnectionsBenchmark"/>: forced compacting GCs around the run, per connection the
/// managed heap, the GC's committed memory, the process RSS, and their difference (native: OpenSSL
/// with --tls). Kernel socket buffers are not in RSS. The clients log in a quarter first, then the
/// rest, with a measurement in between, so the table has the marginal cost next to the total / N
/// (which includes fixed costs, the GC's gen0 budget first).
/// </remarks>
internal static class EdgeIdleMemoryBenchmark
{
    private const string Domain = "localhost";
    private const string User = "bench";
    private const string Password = "bench-password";

    /// <summary>Logins in flight at once: the core's SQLite reads and the links stay busy without piling up.</summary>
    private const int LoginParallelism = 64;

    /// <summary>--chat: characters in each message body (the load generator's default).</summary>
    private const int ChatBodyLength = 150;

    public static int Run(IdleConnectionsBenchmark.Options options)
        => options.Client
            ? RunClientAsync(options).GetAwaiter().GetResult()
            : RunServerAsync(options).GetAwaiter().GetResult();

    private static async Task<int> RunServerAsync(IdleConnectionsBenchmark.Options options)
    {
        var (count, tls) = (options.Count, options.Tls);
        using var process = StartClientProcess(options);
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
        await using var web = options.WebSocket ? await WebListener.StartAsync(streams, count) : null;
        Func<int> connections = web is null ? () => transport.ConnectionCount : () => web.Transport.SessionCount;

        await process.StandardInput.WriteLineAsync($"listen {web?.Port ?? listener.LocalEndPoint.Port}");
        await process.StandardInput.FlushAsync();
        if (await process.StandardOutput.ReadLineAsync() != "warm")
        {
            Console.Error.WriteLine($"warm-up failed: {await process.StandardError.ReadToEndAsync()}");
            return 1;
        }
        await WaitForAsync(() => connections() == 0 && pool.SessionCount == 0);
        var before = IdleConnectionsBenchmark.Snapshot.Take();

        // The first quarter, measured, then the rest: the slope between the two is the marginal cost.
        var quarterCount = count / 4;
        var watch = Stopwatch.StartNew();
        var quarter = default(IdleConnectionsBenchmark.Snapshot);
        foreach (var (step, expected) in new[] { ("quarter", quarterCount), ("ready", count) })
        {
            await process.StandardInput.WriteLineAsync("go");
            await process.StandardInput.FlushAsync();
            var ready = await process.StandardOutput.ReadLineAsync();
            if (ready != step)
            {
                Console.Error.WriteLine($"logins failed: {ready} {await process.StandardError.ReadToEndAsync()}");
                return 1;
            }
            await WaitForAsync(() => connections() == expected && pool.SessionCount == expected);
            watch.Stop();
            // Let the last flushes, pipe completions and thread-pool work settle before measuring.
            await Task.Delay(TimeSpan.FromSeconds(2));
            if (step == "quarter")
            {
                quarter = IdleConnectionsBenchmark.Snapshot.Take();
                watch.Start();
            }
        }
        var loginTime = watch.Elapsed;
        var after = IdleConnectionsBenchmark.Snapshot.Take();
        var trimmedRss = IdleMemoryRun.TrimAndReadRss();
        string[] chat = [];
        if (options.ChatSeconds > 0)
        {
            if (await ChatAsync(process, options.ChatSeconds, count) is not { } note)
            {
                return 1;
            }
            chat = [note];
        }

        var mode = options.WebSocket ? "WebSocket" : tls ? "Direct TLS" : "plain TCP";
        var run = new IdleMemoryRun(mode, count, before, quarterCount, quarter, after, trimmedRss,
        [
            options.WebSocket ? "WebSocket (RFC 7395) on Kestrel, SASL PLAIN, resource bound"
                : tls ? "Direct TLS, SASL PLAIN, resource bound" : "plain TCP, SASL SCRAM-SHA-1, resource bound",
            string.Create(CultureInfo.InvariantCulture, $"logins took {loginTime.TotalSeconds:F1} s; transport blocks rented while idle: {transport.BufferPool.RentedBlocks}"),
            .. IdleConnectionsBenchmark.TlsNotes(tls),
            .. chat,
        ]);
        IdleConnectionsBenchmark.Emit(options, "idle-memory --edge (logged-in clients through the whole edge)", run);
        await IdleConnectionsBenchmark.HoldAsync(options);

        process.StandardInput.Close();
        await process.WaitForExitAsync();
        await transport.ShutdownAsync(TimeSpan.FromSeconds(5));
        await transport.DisposeAsync();
        directory.Delete(recursive: true);
        return 0;
    }

    // ---- the child: the core and the clients -----------------------------------------------------

    private static async Task<int> RunClientAsync(IdleConnectionsBenchmark.Options options)
    {
        var (count, tls) = (options.Count, options.Tls);
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
            Task<Stream> Login(string resource) => options.WebSocket ? LoginWebSocketAsync(endPoint, resource) : LoginAsync(endPoint, tls, resource, cache);
            await (await Login("warm-up")).DisposeAsync();
            Console.WriteLine("warm");

            var clients = new Stream[count];
            foreach (var (step, from, to) in new[] { ("quarter", 0, count / 4), ("ready", count / 4, count) })
            {
                await Console.In.ReadLineAsync();
                await Parallel.ForEachAsync(Enumerable.Range(from, to - from), new ParallelOptions { MaxDegreeOfParallelism = LoginParallelism },
                    async (i, _) => clients[i] = await Login("r" + i.ToString(CultureInfo.InvariantCulture)));
                Console.WriteLine(step);
            }

            if ((await Console.In.ReadLineAsync())?.Split(' ') is ["chat", var seconds])
            {
                var (sent, received) = await ChatAsync(clients, int.Parse(seconds, CultureInfo.InvariantCulture));
                Console.WriteLine($"chatted {sent} {received}");
            }

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

    /// <summary>
    /// --chat, the edge's side: what the clients' chat costs this process (GCs, allocation, CPU time),
    /// to weigh a GC setting that shrinks idle memory against its cost under load.
    /// </summary>
    private static async Task<string?> ChatAsync(Process client, int seconds, int count)
    {
        var (gen0, gen1, gen2) = (GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2));
        var allocated = GC.GetTotalAllocatedBytes();
        var pauses = GC.GetTotalPauseDuration();
        var cpu = Environment.CpuUsage.TotalTime;
        await client.StandardInput.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"chat {seconds}"));
        await client.StandardInput.FlushAsync();
        if ((await client.StandardOutput.ReadLineAsync())?.Split(' ') is not ["chatted", var sent, var received])
        {
            Console.Error.WriteLine($"chat failed: {await client.StandardError.ReadToEndAsync()}");
            return null;
        }
        var rss = IdleConnectionsBenchmark.Snapshot.ReadRss();
        return string.Create(CultureInfo.InvariantCulture,
            $"chat: {count} clients, one {ChatBodyLength}-character message a second each for {seconds} s: {sent} sent, {received} bytes received; " +
            $"this process: {GC.CollectionCount(0) - gen0}/{GC.CollectionCount(1) - gen1}/{GC.CollectionCount(2) - gen2} gen0/1/2 GCs, " +
            $"{(GC.GetTotalAllocatedBytes() - allocated) / 1048576.0:F0} MiB allocated, GC pauses {(GC.GetTotalPauseDuration() - pauses).TotalMilliseconds:F0} ms, " +
            $"CPU {(Environment.CpuUsage.TotalTime - cpu).TotalSeconds:F2} s, RSS at the end {rss / 1048576.0:F1} MiB");
    }

    /// <summary>--chat, the clients' side: each sends one message a second to the next client's resource; all read what arrives.</summary>
    private static async Task<(long Sent, long Received)> ChatAsync(Stream[] clients, int seconds)
    {
        long received = 0;
        using var stop = new CancellationTokenSource();
        var readers = clients.Select(async client =>
        {
            var buffer = new byte[4096];
            try
            {
                int read;
                while ((read = await client.ReadAsync(buffer, stop.Token)) > 0)
                {
                    Interlocked.Add(ref received, read);
                }
            }
            catch (OperationCanceledException)
            {
                // The chat is over.
            }
        }).ToArray();

        var body = new string('x', ChatBodyLength);
        var messages = clients.Select((_, i) => Encoding.UTF8.GetBytes(
            $"<message to='{User}@{Domain}/r{(i + 1) % clients.Length}' type='chat'><body>{body}</body></message>")).ToArray();
        long sent = 0;
        for (var second = 0; second < seconds; second++)
        {
            var next = Task.Delay(TimeSpan.FromSeconds(1));
            await Parallel.ForEachAsync(Enumerable.Range(0, clients.Length), new ParallelOptions { MaxDegreeOfParallelism = LoginParallelism },
                async (i, _) =>
                {
                    await clients[i].WriteAsync(messages[i]);
                    await clients[i].FlushAsync();
                });
            sent += clients.Length;
            await next;
        }
        // The last messages are still on their way through the edge and the core.
        await Task.Delay(TimeSpan.FromSeconds(1));
        await stop.CancelAsync();
        await Task.WhenAll(readers);
        return (sent, Interlocked.Read(ref received));
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

    /// <summary>
    /// RFC 7395: open, PLAIN (loopback counts as encrypted), open again, bind. The stream sends each
    /// write as one WebSocket message, so every element the benchmark writes is one message (section 3.3.3).
    /// </summary>
    private static async Task<Stream> LoginWebSocketAsync(IPEndPoint endPoint, string resource)
    {
        var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol(WebTransport.SubProtocol);
        await socket.ConnectAsync(new Uri($"ws://{endPoint}{WebTransport.WebSocketPath}"), CancellationToken.None);
        var stream = WebSocketStream.Create(socket, WebSocketMessageType.Text, ownsWebSocket: true);
        var reader = new MarkerReader(stream);
        const string open = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>";
        await SendAsync(stream, open);
        await reader.ReadUntilAsync("</stream:features>");
        var plain = Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{User}\0{Password}"));
        await SendAsync(stream, $"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>");
        Expect(await reader.ReadUntilAsync(">"), "<success");
        await SendAsync(stream, open);
        await reader.ReadUntilAsync("</stream:features>");
        await SendAsync(stream, $"<iq xmlns='jabber:client' type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>");
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

    private static Process StartClientProcess(IdleConnectionsBenchmark.Options options)
    {
        var start = IdleConnectionsBenchmark.SelfStartInfo();
        foreach (var argument in new[] { "idle-memory", "--edge", "--client", "--count", options.Count.ToString(CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(argument);
        }
        if (options.Tls)
        {
            start.ArgumentList.Add("--tls");
        }
        if (options.WebSocket)
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
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
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
