using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime;
using ConnMgr.Edge.Tls;
using ConnMgr.Edge.Transport;
using Microsoft.Extensions.Logging.Abstractions;

namespace ConnMgr.Benchmarks.Memory;

/// <summary>
/// Memory held by idle client connections, measured on the real transport:
/// <c>dotnet run -c Release --project ConnMgr.Benchmarks -- idle-memory --count 10000 [--tls]</c>;
/// with <c>--edge</c>, logged-in clients through the whole edge (<see cref="EdgeIdleMemoryBenchmark"/>).
/// </summary>
/// <remarks>
/// The server runs in this process with a handler that echoes what it reads and otherwise waits
/// for input (as the stream layer of a logged-in client does). The clients run in a child process
/// (this program again, with <c>--client</c>) so their sockets and TLS state do not count: each
/// opens its connections, does one round trip on each so both directions have been used, then
/// idles. The server forces a full compacting GC before and after and reports, per connection,
/// the managed heap, the GC's committed memory and the process RSS; RSS minus GC-committed is the
/// native part (sockets' SafeHandles aside, mostly OpenSSL state with --tls). File descriptors:
/// .NET raises the soft limit to the hard one (20,000 here) at start, enough for 10,000 per side.
/// </remarks>
internal static class IdleConnectionsBenchmark
{
    private const string Command = "idle-memory";

    /// <summary>Connections the client opens at once: enough to be quick, few enough not to overflow the backlog.</summary>
    private const int ConnectParallelism = 64;

    public static int Run(string[] args)
    {
        var options = Options.Parse(args);
        if (options.Edge)
        {
            return EdgeIdleMemoryBenchmark.Run(options.Count, options.Tls, options.Client, options.WebSocket);
        }
        return options.Client
            ? RunClientAsync(options).GetAwaiter().GetResult()
            : RunServerAsync(options).GetAwaiter().GetResult();
    }

    private static async Task<int> RunServerAsync(Options options)
    {
        using var directory = new TemporaryDirectory();
        var certificates = options.Tls
            ? new CertificateProvider(new CertificateSettings("localhost", directory.Path), NullLogger<CertificateProvider>.Instance)
            : null;
        var settings = new TransportSettings { MaxConnections = options.Count + 100 };
        var transport = new ClientTransport(settings, new EchoHandler(), certificates, NullLogger<ClientTransport>.Instance);
        var kind = options.Tls ? TransportKind.DirectTls : TransportKind.Tcp;
        var listener = transport.Listen(new IPEndPoint(IPAddress.Loopback, 0), kind);

        // Warm up one connection so code paths, the thread pool and TLS statics exist before the baseline.
        await RunClientsAsync(listener.LocalEndPoint.Port, 1, options.Tls, linger: false);
        await WaitForAsync(() => transport.ConnectionCount == 0);
        var before = Snapshot.Take();

        using var client = StartClientProcess(listener.LocalEndPoint.Port, options);
        var ready = await client.StandardOutput.ReadLineAsync();
        if (ready != "ready")
        {
            Console.Error.WriteLine($"client process failed: {ready} {await client.StandardError.ReadToEndAsync()}");
            return 1;
        }
        await WaitForAsync(() => transport.ConnectionCount == options.Count);
        // Let the last flushes, pipe completions and thread-pool work settle before measuring.
        await Task.Delay(TimeSpan.FromSeconds(2));
        var after = Snapshot.Take();

        Report(options, before, after, transport.BufferPool);

        client.StandardInput.Close();
        await client.WaitForExitAsync();
        await transport.ShutdownAsync(TimeSpan.FromSeconds(5));
        await transport.DisposeAsync();
        return 0;
    }

    private static void Report(Options options, Snapshot before, Snapshot after, TransportBufferPool pool)
    {
        var n = (double)options.Count;
        string PerConnection(long delta) => string.Create(CultureInfo.InvariantCulture, $"{delta / n / 1024,8:F2} KiB");

        var managed = after.ManagedBytes - before.ManagedBytes;
        var heap = after.HeapSizeBytes - before.HeapSizeBytes;
        var committed = after.CommittedBytes - before.CommittedBytes;
        var rss = after.RssBytes - before.RssBytes;
        Console.WriteLine($"idle-memory: {options.Count} idle {(options.Tls ? "Direct TLS" : "plain TCP")} connections, .NET {Environment.Version}, server GC {GCSettings.IsServerGC}");
        Console.WriteLine($"  per connection   managed (GetTotalMemory) {PerConnection(managed)}");
        Console.WriteLine($"                   GC heap size             {PerConnection(heap)}");
        Console.WriteLine($"                   GC committed             {PerConnection(committed)}");
        Console.WriteLine($"                   process RSS              {PerConnection(rss)}");
        Console.WriteLine($"                   native (RSS - committed) {PerConnection(rss - committed)}");
        Console.WriteLine($"  totals           RSS {before.RssBytes / 1048576.0:F1} -> {after.RssBytes / 1048576.0:F1} MiB, GC heap {before.HeapSizeBytes / 1048576.0:F1} -> {after.HeapSizeBytes / 1048576.0:F1} MiB");
        Console.WriteLine($"  transport blocks rented while idle: {pool.RentedBlocks}");
    }

    private static async Task<int> RunClientAsync(Options options)
    {
        var connections = await RunClientsAsync(options.Port, options.Count, options.Tls, linger: true);
        Console.WriteLine("ready");
        // Hold the connections until the server closes our standard input.
        await Console.In.ReadToEndAsync();
        foreach (var connection in connections)
        {
            await connection.DisposeAsync();
        }
        return 0;
    }

    /// <summary>Opens connections, does one round trip on each; keeps them open when <paramref name="linger"/>.</summary>
    private static async Task<List<Stream>> RunClientsAsync(int port, int count, bool tls, bool linger)
    {
        var connections = new Stream[count];
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = ConnectParallelism }, async (i, cancellationToken) =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cancellationToken);
            Stream stream = new NetworkStream(socket, ownsSocket: true);
            if (tls)
            {
                var secure = new SslStream(stream, leaveInnerStreamOpen: false);
                await secure.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = "localhost",
                    ApplicationProtocols = [TlsServerContext.XmppClient],
                    // The benchmark's own throw-away self-signed certificate.
                    RemoteCertificateValidationCallback = (_, _, _, _) => true,
                }, cancellationToken);
                stream = secure;
            }
            var ping = "<presence/>"u8.ToArray();
            await stream.WriteAsync(ping, cancellationToken);
            var echo = new byte[ping.Length];
            await stream.ReadExactlyAsync(echo, cancellationToken);
            connections[i] = stream;
        });

        if (!linger)
        {
            foreach (var connection in connections)
            {
                await connection.DisposeAsync();
            }
            return [];
        }
        return [.. connections];
    }

    private static Process StartClientProcess(int port, Options options)
    {
        var start = new ProcessStartInfo
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // Run as an apphost, or as "dotnet ConnMgr.Benchmarks.dll" when started that way.
        var processPath = Environment.ProcessPath!;
        start.FileName = processPath;
        if (Path.GetFileNameWithoutExtension(processPath) == "dotnet")
        {
            start.ArgumentList.Add(typeof(IdleConnectionsBenchmark).Assembly.Location);
        }
        foreach (var argument in new[] { Command, "--client", "--port", port.ToString(CultureInfo.InvariantCulture), "--count", options.Count.ToString(CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(argument);
        }
        if (options.Tls)
        {
            start.ArgumentList.Add("--tls");
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

    private sealed class EchoHandler : IClientConnectionHandler
    {
        public async Task RunAsync(ClientConnection connection, CancellationToken stopping)
        {
            while (true)
            {
                var result = await connection.Input.ReadAsync();
                foreach (var segment in result.Buffer)
                {
                    connection.TryWrite(segment.Span);
                }
                connection.Input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    return;
                }
            }
        }
    }

    internal readonly record struct Snapshot(long ManagedBytes, long HeapSizeBytes, long CommittedBytes, long RssBytes)
    {
        public static Snapshot Take()
        {
            GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            var managed = GC.GetTotalMemory(forceFullCollection: true);
            var info = GC.GetGCMemoryInfo(GCKind.FullBlocking);
            return new Snapshot(managed, info.HeapSizeBytes, info.TotalCommittedBytes, ReadRss());
        }

        private static long ReadRss()
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    var kilobytes = line["VmRSS:".Length..].Trim().Split(' ')[0];
                    return long.Parse(kilobytes, CultureInfo.InvariantCulture) * 1024;
                }
            }
            return Environment.WorkingSet;
        }
    }

    private sealed record Options(int Count, bool Tls, bool Client, int Port, bool Edge, bool WebSocket)
    {
        public static Options Parse(string[] args)
        {
            var count = 10_000;
            var tls = false;
            var client = false;
            var port = 0;
            var edge = false;
            var webSocket = false;
            for (var i = 0; i < args.Length; i++)
            {
                switch (args[i])
                {
                    case Command:
                        break;
                    case "--count":
                        count = int.Parse(args[++i], CultureInfo.InvariantCulture);
                        break;
                    case "--tls":
                        tls = true;
                        break;
                    case "--client":
                        client = true;
                        break;
                    case "--edge":
                        edge = true;
                        break;
                    case "--websocket":
                        webSocket = true;
                        break;
                    case "--port":
                        port = int.Parse(args[++i], CultureInfo.InvariantCulture);
                        break;
                    default:
                        throw new ArgumentException($"{Command}: unknown argument '{args[i]}' (expected --count N, --tls, --edge, --websocket)");
                }
            }
            return new Options(count, tls, client, port, edge, webSocket);
        }
    }

    private sealed class TemporaryDirectory : IDisposable
    {
        public TemporaryDirectory() => Path = Directory.CreateTempSubdirectory("connmgr-idle-memory-").FullName;

        public string Path { get; }

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
