using System.Net.Sockets;
using ConnMgr.Edge.Transport;
using NUnit.Framework;

namespace ConnMgr.Tests.Edge.Transport;

public class SocketSenderPoolTests
{
    [Test]
    public async Task Idle_plain_connections_hold_no_sender_and_share_the_pooled_ones()
    {
        const int count = 20;
        await using var host = TransportHost.Start(Kit.EchoLinesAsync);
        var streams = new List<NetworkStream>();
        try
        {
            await Kit.ConnectAndPingEachAsync(host, count, streams);

            // Every connection has written; now all wait for input, and their senders are back.
            var senders = host.Transport.SocketSenders;
            Assert.That(await Kit.EventuallyAsync(() => senders.Rented == 0), Is.True, $"{senders.Rented} senders still held by idle connections");
            // One after the other, the echoes reused the same few senders instead of one per connection.
            Assert.That(senders.Retained, Is.InRange(1, count / 2));

            // A sender back from the pool still works.
            await streams[0].WriteAsync(Kit.Ascii("again\n"));
            Assert.That(await Kit.ReadLineAsync(streams[0]), Is.EqualTo("again"));
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
    public void A_return_beyond_the_limit_is_dropped()
    {
        var pool = new SocketSenderPool(maxRetained: 1);
        var first = pool.Rent();
        var second = pool.Rent();
        Assert.That(pool.Rented, Is.EqualTo(2));

        pool.Return(first);
        pool.Return(second);

        Assert.That((pool.Rented, pool.Retained), Is.EqualTo((0, 1)));
        Assert.That(pool.Rent(), Is.SameAs(first));
    }
}
