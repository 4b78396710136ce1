using System.Net.Sockets;
using System.Text;
using ConnMgr.Edge.Transport;
using NUnit.Framework;

namespace ConnMgr.Tests.Edge.Transport;

public class ClientListenerTests
{
    [Test]
    public async Task Echoes_a_line_over_loopback()
    {
        await using var host = TransportHost.Start(Kit.EchoLinesAsync);
        using var client = await host.ConnectAsync();
        await using var stream = new NetworkStream(client);

        await stream.WriteAsync(Kit.Ascii("hello\n"));

        Assert.That(await Kit.ReadLineAsync(stream), Is.EqualTo("hello"));
        var connection = await host.Handler.NextStartedAsync();
        Assert.That(connection.BytesReceived, Is.EqualTo(6));
        Assert.That(await Kit.EventuallyAsync(() => connection.BytesSent == 6), Is.True, "bytes sent are counted once the send completes");
        Assert.That(connection.LastReceiveTimestamp, Is.GreaterThan(0));
        Assert.That(connection.Transport, Is.EqualTo(TransportKind.Tcp));
        Assert.That(connection.IsSecure, Is.False);
        Assert.That(connection.RemoteEndPoint, Is.EqualTo(client.LocalEndPoint));
        Assert.That(connection.LocalPort, Is.EqualTo(host.EndPoint.Port));
    }

    [Test]
    public async Task Client_close_ends_the_handler_with_ClientClosed()
    {
        await using var host = TransportHost.Start(Kit.EchoLinesAsync);
        var client = await host.ConnectAsync();
        await client.SendAsync(Kit.Ascii("x\n"));
        await host.Handler.NextStartedAsync();

        client.Shutdown(SocketShutdown.Both);
        client.Dispose();

        var finished = await host.Handler.NextFinishedAsync();
        Assert.That(await Kit.EventuallyAsync(() => host.Transport.ConnectionCount == 0), Is.True);
        Assert.That(finished.CloseReason, Is.EqualTo(CloseReason.ClientClosed));
    }

    [Test]
    public async Task Serves_two_hundred_concurrent_connections()
    {
        const int count = 200;
        await using var host = TransportHost.Start(Kit.EchoLinesAsync);

        var clients = await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
        {
            var socket = await host.ConnectAsync();
            var stream = new NetworkStream(socket, ownsSocket: true);
            await stream.WriteAsync(Kit.Ascii($"client {i}\n"));
            var echoed = await Kit.ReadLineAsync(stream);
            return (stream, echoed, expected: $"client {i}");
        }));

        Assert.That(clients.Select(c => c.echoed), Is.EqualTo(clients.Select(c => c.expected)));
        Assert.That(host.Transport.ConnectionCount, Is.EqualTo(count));

        foreach (var (stream, _, _) in clients)
        {
            await stream.DisposeAsync();
        }
        Assert.That(await Kit.EventuallyAsync(() => host.Transport.ConnectionCount == 0), Is.True);
    }

    [Test]
    public async Task Idle_connections_hold_no_receive_buffer()
    {
        const int count = 50;
        await using var host = TransportHost.Start(Kit.EchoLinesAsync);
        var streams = new List<NetworkStream>();
        try
        {
            await Kit.ConnectAndPingEachAsync(host, count, streams);

            // Every connection has read and written; now all wait for input. With a receive
            // buffer rented per pending read this would stay at 50 blocks or more.
            Assert.That(await Kit.EventuallyAsync(() => host.Transport.BufferPool.RentedBlocks == 0), Is.True,
                $"{host.Transport.BufferPool.RentedBlocks} blocks still rented by {host.Transport.ConnectionCount} idle connections");
        }
        finally
        {
            foreach (var stream in streams)
            {
                await stream.DisposeAsync();
            }
        }
    }

    [Test]
    public async Task Over_the_cap_a_client_gets_the_reject_hook_then_is_closed()
    {
        var settings = new TransportSettings { MaxConnections = 2 };
        await using var host = TransportHost.Start(
            (connection, _) => Kit.DrainInputAsync(connection),
            settings,
            reject: async (connection, _) => await connection.Output.WriteAsync(Kit.Ascii("FULL\n")));

        using var first = await host.ConnectAsync();
        using var second = await host.ConnectAsync();
        await host.Handler.NextStartedAsync();
        await host.Handler.NextStartedAsync();

        using var third = await host.ConnectAsync();
        var received = await Kit.ReadToEndAsync(third);

        Assert.That(Encoding.ASCII.GetString(received), Is.EqualTo("FULL\n"));
        Assert.That(host.Handler.StartedCount, Is.Zero, "the handler never ran for the third client");
        Assert.That(host.Handler.Rejected.Single().CloseReason, Is.EqualTo(CloseReason.ConnectionCap));
        Assert.That(host.Transport.ConnectionCount, Is.EqualTo(2));
    }

    [Test]
    public async Task Shutdown_stops_accepting_drains_polite_handlers_then_aborts_the_rest()
    {
        var host = TransportHost.Start(async (connection, stopping) =>
        {
            var kind = await Kit.ReadLineAsync(connection.Input);
            await connection.Output.WriteAsync(Kit.Ascii("ready\n"));
            if (kind == "polite")
            {
                try
                {
                    await Task.Delay(Timeout.Infinite, stopping);
                }
                catch (OperationCanceledException)
                {
                    connection.TrySetCloseReason(CloseReason.ServerShutdown);
                    await connection.Output.WriteAsync(Kit.Ascii("bye\n"));
                }
                return;
            }
            // Stubborn: ignores the stopping token, waits for input that never comes.
            await Kit.DrainInputAsync(connection);
        });

        using var polite = await host.ConnectAsync();
        using var stubborn = await host.ConnectAsync();
        await polite.SendAsync(Kit.Ascii("polite\n"));
        await stubborn.SendAsync(Kit.Ascii("stubborn\n"));
        var politeConnection = await host.Handler.NextStartedAsync();
        var stubbornConnection = await host.Handler.NextStartedAsync();
        if (!politeConnection.RemoteEndPoint.Equals(polite.LocalEndPoint))
        {
            (politeConnection, stubbornConnection) = (stubbornConnection, politeConnection);
        }
        var politeStream = new NetworkStream(polite);
        Assert.That(await Kit.ReadLineAsync(politeStream), Is.EqualTo("ready"));

        await host.Transport.ShutdownAsync(TimeSpan.FromMilliseconds(300));

        Assert.That(await Kit.ReadLineAsync(politeStream), Is.EqualTo("bye"));
        Assert.That(politeConnection.CloseReason, Is.EqualTo(CloseReason.ServerShutdown));
        Assert.That(stubbornConnection.CloseReason, Is.EqualTo(CloseReason.ServerShutdown));
        Assert.That(stubbornConnection.Lifetime!.IsCompleted, Is.True, "shutdown awaited the aborted connection");
        Assert.That(host.Transport.ConnectionCount, Is.Zero);
        var refused = Assert.ThrowsAsync<SocketException>(async () => await host.ConnectAsync());
        Assert.That(refused!.SocketErrorCode, Is.EqualTo(SocketError.ConnectionRefused));
    }

    [Test]
    public async Task A_passed_deadline_aborts_on_the_next_heartbeat_and_a_cleared_one_does_not()
    {
        await using var host = TransportHost.Start(async (connection, _) =>
        {
            var line = await Kit.ReadLineAsync(connection.Input);
            connection.SetDeadline(TimeSpan.FromSeconds(60), CloseReason.NegotiationTimeout);
            if (line == "clear")
            {
                connection.ClearDeadline();
            }
            await connection.Output.WriteAsync(Kit.Ascii("set\n"));
            await Kit.DrainInputAsync(connection);
        });
        using var timesOut = await host.ConnectAsync();
        using var cleared = await host.ConnectAsync();
        await timesOut.SendAsync(Kit.Ascii("keep\n"));
        await cleared.SendAsync(Kit.Ascii("clear\n"));
        Assert.That(await Kit.ReadLineAsync(new NetworkStream(timesOut)), Is.EqualTo("set"));
        Assert.That(await Kit.ReadLineAsync(new NetworkStream(cleared)), Is.EqualTo("set"));

        host.Tick(TimeSpan.FromSeconds(30));
        Assert.That(host.Transport.ConnectionCount, Is.EqualTo(2), "not yet");

        host.Tick(TimeSpan.FromSeconds(61));
        var finished = await host.Handler.NextFinishedAsync();

        Assert.That(finished.CloseReason, Is.EqualTo(CloseReason.NegotiationTimeout));
        Assert.That(await Kit.ReadToEndAsync(timesOut), Is.Empty);
        Assert.That(await Kit.EventuallyAsync(() => host.Transport.ConnectionCount == 1), Is.True);
        host.Tick(TimeSpan.FromSeconds(120));
        Assert.That(host.Transport.ConnectionCount, Is.EqualTo(1), "the cleared deadline never fires");
    }

    [Test]
    public async Task The_heartbeat_reaches_the_stream_layer_listener()
    {
        var listener = new CountingListener();
        await using var host = TransportHost.Start(async (connection, _) =>
        {
            connection.HeartbeatListener = listener;
            await connection.Output.WriteAsync(Kit.Ascii("ok\n"));
            await Kit.DrainInputAsync(connection);
        });
        using var client = await host.ConnectAsync();
        Assert.That(await Kit.ReadLineAsync(new NetworkStream(client)), Is.EqualTo("ok"));

        host.Tick(TimeSpan.FromSeconds(1));
        host.Tick(TimeSpan.FromSeconds(2));

        Assert.That(listener.Calls, Is.EqualTo(2));
    }

    [Test]
    public async Task Listening_on_a_taken_port_names_the_endpoint()
    {
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        taken.Listen();
        await using var transport = new ClientTransport(new TransportSettings(), new RecordingHandler((_, _) => Task.CompletedTask, null), null,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<ClientTransport>.Instance);

        var error = Assert.Throws<InvalidOperationException>(() => transport.Listen((System.Net.IPEndPoint)taken.LocalEndPoint!, TransportKind.Tcp));

        Assert.That(error!.Message, Does.Contain(taken.LocalEndPoint!.ToString()));
    }

    private sealed class CountingListener : IConnectionHeartbeatListener
    {
        private int _calls;

        public int Calls => Volatile.Read(ref _calls);

        public void OnHeartbeat(ClientConnection connection, long timestamp) => Interlocked.Increment(ref _calls);
    }
}
