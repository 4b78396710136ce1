using System.Diagnostics;
using ConnMgr.Diagnostics;
using ConnMgr.Edge;
using ConnMgr.Hosting;
using ConnMgr.Tests.Hosting;
using ConnMgr.Tests.OpenfireDouble;
using NUnit.Framework;

namespace ConnMgr.Tests.EndToEnd;

/// <summary>The edge as the daemon runs it (<see cref="EdgeService"/> in <see cref="DaemonHost"/>), linked to the Openfire double.</summary>
[Explicit("EdgeService is not registered in DaemonHost yet: wiring it next to the embedded core changes READY, /health and port-0 behaviour that four hosting tests assert")]
public sealed class EdgeServiceTests
{
    [Test]
    public async Task The_daemon_serves_clients_once_linked_and_shuts_down_in_order_within_the_drain_time()
    {
        // Link TLS off: the double's certificate is self-signed, and the daemon validates link certificates.
        await using var server = OpenfireDoubleServer.Start(new OpenfireDoubleOptions { LinkTlsPolicy = TlsPolicy.Disabled });
        var daemon = await TestDaemon.StartAsync(
        [
            "--Core:Enabled=false",
            "--Xmpp:Domain=example.com",
            "--Edge:Name=edge1",
            "--Edge:ShutdownDrainSeconds=3",
            "--Upstream:Host=127.0.0.1",
            $"--Upstream:Port={server.Port}",
            "--Upstream:Secret=secret",
            "--Upstream:Links=2",
        ]);
        try
        {
            await daemon.Get<ReadinessGate>().Ready.WaitAsync(XmppTestClient.Timeout);
            Assert.That(daemon.Get<IUpstreamHealth>().LinksUp, Is.GreaterThanOrEqualTo(1));
            var starttls = daemon.Endpoint(EdgeService.ClientPortKey);
            var directTls = daemon.Endpoint(EdgeService.DirectTlsPortKey);

            await using var alice = await XmppTestClient.ConnectAsync(starttls);
            await alice.LoginAsync("alice");
            await using var bob = await XmppTestClient.ConnectAsync(directTls, directTls: true);
            await bob.LoginAsync("bob");
            await EdgeHarness.ExchangeAsync(alice, bob, "through-the-daemon");

            var stopwatch = Stopwatch.StartNew();
            var stopping = daemon.Host.StopAsync();
            await alice.ExpectStreamErrorAsync("system-shutdown");
            await bob.ExpectStreamErrorAsync("system-shutdown");
            await stopping.WaitAsync(TimeSpan.FromSeconds(3 + 5 + 10));
            stopwatch.Stop();

            // Every session got its <close/> before the links went (spec 0.1 point 2).
            foreach (var streamId in new[] { alice.StreamId!, bob.StreamId! })
            {
                var close = server.ReceivedElements.First(e => e.Name == "iq" && e.Xml.Contains("<close", StringComparison.Ordinal) && e.Xml.Contains(streamId, StringComparison.Ordinal));
                var linkEnd = server.ReceivedElements.First(e => e.Link == close.Link && e.Xml == "</stream:stream>");
                Assert.That(close.Sequence, Is.LessThan(linkEnd.Sequence));
            }
            Assert.That(server.Sessions, Is.Empty);
            Assert.That(stopwatch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(3 + 5)), "Edge:ShutdownDrainSeconds plus the host's margin");
        }
        finally
        {
            await daemon.DisposeAsync();
        }
    }

    [Test]
    public async Task Clients_are_refused_until_a_first_link_is_up()
    {
        var daemon = await TestDaemon.StartAsync(
        [
            "--Core:Enabled=false",
            "--Upstream:Host=127.0.0.1",
            "--Upstream:Port=1",
            "--Upstream:Secret=secret",
        ]);
        try
        {
            Assert.That(daemon.Get<ListenerEndpoints>().TryGet(EdgeService.ClientPortKey, out _), Is.False, "no client listener without upstream (spec 0.1 point 3)");
            Assert.That(daemon.Get<ReadinessGate>().Ready.IsCompleted, Is.False);
            Assert.That(daemon.Get<IUpstreamHealth>().LinksUp, Is.Zero);
        }
        finally
        {
            await daemon.DisposeAsync();
        }
    }
}
