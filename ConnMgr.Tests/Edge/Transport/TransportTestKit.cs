using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;
using ConnMgr.Edge.Tls;
using ConnMgr.Edge.Transport;
using Microsoft.Extensions.Logging.Abstractions;
using NUnit.Framework;

namespace ConnMgr.Tests.Edge.Transport;

/// <summary>A transport listening on a loopback port, with its handler's connections recorded.</summary>
internal sealed class TransportHost : IAsyncDisposable
{
    private TransportHost(ClientTransport transport, ClientListener listener, RecordingHandler handler)
    {
        Transport = transport;
        Listener = listener;
        Handler = handler;
    }

    public ClientTransport Transport { get; }

    public ClientListener Listener { get; }

    public RecordingHandler Handler { get; }

    public IPEndPoint EndPoint => Listener.LocalEndPoint;

    public static TransportHost Start(
        Func<ClientConnection, CancellationToken, Task> run,
        TransportSettings? settings = null,
        TransportKind kind = TransportKind.Tcp,
        CertificateProvider? certificates = null,
        Func<ClientConnection, CancellationToken, Task>? reject = null)
    {
        var handler = new RecordingHandler(run, reject);
        var transport = new ClientTransport(settings ?? new TransportSettings(), handler, certificates, NullLogger<ClientTransport>.Instance);
        var listener = transport.Listen(new IPEndPoint(IPAddress.Loopback, 0), kind);
        return new TransportHost(transport, listener, handler);
    }

    public async Task<Socket> ConnectAsync()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(EndPoint).WaitAsync(Kit.Timeout);
        return socket;
    }

    /// <summary>Ticks the transport's heartbeat as if <paramref name="later"/> had passed.</summary>
    public void Tick(TimeSpan later) => Transport.OnHeartbeat(Heartbeat.After(System.Diagnostics.Stopwatch.GetTimestamp(), later));

    public async ValueTask DisposeAsync()
    {
        await Transport.ShutdownAsync(TimeSpan.FromSeconds(1));
        await Transport.DisposeAsync();
    }
}

internal sealed class RecordingHandler(
    Func<ClientConnection, CancellationToken, Task> run,
    Func<ClientConnection, CancellationToken, Task>? reject) : IClientConnectionHandler
{
    private readonly ConcurrentQueue<ClientConnection> _started = new();
    private readonly ConcurrentQueue<ClientConnection> _rejected = new();
    private readonly ConcurrentQueue<ClientConnection> _finished = new();
    private readonly SemaphoreSlim _startedSignal = new(0);
    private readonly SemaphoreSlim _finishedSignal = new(0);

    public int StartedCount => _started.Count;

    public IReadOnlyCollection<ClientConnection> Rejected => _rejected;

    public async Task RunAsync(ClientConnection connection, CancellationToken stopping)
    {
        _started.Enqueue(connection);
        _startedSignal.Release();
        try
        {
            await run(connection, stopping);
        }
        finally
        {
            _finished.Enqueue(connection);
            _finishedSignal.Release();
        }
    }

    public Task RejectAsync(ClientConnection connection, CancellationToken stopping)
    {
        _rejected.Enqueue(connection);
        return reject?.Invoke(connection, stopping) ?? Task.CompletedTask;
    }

    /// <summary>The next connection whose handler started.</summary>
    public async Task<ClientConnection> NextStartedAsync()
    {
        if (!await _startedSignal.WaitAsync(Kit.Timeout))
        {
            throw new TimeoutException("No connection reached the handler.");
        }
        _started.TryDequeue(out var connection);
        return connection!;
    }

    /// <summary>The next connection whose handler returned.</summary>
    public async Task<ClientConnection> NextFinishedAsync()
    {
        if (!await _finishedSignal.WaitAsync(Kit.Timeout))
        {
            throw new TimeoutException("No handler finished.");
        }
        _finished.TryDequeue(out var connection);
        return connection!;
    }
}

internal static class Kit
{
    /// <summary>Bound on every wait, so a broken test fails instead of hanging. Not a speed assertion.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    public static byte[] Ascii(string text) => Encoding.ASCII.GetBytes(text);

    /// <summary>Reads one LF-terminated line from the pipe, or null at the end of input.</summary>
    public static async Task<string?> ReadLineAsync(PipeReader reader)
    {
        while (true)
        {
            var result = await reader.ReadAsync();
            var buffer = result.Buffer;
            var lineEnd = buffer.PositionOf((byte)'\n');
            if (lineEnd is { } end)
            {
                var line = Encoding.ASCII.GetString(buffer.Slice(0, end));
                reader.AdvanceTo(buffer.GetPosition(1, end));
                return line;
            }
            reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                return null;
            }
        }
    }

    /// <summary>Echoes every line until the client leaves, through Output.</summary>
    public static async Task EchoLinesAsync(ClientConnection connection, CancellationToken stopping)
    {
        while (await ReadLineAsync(connection.Input) is { } line)
        {
            await connection.Output.WriteAsync(Ascii(line + "\n"));
        }
    }

    /// <summary>Discards input until the client leaves.</summary>
    public static async Task DrainInputAsync(ClientConnection connection)
    {
        while (true)
        {
            var result = await connection.Input.ReadAsync();
            connection.Input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                return;
            }
        }
    }

    public static async Task<string?> ReadLineAsync(Stream stream)
    {
        var bytes = new List<byte>();
        var one = new byte[1];
        while (await stream.ReadAsync(one).AsTask().WaitAsync(Timeout) == 1)
        {
            if (one[0] == (byte)'\n')
            {
                return Encoding.ASCII.GetString([.. bytes]);
            }
            bytes.Add(one[0]);
        }
        return bytes.Count == 0 ? null : Encoding.ASCII.GetString([.. bytes]);
    }

    /// <summary>Reads until the peer closes (0) or resets; returns what arrived.</summary>
    public static async Task<byte[]> ReadToEndAsync(Socket socket)
    {
        var received = new ArrayBufferWriter<byte>();
        try
        {
            while (true)
            {
                var count = await socket.ReceiveAsync(received.GetMemory(4096), SocketFlags.None).AsTask().WaitAsync(Timeout);
                if (count == 0)
                {
                    break;
                }
                received.Advance(count);
            }
        }
        catch (SocketException)
        {
            // Reset: the end as far as this test is concerned.
        }
        return received.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Opens <paramref name="count"/> connections to an echo host, one after the other, each echoing one line
    /// before the next opens; they go into <paramref name="streams"/> as they open, for the caller to dispose.
    /// </summary>
    public static async Task ConnectAndPingEachAsync(TransportHost host, int count, List<NetworkStream> streams)
    {
        for (var i = 0; i < count; i++)
        {
            var stream = new NetworkStream(await host.ConnectAsync(), ownsSocket: true);
            streams.Add(stream);
            await stream.WriteAsync(Ascii("ping\n"));
            Assert.That(await ReadLineAsync(stream), Is.EqualTo("ping"));
        }
    }

    /// <summary>Polls <paramref name="condition"/> until it holds or the timeout passes.</summary>
    public static async Task<bool> EventuallyAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }
            await Task.Delay(10);
        }
        return true;
    }

    /// <summary>A certificate provider on a fresh temporary data directory (self-signed for "localhost").</summary>
    public static CertificateProvider Certificates(TemporaryDirectory directory) =>
        new(new CertificateSettings("localhost", directory.Path), NullLogger<CertificateProvider>.Instance);
}

internal sealed class TemporaryDirectory : IDisposable
{
    public TemporaryDirectory()
    {
        Path = Directory.CreateTempSubdirectory("connmgr-transport-").FullName;
    }

    public string Path { get; }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
