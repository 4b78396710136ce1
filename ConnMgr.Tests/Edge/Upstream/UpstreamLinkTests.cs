using ConnMgr.Edge.Upstream;
using ConnMgr.Tests.OpenfireDouble;
using NUnit.Framework;
using static ConnMgr.Tests.Edge.Upstream.UpstreamTestSupport;

namespace ConnMgr.Tests.Edge.Upstream;

/// <summary>Link establishment against the Openfire double: header, STARTTLS, handshake, configuration IQ (spec 3).</summary>
[TestFixture]
public sealed class UpstreamLinkTests
{
    [Test]
    public async Task Links_authenticate_over_starttls_and_turn_the_configuration_into_client_settings()
    {
        await using var server = OpenfireDoubleServer.Start(new OpenfireDoubleOptions { ClientTlsPolicy = TlsPolicy.Required });
        await using var pool = await StartPoolAsync(Settings(server, links: 3));

        await WaitForLinksAsync(pool, 3);
        var links = server.Links.Where(l => l.IsAuthenticated).ToList();
        Assert.That(links.Select(l => l.Jid), Is.EquivalentTo(new[] { "cm1/link-1", "cm1/link-2", "cm1/link-3" }));
        Assert.That(links.All(l => l.IsEncrypted), Is.True, "STARTTLS is used when offered (LinkTls IfOffered)");

        var configuration = pool.Configuration!;
        Assert.That(configuration.Mechanisms, Is.EqualTo(new[] { "PLAIN", "SCRAM-SHA-1" }), "EXTERNAL and *-PLUS are removed (spec 7.2)");
        Assert.That(configuration.TlsOffered && configuration.TlsRequired, Is.True);
        Assert.That(configuration.CompressionOffered, Is.True);
        Assert.That(configuration.Register, Is.True);
        Assert.That(configuration.IqAuth, Is.False);

        // Every configuration IQ is answered with a result carrying its id (spec 3.7).
        await server.WaitForAsync(s => s.ReceivedElements.Count(e => e.Name == "iq" && e.Attr("type") == "result") == 3,
            description: "three configuration results");
        var configurationIds = server.SentFrames.Where(f => f.Text.Contains("<configuration")).Select(f => System.Xml.Linq.XElement.Parse(f.Text).Attribute("id")!.Value);
        var resultIds = server.ReceivedElements.Where(e => e.Name == "iq" && e.Attr("type") == "result").Select(e => e.Attr("id"));
        Assert.That(resultIds, Is.EquivalentTo(configurationIds));
    }

    [Test]
    public async Task A_plain_link_is_used_when_tls_is_never_wanted()
    {
        await using var server = OpenfireDoubleServer.Start();
        await using var pool = await StartPoolAsync(Settings(server) with { LinkTls = LinkTlsMode.Never });

        Assert.That(server.Links.Single(l => l.IsAuthenticated).IsEncrypted, Is.False);
    }

    [Test]
    public async Task Direct_tls_ignores_the_starttls_the_server_advertises_anyway()
    {
        // Spec 3.4: Openfire's Direct-TLS listener still offers <starttls/>.
        await using var server = OpenfireDoubleServer.Start(new OpenfireDoubleOptions { DirectTls = true });
        await using var pool = await StartPoolAsync(Settings(server) with { DirectTls = true, LinkTls = LinkTlsMode.Required });

        var link = server.Links.Single(l => l.IsAuthenticated);
        Assert.That(link.IsEncrypted, Is.True);
        Assert.That(server.ReceivedElements.Any(e => e.Name == "starttls"), Is.False);
    }

    [Test]
    public async Task A_wrong_secret_is_logged_with_the_setting_to_fix_and_retried()
    {
        await using var server = OpenfireDoubleServer.Start();
        var logger = new ListLogger<UpstreamPool>();
        await using var pool = new UpstreamPool(Settings(server) with { Secret = "wrong" }, logger);
        var start = pool.StartAsync(CancellationToken.None);

        await logger.WaitForAsync(3020, count: 2);
        Assert.That(logger.Entries.First(e => e.EventId == 3020).Message, Does.Contain("Upstream:Secret").And.Contain("xmpp.multiplex.defaultSecret"));
        Assert.That(server.Counters.HandshakesFailed, Is.GreaterThanOrEqualTo(2), "retried after the refusal");
        Assert.That(pool.LinksUp, Is.Zero);
        Assert.That(start.IsCompleted, Is.False, "StartAsync waits for a usable link");
    }

    [Test]
    public async Task A_server_without_secret_is_reported_as_such()
    {
        await using var server = OpenfireDoubleServer.Start(new OpenfireDoubleOptions { Secret = null });
        var logger = new ListLogger<UpstreamPool>();
        await using var pool = new UpstreamPool(Settings(server), logger);
        _ = pool.StartAsync(CancellationToken.None);

        await logger.WaitForAsync(3022);
        Assert.That(logger.Entries.First(e => e.EventId == 3022).Message, Does.Contain("set xmpp.multiplex.defaultSecret on the server"));
        Assert.That(pool.LinksUp, Is.Zero);
    }

    [Test]
    public async Task A_link_name_in_use_is_retried_under_a_new_name()
    {
        await using var server = OpenfireDoubleServer.Start();
        await using var first = await StartPoolAsync(Settings(server));
        var logger = new ListLogger<UpstreamPool>();

        // Same Edge:Name, as after a crash while the server still holds the old link (spec 8.6).
        await using var second = await StartPoolAsync(Settings(server), logger);

        Assert.That(logger.Count(3021), Is.EqualTo(1), "conflict logged once");
        Assert.That(logger.Entries.First(e => e.EventId == 3021).Message, Does.Contain("Edge:Name"));
        Assert.That(server.Links.Where(l => l.IsAuthenticated && l.IsOpen).Select(l => l.Jid), Is.EquivalentTo(new[] { "cm1/link-1", "cm1/link-2" }));
    }

    [Test]
    public async Task Tls_required_by_the_server_but_disabled_here_is_reported()
    {
        await using var server = OpenfireDoubleServer.Start(new OpenfireDoubleOptions { LinkTlsPolicy = TlsPolicy.Required });
        var logger = new ListLogger<UpstreamPool>();
        await using var pool = new UpstreamPool(Settings(server) with { LinkTls = LinkTlsMode.Never }, logger);
        _ = pool.StartAsync(CancellationToken.None);

        await logger.WaitForAsync(3026);
        Assert.That(server.Counters.HandshakesSucceeded, Is.Zero, "no handshake over a link the server would refuse");
    }

    [Test]
    public async Task Tls_required_here_but_not_offered_is_reported()
    {
        await using var server = OpenfireDoubleServer.Start(new OpenfireDoubleOptions { LinkTlsPolicy = TlsPolicy.Disabled });
        var logger = new ListLogger<UpstreamPool>();
        await using var pool = new UpstreamPool(Settings(server) with { LinkTls = LinkTlsMode.Required }, logger);
        _ = pool.StartAsync(CancellationToken.None);

        await logger.WaitForAsync(3027);
        Assert.That(server.Counters.HandshakesSucceeded, Is.Zero);
    }

    [TestCase("bad-format", 3023, "Edge:Name")]
    [TestCase("invalid-namespace", 3024, "connection-manager port")]
    [TestCase("policy-violation", 3025, "policy-violation")]
    public async Task Other_refusals_name_what_to_fix_and_are_retried(string condition, int eventId, string advice)
    {
        // Spec 3.3: header, then the stream error, then the end of the stream.
        await using var server = new ScriptedLinkServer(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><stream:stream xmlns:stream=\"http://etherx.jabber.org/streams\" xmlns=\"jabber:connectionmanager\" version=\"1.0\">"
            + $"<stream:error xmlns:stream=\"http://etherx.jabber.org/streams\"><{condition} xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/></stream:error></stream:stream>");
        var logger = new ListLogger<UpstreamPool>();
        await using var pool = new UpstreamPool(new UpstreamSettings
        {
            Host = "127.0.0.1",
            Port = server.Port,
            Secret = "secret",
            CmName = CmName,
            Links = 1,
            ReconnectInitial = TimeSpan.FromMilliseconds(50),
        }, logger);
        _ = pool.StartAsync(CancellationToken.None);

        await logger.WaitForAsync(eventId, count: 2);
        Assert.That(logger.Entries.First(e => e.EventId == eventId).Message, Does.Contain(advice));
        Assert.That(server.Connections, Is.GreaterThanOrEqualTo(2));
    }

    [Test]
    public async Task A_silent_link_is_declared_dead_and_replaced()
    {
        // The double's 30-s heartbeat is pushed out of reach: nothing arrives on the link.
        await using var server = OpenfireDoubleServer.Start(new OpenfireDoubleOptions { HeartbeatInterval = TimeSpan.FromHours(1) });
        var logger = new ListLogger<UpstreamPool>();
        await using var pool = await StartPoolAsync(
            Settings(server) with { Keepalive = TimeSpan.FromMilliseconds(100), DeadAfter = TimeSpan.FromMilliseconds(600) }, logger);

        await logger.WaitForAsync(3008);
        await server.WaitForAsync(s => s.Counters.HandshakesSucceeded >= 2, description: "a second link after the dead one");
        Assert.That(server.Links.First().CloseReason, Is.EqualTo(OpenfireDouble.LinkCloseReason.CmClosedConnection));
    }

    [Test]
    public async Task Keepalive_whitespace_keeps_an_otherwise_idle_link_open_on_the_server()
    {
        // Server idle rule (spec 8.3): a link silent for two half-periods of the idle limit is closed.
        await using var server = OpenfireDoubleServer.Start(new OpenfireDoubleOptions
        {
            IdleTimeout = TimeSpan.FromMilliseconds(800),
            HeartbeatInterval = TimeSpan.FromMilliseconds(100),
        });
        await using var pool = await StartPoolAsync(Settings(server) with { Keepalive = TimeSpan.FromMilliseconds(100), DeadAfter = TimeSpan.FromSeconds(5) });

        await Task.Delay(2000);
        Assert.That(server.Links.Single().IsOpen, Is.True);
        Assert.That(pool.LinksUp, Is.EqualTo(1));
    }

    [Test]
    public void Bad_settings_are_refused_with_the_key_to_fix()
    {
        var settings = new UpstreamSettings { Host = "127.0.0.1", Secret = "s", CmName = "cm1" };
        Assert.Multiple(() =>
        {
            Assert.That(() => new UpstreamPool(settings with { Links = 0 }, new ListLogger<UpstreamPool>()),
                Throws.ArgumentException.With.Message.Contains("Upstream:Links"));
            Assert.That(() => new UpstreamPool(settings with { CmName = "CM 1" }, new ListLogger<UpstreamPool>()),
                Throws.ArgumentException.With.Message.Contains("Edge:Name"));
            Assert.That(() => new UpstreamPool(settings with { Secret = "" }, new ListLogger<UpstreamPool>()),
                Throws.ArgumentException.With.Message.Contains("Upstream:Secret"));
        });
    }
}
