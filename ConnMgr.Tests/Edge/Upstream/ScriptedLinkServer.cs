using System.Net.Sockets;
using System.Net;
using System.Text;

namespace ConnMgr.Tests.Edge.Upstream;

/// <summary>
/// A listener that answers every link header with fixed text and closes: for the refusals the
/// Openfire double cannot be made to produce with a well-behaved edge (spec 3.3: bad-format for
/// a missing <c>to</c>, invalid-namespace for a wrong stream).
/// </summary>
internal sealed class ScriptedLinkServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _connections;

    public ScriptedLinkServer(string reply)
    {
        _listener.Start();
        _loop = AcceptAsync(reply);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public int Connections => Volatile.Read(ref _connections);

    private async Task AcceptAsync(string reply)
    {
        var bytes = Encoding.UTF8.GetBytes(reply);
        try
        {
            while (true)
            {
                using var socket = await _listener.AcceptSocketAsync(_stop.Token);
                Interlocked.Increment(ref _connections);
                var header = new StringBuilder();
                var buffer = new byte[1024];
                // The edge's header ends with version="1.0">.
                while (!header.ToString().Contains("version=\"1.0\">"))
                {
                    var read = await socket.ReceiveAsync(buffer, _stop.Token);
                    if (read == 0)
                    {
                        break;
                    }
                    header.Append(Encoding.UTF8.GetString(buffer, 0, read));
                }
                await socket.SendAsync(bytes, _stop.Token);
                socket.Shutdown(SocketShutdown.Both);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        await _loop;
        _stop.Dispose();
    }
}
