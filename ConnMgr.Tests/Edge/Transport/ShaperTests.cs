using System.Diagnostics;
using ConnMgr.Edge.Transport;
using NUnit.Framework;

namespace ConnMgr.Tests.Edge.Transport;

/// <summary>
/// The shaper is driven by explicit heartbeat ticks, so these assertions count bytes per tick and
/// do not depend on how fast the machine is.
/// </summary>
public class ShaperTests
{
    private const int Rate = 8192;
    private const int ReadSize = TransportBufferPool.BlockSize;

    [Test]
    public async Task Reads_at_most_the_burst_then_one_rate_per_heartbeat_and_never_disconnects()
    {
        var settings = new TransportSettings { ClientRateBytesPerSecond = Rate, ClientRateBurstSeconds = 1 };
        var start = Stopwatch.GetTimestamp();
        await using var host = TransportHost.Start((connection, _) => Kit.DrainInputAsync(connection), settings);
        using var client = await host.ConnectAsync();
        var sent = new byte[64 * 1024];
        await client.SendAsync(sent);
        var connection = await host.Handler.NextStartedAsync();

        // Bucket starts full (the burst). Each tick k seconds after `start` refills at most one
        // rate; the first one a little less, since the connection was created after `start`.
        for (var tick = 0; tick <= 3; tick++)
        {
            if (tick > 0)
            {
                host.Transport.OnHeartbeat(start + (tick * Stopwatch.Frequency));
            }
            Assert.That(await Kit.EventuallyAsync(() => connection.IsThrottled), Is.True, $"throttled after tick {tick}");

            var allowance = Rate + (tick * Rate);
            Assert.That(connection.BytesReceived, Is.LessThan(allowance + ReadSize), $"tick {tick}: no more than the allowance plus one read");
            Assert.That(connection.BytesReceived, Is.GreaterThanOrEqualTo(allowance - (tick > 0 ? Rate : 0)), $"tick {tick}: the allowance was used");
        }

        for (var tick = 4; connection.BytesReceived < sent.Length && tick < 20; tick++)
        {
            host.Transport.OnHeartbeat(start + (tick * Stopwatch.Frequency));
            await Kit.EventuallyAsync(() => connection.IsThrottled || connection.BytesReceived == sent.Length);
        }
        Assert.That(connection.BytesReceived, Is.EqualTo(sent.Length), "everything arrives in the end");
        Assert.That(connection.CloseReason, Is.EqualTo(CloseReason.None), "slowed, never cut");
    }

    [Test]
    public async Task Without_a_rate_nothing_is_throttled()
    {
        await using var host = TransportHost.Start((connection, _) => Kit.DrainInputAsync(connection));
        using var client = await host.ConnectAsync();
        await client.SendAsync(new byte[256 * 1024]);
        var connection = await host.Handler.NextStartedAsync();

        Assert.That(await Kit.EventuallyAsync(() => connection.BytesReceived == 256 * 1024), Is.True);
        Assert.That(connection.IsThrottled, Is.False);
    }
}
