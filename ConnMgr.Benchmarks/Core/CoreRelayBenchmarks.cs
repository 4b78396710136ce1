using System.Net;
using System.Net.Sockets;
using System.Text;
using BenchmarkDotNet.Attributes;
using ConnMgr.Core;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Link;
using ConnMgr.Protocol.Sasl;
using Microsoft.Extensions.Logging.Abstractions;

namespace ConnMgr.Benchmarks.Core;

/// <summary>
/// A chat message relayed by the core from one bound session to another on the same link:
/// route in, session queue, <c>from</c> stamped, route out. The client side only writes
/// prepared bytes and counts <c>&lt;/route&gt;</c> in what it reads, so the allocations
/// reported are the core's. One invocation sends <see cref="Batch"/> messages in one write
/// and waits for all of them.
/// </summary>
[MemoryDiagnoser]
public class CoreRelayBenchmarks
{
    private const int Batch = 256;
    private const string Secret = "bench-secret";

    private string _directory = null!;
    private CoreServer _core = null!;
    private Socket _socket = null!;
    private byte[] _batch = null!;
    private readonly byte[] _readBuffer = new byte[64 * 1024];
    private int _pendingMatch;

    [GlobalSetup]
    public void Setup()
    {
        _directory = Path.Combine(Path.GetTempPath(), "connmgr-bench-" + Guid.NewGuid().ToString("N"));
        _core = CoreServer.Start(new CoreServerOptions
        {
            Domain = "localhost",
            Secret = Secret,
            ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
            DataDirectory = _directory,
            StoreOptions = new() { Iterations = 4096 },
        }, NullLoggerFactory.Instance);
        _core.Store.AddUserAsync("alice", "pencil").GetAwaiter().GetResult();
        _core.Store.AddUserAsync("bob", "pencil").GetAwaiter().GetResult();

        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        _socket.Connect(_core.LocalEndPoint);
        Send($"<stream:stream xmlns:stream='{XmppNamespaces.Stream}' xmlns='{XmppNamespaces.ConnectionManagerStream}' to='bench/link-1' version='1.0'>");
        var header = ReadUntil("</stream:features>", "<stream:features/>");
        var id = header[(header.IndexOf(" id='", StringComparison.Ordinal) + 5)..];
        id = id[..id.IndexOf('\'')];
        Send($"<handshake>{HandshakeDigest.Compute(id, Secret)}</handshake>");
        ReadUntil("</iq>");
        foreach (var (user, stream) in new[] { ("alice", "bench-a"), ("bob", "bench-b") })
        {
            Send($"<iq type='set' id='{stream}'><session xmlns='{XmppNamespaces.ConnectionManager}' id='{stream}'><create/></session></iq>");
            ReadUntil("</iq>");
            Send($"<route streamid='{stream}'><auth xmlns='{XmppNamespaces.Sasl}' mechanism='PLAIN'>{Convert.ToBase64String(SaslPlain.Encode(null, user, "pencil"))}</auth></route>");
            ReadUntil("</route>");
            Send($"<route streamid='{stream}'><iq type='set' id='b'><bind xmlns='{XmppNamespaces.Bind}'><resource>r</resource></bind></iq></route>");
            ReadUntil("</route>");
        }
        var message = $"<route streamid='bench-a'><message to='bob@localhost/r' type='chat' id='m'><body>Hello, how are you doing today?</body></message></route>";
        _batch = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat(message, Batch)));
        Relay();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _socket.Dispose();
        _core.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public void Relay()
    {
        _socket.Send(_batch);
        var routes = 0;
        while (routes < Batch)
        {
            var read = _socket.Receive(_readBuffer);
            routes += CountRouteEnds(_readBuffer.AsSpan(0, read));
        }
    }

    /// <summary>Counts <c>&lt;/route&gt;</c>, also when it is split across reads.</summary>
    private int CountRouteEnds(ReadOnlySpan<byte> data)
    {
        ReadOnlySpan<byte> end = "</route>"u8;
        var count = 0;
        foreach (var b in data)
        {
            _pendingMatch = b == end[_pendingMatch] ? _pendingMatch + 1 : (b == end[0] ? 1 : 0);
            if (_pendingMatch == end.Length)
            {
                count++;
                _pendingMatch = 0;
            }
        }
        return count;
    }

    private void Send(string xml) => _socket.Send(Encoding.UTF8.GetBytes(xml));

    private string ReadUntil(params string[] endings)
    {
        var text = new StringBuilder();
        while (!endings.Any(e => text.ToString().Contains(e, StringComparison.Ordinal)))
        {
            var read = _socket.Receive(_readBuffer);
            if (read == 0)
            {
                throw new InvalidOperationException("The core closed the link: " + text);
            }
            text.Append(Encoding.UTF8.GetString(_readBuffer, 0, read));
        }
        return text.ToString();
    }
}
