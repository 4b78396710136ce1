using ConnMgr.Edge.Transport;
using Microsoft.Extensions.Logging.Abstractions;
using NUnit.Framework;

namespace ConnMgr.Tests.Edge.Transport;

public class HeartbeatTests
{
    [Test]
    public async Task A_failing_handler_does_not_stop_the_others()
    {
        await using var heartbeat = new Heartbeat(NullLogger<Heartbeat>.Instance);
        var counting = new Counting();
        heartbeat.Register(new Throwing());
        heartbeat.Register(counting);

        heartbeat.Tick(1);
        heartbeat.Tick(2);

        Assert.That(counting.Timestamps, Is.EqualTo(new long[] { 1, 2 }));
    }

    [Test]
    public async Task An_unregistered_handler_is_no_longer_visited()
    {
        await using var heartbeat = new Heartbeat(NullLogger<Heartbeat>.Instance);
        var counting = new Counting();
        heartbeat.Register(counting);
        heartbeat.Tick(1);

        heartbeat.Unregister(counting);
        heartbeat.Tick(2);

        Assert.That(counting.Timestamps, Is.EqualTo(new long[] { 1 }));
    }

    [Test]
    public async Task Once_started_it_ticks_by_itself_until_disposed()
    {
        var counting = new Counting();
        var heartbeat = new Heartbeat(NullLogger<Heartbeat>.Instance);
        heartbeat.Register(counting);

        heartbeat.Start();
        Assert.That(await Kit.EventuallyAsync(() => counting.Timestamps.Count >= 1), Is.True);
        await heartbeat.DisposeAsync();
        var ticks = counting.Timestamps.Count;
        await Task.Delay(Heartbeat.Interval * 1.5);

        Assert.That(counting.Timestamps.Count, Is.EqualTo(ticks), "no tick after disposal");
    }

    private sealed class Counting : IHeartbeatHandler
    {
        private readonly List<long> _timestamps = [];

        public IReadOnlyList<long> Timestamps
        {
            get
            {
                lock (_timestamps)
                {
                    return [.. _timestamps];
                }
            }
        }

        public void OnHeartbeat(long timestamp)
        {
            lock (_timestamps)
            {
                _timestamps.Add(timestamp);
            }
        }
    }

    private sealed class Throwing : IHeartbeatHandler
    {
        public void OnHeartbeat(long timestamp) => throw new InvalidOperationException("broken handler");
    }
}
