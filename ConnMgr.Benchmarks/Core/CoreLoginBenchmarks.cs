using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;
using BenchmarkDotNet.Attributes;
using ConnMgr.Core;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Link;
using ConnMgr.Protocol.Sasl;
using ConnMgr.Protocol.Xml;
using Microsoft.Extensions.Logging.Abstractions;

namespace ConnMgr.Benchmarks.Core;

/// <summary>
/// Logins per second through the embedded core over loopback links, as an edge would drive
/// them: create, SCRAM (client side with a cached SaltedPassword, as real clients keep it;
/// 4096 iterations in the store), bind, close. One operation is one login; each invocation
/// runs <see cref="Concurrency"/> logins at once over <see cref="Links"/> links, so the figure
/// is throughput (logins/s = 1e9 / mean ns) with the client's share of the CPU included.
/// </summary>
[MemoryDiagnoser]
public class CoreLoginBenchmarks
{
    private const int Concurrency = 32;
    private const int Links = 4;
    private const string Secret = "bench-secret";
    private const string Password = "pencil";

    private readonly ScramSaltedPasswordCache _cache = new();
    private string _directory = null!;
    private CoreServer _core = null!;
    private BenchLink[] _links = null!;
    private long _sessions;

    [Params(ScramHash.Sha1, ScramHash.Sha256)]
    public ScramHash Hash { get; set; }

    // Synchronous wrappers: not every BenchmarkDotNet toolchain awaits an async setup.
    [GlobalSetup]
    public void Setup() => SetupAsync().GetAwaiter().GetResult();

    [GlobalCleanup]
    public void Cleanup() => CleanupAsync().GetAwaiter().GetResult();

    private async Task SetupAsync()
    {
        _directory = Path.Combine(Path.GetTempPath(), "connmgr-bench-" + Guid.NewGuid().ToString("N"));
        _core = CoreServer.Start(new CoreServerOptions
        {
            Domain = "localhost",
            Secret = Secret,
            ListenEndPoint = new IPEndPoint(IPAddress.Loopback, 0),
            DataDirectory = _directory,
        }, NullLoggerFactory.Instance);
        for (var i = 0; i < Concurrency; i++)
        {
            await _core.Store.AddUserAsync($"user{i}", Password);
        }
        _links = new BenchLink[Links];
        for (var i = 0; i < Links; i++)
        {
            _links[i] = await BenchLink.OpenAsync(_core.LocalEndPoint, $"bench/link-{i}", Secret);
        }
        // Derives each user's SaltedPassword once, as a returning client has it.
        await Logins();
    }

    private async Task CleanupAsync()
    {
        foreach (var link in _links)
        {
            await link.DisposeAsync();
        }
        await _core.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark(OperationsPerInvoke = Concurrency)]
    public Task Logins()
    {
        var logins = new Task[Concurrency];
        for (var i = 0; i < Concurrency; i++)
        {
            logins[i] = LoginAsync(i);
        }
        return Task.WhenAll(logins);
    }

    private async Task LoginAsync(int user)
    {
        var link = _links[user % Links];
        var id = $"bench-{Interlocked.Increment(ref _sessions)}";
        await link.ExchangeAsync(id, $"<iq type='set' id='{id}'><session xmlns='{XmppNamespaces.ConnectionManager}' id='{id}'><create><host address='127.0.0.1'/></create></session></iq>");

        var scram = new ScramClient(Hash, $"user{user}", Password, _cache);
        var challenge = await link.ExchangeAsync(id, Route(id, $"<auth xmlns='{XmppNamespaces.Sasl}' mechanism='{Hash.MechanismName()}'>{Convert.ToBase64String(scram.ClientFirst())}</auth>"));
        if (scram.ReceiveServerFirst(Convert.FromBase64String(Text(challenge)), out var clientFinal) != SaslResult.Continue)
        {
            throw new InvalidOperationException($"bad challenge: {challenge}");
        }
        var success = await link.ExchangeAsync(id, Route(id, $"<response xmlns='{XmppNamespaces.Sasl}'>{Convert.ToBase64String(clientFinal!)}</response>"));
        if (!scram.VerifyServerFinal(Convert.FromBase64String(Text(success))))
        {
            throw new InvalidOperationException($"login failed: {success}");
        }
        await link.ExchangeAsync(id, Route(id, $"<iq type='set' id='b'><bind xmlns='{XmppNamespaces.Bind}'><resource>bench</resource></bind></iq>"));
        await link.ExchangeAsync(id, $"<iq type='set' id='{id}'><session xmlns='{XmppNamespaces.ConnectionManager}' id='{id}'><close/></session></iq>");
    }

    private static string Route(string streamId, string stanza) => $"<route streamid='{streamId}'>{stanza}</route>";

    private static string Text(string element) => new XmlElementReader(Encoding.UTF8.GetBytes(element)).GetText();

    /// <summary>
    /// A minimal CM end of a link: header, handshake, then one outstanding request per stream
    /// ID, answered by the next route or IQ for it (create, each SASL step, bind and close each
    /// get exactly one).
    /// </summary>
    private sealed class BenchLink : IAsyncDisposable
    {
        private readonly Socket _socket;
        private readonly NetworkStream _stream;
        private readonly SemaphoreSlim _writeLock = new(1, 1);
        private readonly ConcurrentDictionary<string, TaskCompletionSource<string>> _waiting = new();
        private readonly TaskCompletionSource<string> _header = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Task _reader;

        private BenchLink(Socket socket)
        {
            _socket = socket;
            _stream = new NetworkStream(socket, ownsSocket: true);
            _reader = ReadAsync();
        }

        public static async Task<BenchLink> OpenAsync(IPEndPoint endPoint, string linkJid, string secret)
        {
            var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(endPoint);
            var link = new BenchLink(socket);
            await link.SendAsync($"<stream:stream xmlns:stream='{XmppNamespaces.Stream}' xmlns='{XmppNamespaces.ConnectionManagerStream}' to='{linkJid}' version='1.0'>");
            var id = await link._header.Task;
            await link.SendAsync($"<handshake>{HandshakeDigest.Compute(id, secret)}</handshake>");
            await link._ready.Task;
            return link;
        }

        public async Task<string> ExchangeAsync(string streamId, string xml)
        {
            var reply = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiting[streamId] = reply;
            await SendAsync(xml);
            return await reply.Task;
        }

        private async Task SendAsync(string xml)
        {
            var bytes = Encoding.UTF8.GetBytes(xml);
            await _writeLock.WaitAsync();
            try
            {
                await _stream.WriteAsync(bytes);
            }
            finally
            {
                _writeLock.Release();
            }
        }

        private async Task ReadAsync()
        {
            var scanner = new XmppStreamScanner(XmlScannerOptions.UpstreamLink);
            var reader = PipeReader.Create(_stream);
            try
            {
                while (true)
                {
                    var result = await reader.ReadAsync();
                    var buffer = result.Buffer;
                    SequencePosition consumed = buffer.Start, examined = buffer.End;
                    while (scanner.Scan(buffer, out consumed, out examined, out var frame) == ScanStatus.Frame)
                    {
                        if (frame.Kind == XmlFrameKind.StreamHeader)
                        {
                            _header.TrySetResult(frame.Header!.Id!);
                        }
                        else if (frame.Kind == XmlFrameKind.Element)
                        {
                            Dispatch(frame.Bytes.ToArray());
                        }
                        buffer = buffer.Slice(consumed);
                    }
                    reader.AdvanceTo(consumed, examined);
                    if (result.IsCompleted || scanner.ErrorCondition != StreamErrorCondition.None)
                    {
                        return;
                    }
                }
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException)
            {
            }
            finally
            {
                await reader.CompleteAsync();
            }
        }

        private void Dispatch(byte[] bytes)
        {
            var element = new XmlElementReader(bytes, XmlNamespaceScope.Create(XmppNamespaces.ConnectionManagerStream));
            var name = element.LocalName;
            string? key = null;
            string? payload = null;
            if (name.SequenceEqual("route"u8))
            {
                key = element.GetAttribute("streamid"u8);
                payload = element.TryGetFirstChild(out var child) ? child.ToString() : element.GetText();
            }
            else if (name.SequenceEqual("iq"u8))
            {
                if (element.TryGetFirstChild(out var child) && child.LocalName.SequenceEqual("configuration"u8))
                {
                    _ready.TrySetResult();
                    return;
                }
                key = element.GetAttribute("id"u8);
                payload = element.ToString();
            }
            if (key is not null && _waiting.TryRemove(key, out var waiter))
            {
                waiter.TrySetResult(payload!);
            }
        }

        public async ValueTask DisposeAsync()
        {
            _socket.Dispose();
            await _reader;
        }
    }
}
