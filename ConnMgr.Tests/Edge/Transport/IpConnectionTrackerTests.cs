using System.Net;
using ConnMgr.Edge.Transport;
using NUnit.Framework;

namespace ConnMgr.Tests.Edge.Transport;

public class IpConnectionTrackerTests
{
    [Test]
    public void Refuses_over_the_limit_and_admits_again_after_a_release()
    {
        var tracker = new IpConnectionTracker(maxUnauthenticatedPerIp: 2);
        var address = IPAddress.Parse("198.51.100.4");

        Assert.That(tracker.TryAcquireUnauthenticated(address), Is.True);
        Assert.That(tracker.TryAcquireUnauthenticated(address), Is.True);
        Assert.That(tracker.TryAcquireUnauthenticated(address), Is.False);
        Assert.That(tracker.TryAcquireUnauthenticated(IPAddress.Parse("198.51.100.5")), Is.True, "another address has its own count");

        tracker.ReleaseUnauthenticated(address);
        Assert.That(tracker.TryAcquireUnauthenticated(address), Is.True);
        Assert.That(tracker.GetUnauthenticatedCount(address), Is.EqualTo(2));
    }

    [Test]
    public void Forgets_an_address_whose_count_drops_to_zero()
    {
        var tracker = new IpConnectionTracker(5);
        var address = IPAddress.Parse("198.51.100.4");
        tracker.TryAcquireUnauthenticated(address);

        tracker.ReleaseUnauthenticated(address);

        Assert.That(tracker.AddressCount, Is.Zero);
        Assert.Throws<InvalidOperationException>(() => tracker.ReleaseUnauthenticated(address));
    }

    [Test]
    public void Counts_IPv6_per_64_prefix_and_mapped_IPv4_as_IPv4()
    {
        var tracker = new IpConnectionTracker(2);

        Assert.That(tracker.TryAcquireUnauthenticated(IPAddress.Parse("2001:db8:1:2::1")), Is.True);
        Assert.That(tracker.TryAcquireUnauthenticated(IPAddress.Parse("2001:db8:1:2:ffff::9")), Is.True);
        Assert.That(tracker.TryAcquireUnauthenticated(IPAddress.Parse("2001:db8:1:2:abcd::1")), Is.False, "same /64");
        Assert.That(tracker.TryAcquireUnauthenticated(IPAddress.Parse("2001:db8:1:3::1")), Is.True, "another /64");

        Assert.That(tracker.TryAcquireUnauthenticated(IPAddress.Parse("192.0.2.1")), Is.True);
        Assert.That(tracker.TryAcquireUnauthenticated(IPAddress.Parse("::ffff:192.0.2.1")), Is.True);
        Assert.That(tracker.GetUnauthenticatedCount(IPAddress.Parse("192.0.2.1")), Is.EqualTo(2));
        Assert.That(tracker.GetUnauthenticatedCount(IPAddress.Parse("::")), Is.Zero, "IPv4 0.0.0.0 and :: do not share a key");
    }
}
