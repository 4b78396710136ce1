using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime;
using System.Text;
using ConnMgr.Edge.Tls;
using ConnMgr.Edge.Transport;
using Microsoft.Extensions.Logging.Abstractions;

namespace ConnMgr.Benchmarks.Memory;

/// <summary>
/// Memory held by idle client connections, measured on the real transport:
/// <c>dotnet run -c Release --project ConnMgr.Benchmarks -- idle-memory --count 10000 [--tls | --both] [--edge [--websocket] [--chat SECONDS]] [--hold]</c>;
/// with <c>--edge</c>, logged-in clients through the whole edge (<see cref="EdgeIdleMemoryBenchmark"/>),
/// over RFC 7395 WebSocket with <c>--websocket</c>; <c>--both</c> measures plain and TLS one after the
/// other and prints them side by side, and <c>--both --edge --websocket</c> adds a WebSocket column.
/// </summary>
/// <remarks>
/// The server runs in this process with a handler that echoes what it reads and otherwise waits
/// for input (as the stream layer of a logged-in client does). The clients run in a child process
/// (this program again, with <c>--client</c>) so their sockets and TLS state do not count: each
/// opens its connections, does one round trip on each so both directions have been used, then
/// idles. The client opens a quarter of the connections first and the rest once the server has
/// measured, for the marginal cost per connection (see <see cref="IdleMemoryRun"/>). The server
/// forces a full compacting GC at each measurement and reports, per connection,
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
        if (options.Both)
        {
            return RunBothAsync(options).GetAwaiter().GetResult();
        }
        if (options.Edge)
        {
            return EdgeIdleMemoryBenchmark.Run(options);
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
        await RunClientsAsync(listener.LocalEndPoint.Port, 1, options, linger: false);
        await WaitForAsync(() => transport.ConnectionCount == 0);
        var before = Snapshot.Take();

        // The client opens a quarter, waits for the measurement, then opens the rest (the marginal cost).
        using var client = StartClientProcess(listener.LocalEndPoint.Port, options);
        var quarter = default(Snapshot);
        foreach (var (step, expected) in new[] { ("quarter", options.Count / 4), ("ready", options.Count) })
        {
            var ready = await client.StandardOutput.ReadLineAsync();
            if (ready != step)
            {
                Console.Error.WriteLine($"client process failed: {ready} {await client.StandardError.ReadToEndAsync()}");
                return 1;
            }
            await WaitForAsync(() => transport.ConnectionCount == expected);
            // Let the last flushes, pipe completions and thread-pool work settle before measuring.
            await Task.Delay(TimeSpan.FromSeconds(2));
            if (step == "quarter")
            {
                quarter = Snapshot.Take();
                await client.StandardInput.WriteLineAsync("go");
                await client.StandardInput.FlushAsync();
            }
        }
        var after = Snapshot.Take();

        var run = new IdleMemoryRun(options.Tls ? "Direct TLS" : "plain TCP", options.Count, before, options.Count / 4, quarter, after, IdleMemoryRun.TrimAndReadRss(),
            [$"each client sent {options.Payload} bytes, got them echoed, then idled; transport blocks rented while idle: {transport.BufferPool.RentedBlocks}",
             .. TlsNotes(options.Tls)]);
        Emit(options, "idle-memory (transport only, echo handler)", run);
        await HoldAsync(options);

        client.StandardInput.Close();
        await client.WaitForExitAsync();
        await transport.ShutdownAsync(TimeSpan.FromSeconds(5));
        await transport.DisposeAsync();
        return 0;
    }

    /// <summary>
    /// --both: plain, then TLS, each measured in a fresh process of its own (a clean baseline),
    /// one after the other so they do not share the two cores; then one table with both columns.
    /// </summary>
    private static async Task<int> RunBothAsync(Options options)
    {
        var runs = new List<IdleMemoryRun>();
        (bool Tls, bool WebSocket)[] modes = options.WebSocket ? [(false, false), (true, false), (false, true)] : [(false, false), (true, false)];
        foreach (var (tls, webSocket) in modes)
        {
            var start = SelfStartInfo();
            start.RedirectStandardInput = false;
            start.RedirectStandardError = false;
            foreach (var argument in new[] { Command, "--row", "--count", options.Count.ToString(CultureInfo.InvariantCulture),
                "--payload", options.Payload.ToString(CultureInfo.InvariantCulture) })
            {
                start.ArgumentList.Add(argument);
            }
            if (options.Edge)
            {
                start.ArgumentList.Add("--edge");
            }
            if (tls)
            {
                start.ArgumentList.Add("--tls");
            }
            if (webSocket)
            {
                start.ArgumentList.Add("--websocket");
            }
            using var process = Process.Start(start)!;
            while (await process.StandardOutput.ReadLineAsync() is { } line)
            {
                if (IdleMemoryRun.TryParse(line) is { } run)
                {
                    runs.Add(run);
                }
                else
                {
                    Console.WriteLine(line);
                }
            }
            await process.WaitForExitAsync();
            if (process.ExitCode != 0)
            {
                return process.ExitCode;
            }
        }
        IdleMemoryRun.Print(options.Edge ? "idle-memory --edge (logged-in clients through the whole edge)" : "idle-memory (transport only, echo handler)", runs);
        return 0;
    }

    /// <summary>The table for one run, or with --row the line that <see cref="RunBothAsync"/> collects.</summary>
    internal static void Emit(Options options, string title, IdleMemoryRun run)
    {
        if (options.Row)
        {
            Console.WriteLine(run.ToLine());
        }
        else
        {
            IdleMemoryRun.Print(title, [run]);
        }
    }

    /// <summary>With --hold, keeps the connections open for a heap dump (dotnet-gcdump, ClrMD) until Enter.</summary>
    internal static async Task HoldAsync(Options options)
    {
        if (options.Hold)
        {
            Console.WriteLine($"holding the idle connections: process {Environment.ProcessId}; press Enter to end");
            await Console.In.ReadLineAsync();
        }
    }

    internal static IEnumerable<string> TlsNotes(bool tls)
    {
        if (tls)
        {
            yield return OpenSslIdleBuffers.Unavailable is { } problem
                ? $"OpenSSL record buffers kept while idle: {problem}"
                : "OpenSSL record buffers released while idle (SSL_MODE_RELEASE_BUFFERS)";
        }
    }

    /// <summary>This program again: as an apphost, or as "dotnet ConnMgr.Benchmarks.dll" when started that way.</summary>
    internal static ProcessStartInfo SelfStartInfo()
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
            start.ArgumentList.Add(typeof(IdleConnectionsBenchmark).Assembly.Location);
        }
        return start;
    }

    private static async Task<int> RunClientAsync(Options options)
    {
        var connections = await RunClientsAsync(options.Port, options.Count / 4, options, linger: true);
        Console.WriteLine("quarter");
        await Console.In.ReadLineAsync();
        connections.AddRange(await RunClientsAsync(options.Port, options.Count - options.Count / 4, options, linger: true));
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
    private static async Task<List<Stream>> RunClientsAsync(int port, int count, Options options, bool linger)
    {
        var connections = new Stream[count];
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = ConnectParallelism }, async (i, cancellationToken) =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cancellationToken);
            Stream stream = new NetworkStream(socket, ownsSocket: true);
            if (options.Tls)
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
            var ping = Ping(options.Payload);
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

    /// <summary>A &lt;presence/&gt;, or a presence padded to <paramref name="size"/> bytes to see what a large write leaves behind.</summary>
    private static byte[] Ping(int size)
    {
        const string presence = "<presence/>";
        return size <= presence.Length
            ? Encoding.ASCII.GetBytes(presence)
            : Encoding.ASCII.GetBytes($"<presence><status>{new string('x', Math.Max(0, size - 38))}</status></presence>");
    }

    private static Process StartClientProcess(int port, Options options)
    {
        var start = SelfStartInfo();
        foreach (var argument in new[] { Command, "--client", "--port", port.ToString(CultureInfo.InvariantCulture), "--count", options.Count.ToString(CultureInfo.InvariantCulture),
            "--payload", options.Payload.ToString(CultureInfo.InvariantCulture) })
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
        public string ToLine() => string.Create(CultureInfo.InvariantCulture, $"{ManagedBytes},{HeapSizeBytes},{CommittedBytes},{RssBytes}");

        public static Snapshot Parse(string line)
        {
            var parts = line.Split(',');
            return new Snapshot(long.Parse(parts[0], CultureInfo.InvariantCulture), long.Parse(parts[1], CultureInfo.InvariantCulture),
                long.Parse(parts[2], CultureInfo.InvariantCulture), long.Parse(parts[3], CultureInfo.InvariantCulture));
        }

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

        public static long ReadRss()
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

    /// <param name="Both">Plain and TLS, each in its own process, printed side by side.</param>
    /// <param name="Row">Print the run as one line for --both instead of a table.</param>
    /// <param name="Hold">Keep the connections open after measuring until Enter (for a heap dump).</param>
    /// <param name="Payload">Bytes each client sends and gets echoed before idling (transport only; 11, a &lt;presence/&gt;, by default).</param>
    /// <param name="ChatSeconds">With --edge, after measuring: every client sends one message a second to another for this long (0: none).</param>
    /// <param name="WebSocket">With --edge, clients over RFC 7395 WebSocket on a Kestrel listener instead of TCP; with --both, a third column.</param>
    internal sealed record Options(int Count, bool Tls, bool Client, int Port, bool Edge, bool Both, bool Row, bool Hold, int Payload, int ChatSeconds, bool WebSocket)
    {
        public static Options Parse(string[] args)
        {
            var count = 10_000;
            bool tls = false, client = false, edge = false, both = false, row = false, hold = false, webSocket = false;
            var port = 0;
            var payload = 11;
            var chat = 0;
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
                    case "--both":
                        both = true;
                        break;
                    case "--row":
                        row = true;
                        break;
                    case "--hold":
                        hold = true;
                        break;
                    case "--payload":
                        payload = int.Parse(args[++i], CultureInfo.InvariantCulture);
                        break;
                    case "--chat":
                        chat = int.Parse(args[++i], CultureInfo.InvariantCulture);
                        break;
                    case "--port":
                        port = int.Parse(args[++i], CultureInfo.InvariantCulture);
                        break;
                    default:
                        throw new ArgumentException($"{Command}: unknown argument '{args[i]}' (expected --count N, --tls or --both, --edge, --websocket, --hold, --payload BYTES, --chat SECONDS)");
                }
            }
            if (webSocket && (!edge || tls))
            {
                throw new ArgumentException($"{Command}: --websocket needs --edge (the web transport runs on the stream layer) and goes without --tls");
            }
            return new Options(count, tls, client, port, edge, both, row, hold, payload, chat, webSocket);
        }
    }

    private sealed class TemporaryDirectory : IDisposable
    {
        public TemporaryDirectory() => Path = Directory.CreateTempSubdirectory("connmgr-idle-memory-").FullName;

        public string Path { get; }

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
