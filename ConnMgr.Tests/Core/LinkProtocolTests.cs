using System.Xml.Linq;
using ConnMgr.Core;
using ConnMgr.Protocol;
using ConnMgr.Tests.Edge.Upstream;
using Microsoft.Extensions.Logging;
using NUnit.Framework;

namespace ConnMgr.Tests.Core;

/// <summary>The server side of the link protocol: header checks, handshake, configuration, session IQs, route errors (spec 3, 5, 6).</summary>
[TestFixture]
[CancelAfter(60_000)]
public class LinkProtocolTests
{
    private static readonly XNamespace Stanzas = XmppNamespaces.Stanzas;
    private static readonly XNamespace CmErrors = XmppNamespaces.ConnectionManagerErrors;
    private static readonly XNamespace StreamErrors = XmppNamespaces.Streams;

    private CoreTestServer _core = null!;

    [SetUp]
    public void Start() => _core = CoreTestServer.Start();

    [TearDown]
    public async Task Stop() => await _core.DisposeAsync();

    [Test]
    public async Task Header_is_answered_with_the_link_jid_a_fresh_id_and_no_sasl()
    {
        await using var link = await TestCmLink.ConnectAsync(_core.EndPoint);
        Assert.Multiple(() =>
        {
            Assert.That(link.Header!.From, Is.EqualTo("cm1/link-1"));
            Assert.That(link.Header.Id, Does.Match("^[0-9a-z]{10}$"));
            Assert.That(link.Header.DefaultNamespace, Is.EqualTo("jabber:connectionmanager"));
        });
    }

    [Test]
    public async Task Right_secret_gets_an_empty_handshake_then_the_configuration_iq()
    {
        await using var link = await TestCmLink.ConnectAsync(_core.EndPoint);
        var configuration = await link.HandshakeAsync(CoreTestServer.Secret);

        var body = configuration.Element(TestCmLink.Cm + "configuration");
        Assert.That(body, Is.Not.Null, configuration.ToString());
        var tls = XNamespace.Get(XmppNamespaces.Tls);
        var sasl = XNamespace.Get(XmppNamespaces.Sasl);
        Assert.Multiple(() =>
        {
            Assert.That(configuration.Attribute("type")?.Value, Is.EqualTo("set"));
            Assert.That(configuration.Attribute("id")?.Value, Does.Match(@"^\d{1,3}-\d+$"));
            Assert.That(body!.Elements().Select(e => e.Name.LocalName), Is.EqualTo(new[] { "starttls", "mechanisms" }), "children in order, no compression, auth or register");
            Assert.That(body.Element(tls + "starttls")!.Element(tls + "required"), Is.Not.Null);
            Assert.That(body.Element(sasl + "mechanisms")!.Elements(sasl + "mechanism").Select(m => m.Value),
                Is.EqualTo(new[] { "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN" }));
        });
    }

    [Test]
    public async Task Configuration_without_client_tls_requirement_still_offers_starttls()
    {
        await _core.DisposeAsync();
        _core = CoreTestServer.Start(o => o with { RequireClientTls = false });
        await using var link = await TestCmLink.ConnectAsync(_core.EndPoint);
        var configuration = await link.HandshakeAsync(CoreTestServer.Secret);
        var tls = XNamespace.Get(XmppNamespaces.Tls);
        var starttls = configuration.Element(TestCmLink.Cm + "configuration")!.Element(tls + "starttls");
        Assert.That(starttls, Is.Not.Null);
        Assert.That(starttls!.HasElements, Is.False);
    }

    [Test]
    public async Task Wrong_secret_gets_not_authorized_and_the_link_is_closed()
    {
        await using var link = await TestCmLink.ConnectAsync(_core.EndPoint);
        await link.SendAsync("<handshake>0000000000000000000000000000000000000000</handshake>");
        var error = await link.NextAsync();
        Assert.That(error.Name, Is.EqualTo(TestCmLink.Streams + "error"));
        Assert.That(error.Element(StreamErrors + "not-authorized"), Is.Not.Null, error.ToString());
        await link.Closed.WaitAsync(TestCmLink.Timeout);
    }

    [Test]
    public async Task Missing_to_is_bad_format()
    {
        await using var link = await TestCmLink.ConnectAsync(_core.EndPoint, linkJid: null);
        Assert.That(link.Header!.From, Is.Null);
        Assert.That(link.Header.Id, Is.Null);
        var error = await link.NextAsync();
        Assert.That(error.Element(StreamErrors + "bad-format"), Is.Not.Null, error.ToString());
        Assert.That(error.Element(StreamErrors + "text")?.Value, Is.EqualTo("Missing 'to' attribute value."));
        await link.Closed.WaitAsync(TestCmLink.Timeout);
    }

    [Test]
    public async Task Links_authenticating_at_once_each_log_their_own_count_of_the_cms_links()
    {
        // The count is taken when the link joins its CM, not read afterwards: links that finish their
        // handshakes together must log 1 to 32, not the same total again and again.
        const int Links = 32;
        var log = new ListLogger<CoreServer>();
        await using var core = CoreTestServer.Start(loggerFactory: new SingleLoggerFactory(log));
        var opening = Enumerable.Range(1, Links).Select(k => core.OpenLinkAsync($"cm1/link-{k}")).ToArray();
        var links = await Task.WhenAll(opening);
        try
        {
            await log.WaitForAsync(LinkAuthenticatedEvent, Links);
            var counts = log.Entries.Where(e => e.EventId == LinkAuthenticatedEvent)
                .Select(e => int.Parse(e.Message[(e.Message.LastIndexOf("now has ", StringComparison.Ordinal) + 8)..].Split(' ')[0]))
                .Order();
            Assert.That(counts, Is.EqualTo(Enumerable.Range(1, Links)));
        }
        finally
        {
            foreach (var link in links)
            {
                await link.DisposeAsync();
            }
        }
    }

    // CoreLog.LinkAuthenticated.
    private const int LinkAuthenticatedEvent = 4010;

    /// <summary>Hands every category the same logger.</summary>
    private sealed class SingleLoggerFactory(ILogger logger) : ILoggerFactory
    {
        public ILogger CreateLogger(string categoryName) => logger;

        public void AddProvider(ILoggerProvider provider)
        {
        }

        public void Dispose()
        {
        }
    }

    [Test]
    public async Task A_second_link_with_the_same_jid_is_a_conflict_but_another_resource_is_fine()
    {
        await using var first = await _core.OpenLinkAsync("cm1/link-1");
        await using var duplicate = await TestCmLink.ConnectAsync(_core.EndPoint, "cm1/link-1");
        var error = await duplicate.NextAsync();
        Assert.That(error.Element(StreamErrors + "conflict"), Is.Not.Null, error.ToString());
        await duplicate.Closed.WaitAsync(TestCmLink.Timeout);

        await using var second = await _core.OpenLinkAsync("cm1/link-2");
        Assert.That(second.Header!.From, Is.EqualTo("cm1/link-2"));
    }

    [Test]
    public async Task Before_the_handshake_iq_and_route_get_not_authorized_and_the_link_stays()
    {
        await using var link = await TestCmLink.ConnectAsync(_core.EndPoint);
        var iq = await link.IqAsync($"<iq type='set' id='{{id}}'><session xmlns='{TestCmLink.Cm}' id='cm1-a'><create/></session></iq>");
        Assert.That(iq.Attribute("type")?.Value, Is.EqualTo("error"));
        Assert.That(iq.Element("error")!.Element(Stanzas + "not-authorized"), Is.Not.Null, iq.ToString());
        Assert.That(iq.Element(TestCmLink.Cm + "session"), Is.Not.Null, "the child is echoed");

        await link.SendAsync("<route streamid='cm1-a' to='localhost' from='cm1/link-1'><message/></route>");
        var route = await link.NextAsync();
        Assert.Multiple(() =>
        {
            Assert.That(route.Name.LocalName, Is.EqualTo("route"));
            Assert.That(route.Attribute("type")?.Value, Is.EqualTo("error"));
            Assert.That(route.Attribute("from")?.Value, Is.EqualTo("localhost"));
            Assert.That(route.Attribute("to")?.Value, Is.EqualTo("cm1/link-1"));
            Assert.That(route.Element("error")!.Element(Stanzas + "not-authorized"), Is.Not.Null, route.ToString());
        });

        var configuration = await link.HandshakeAsync(CoreTestServer.Secret);
        Assert.That(configuration, Is.Not.Null);
    }

    [Test]
    public async Task Session_iq_errors_follow_the_table_of_spec_5_6()
    {
        await using var link = await _core.OpenLinkAsync();
        var created = await link.CreateAsync("cm1-one");
        Assert.That(created.Attribute("type")?.Value, Is.EqualTo("result"));
        Assert.That(created.Element(TestCmLink.Cm + "session")!.Attribute("id")?.Value, Is.EqualTo("cm1-one"), "child echoed");
        Assert.That(created.Attribute("to")?.Value, Is.EqualTo("cm1/link-1"), "to/from swapped");

        await AssertIqError(link.CreateAsync("cm1-one"), "conflict");
        await AssertIqError(link.CreateAsync("cm1-bad id"), "bad-request");
        await AssertIqError(link.CloseSessionAsync("cm1-unknown"), "item-not-found");
        await AssertIqError(link.IqAsync($"<iq type='set' id='{{id}}'><session xmlns='{TestCmLink.Cm}' id='cm1-unknown'><failed><message/></failed></session></iq>"), "item-not-found");
        await AssertIqError(link.IqAsync($"<iq type='set' id='{{id}}'><session xmlns='{TestCmLink.Cm}'><close/></session></iq>"), "bad-request", "id-required");
        await AssertIqError(link.IqAsync($"<iq type='set' id='{{id}}'><other xmlns='{TestCmLink.Cm}' id='cm1-one'/></iq>"), "bad-request");
        await AssertIqError(link.IqAsync($"<iq type='set' id='{{id}}'><session xmlns='{TestCmLink.Cm}' id='cm1-one'/></iq>"), "bad-request");
        await AssertIqError(link.IqAsync($"<iq type='get' id='{{id}}'><session xmlns='{TestCmLink.Cm}' id='cm1-one'/></iq>"), "bad-request");
        await AssertIqError(link.IqAsync($"<iq type='set' id='{{id}}'><session xmlns='{TestCmLink.Cm}' id='cm1-one'><failed/></session></iq>"), "bad-request", "invalid-payload");
        await AssertIqError(link.IqAsync($"<iq type='set' id='{{id}}'><session xmlns='{TestCmLink.Cm}' id='cm1-one'><failed><presence/></failed></session></iq>"), "bad-request", "unknown-stanza");

        var closed = await link.CloseSessionAsync("cm1-one");
        Assert.That(closed.Attribute("type")?.Value, Is.EqualTo("result"));
        await AssertIqError(link.CloseSessionAsync("cm1-one"), "item-not-found");
    }

    private static async Task AssertIqError(Task<XElement> reply, string condition, string? appCondition = null)
    {
        var iq = await reply;
        Assert.That(iq.Attribute("type")?.Value, Is.EqualTo("error"), iq.ToString());
        var error = iq.Element("error")!;
        Assert.That(error.Element(Stanzas + condition), Is.Not.Null, iq.ToString());
        Assert.That(error.Attribute("code"), Is.Not.Null, "legacy code, as Openfire writes");
        if (appCondition is not null)
        {
            Assert.That(error.Element(CmErrors + appCondition), Is.Not.Null, iq.ToString());
        }
    }

    [Test]
    public async Task Routes_for_unknown_streams_and_unknown_children_get_route_errors()
    {
        await using var link = await _core.OpenLinkAsync();
        await link.SendAsync("<route streamid='cm1-nobody' id='r1' to='localhost' from='cm1/link-1'><message/></route>");
        var unknown = await link.NextAsync();
        Assert.Multiple(() =>
        {
            Assert.That(unknown.Attribute("type")?.Value, Is.EqualTo("error"));
            Assert.That(unknown.Attribute("streamid")?.Value, Is.EqualTo("cm1-nobody"));
            Assert.That(unknown.Attribute("id")?.Value, Is.EqualTo("r1"));
            Assert.That(unknown.Element("error")!.Element(Stanzas + "item-not-found"), Is.Not.Null, unknown.ToString());
            Assert.That(unknown.Elements().Count(), Is.EqualTo(1), "the offending stanza is not echoed");
        });

        var client = await TestClient.CreateAsync(link);
        await link.SendAsync($"<route streamid='{client.StreamId}'><abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></route>");
        var rejected = await link.NextAsync();
        Assert.That(rejected.Element("error")!.Element(Stanzas + "bad-request"), Is.Not.Null, rejected.ToString());
        Assert.That(rejected.Element("error")!.Element(CmErrors + "unknown-stanza"), Is.Not.Null, rejected.ToString());

        // A session created through another CM is unknown to this one.
        await using var other = await _core.OpenLinkAsync("cm2/link-1");
        await other.RouteAsync(client.StreamId, "<message/>");
        var foreign = await other.NextAsync();
        Assert.That(foreign.Element("error")!.Element(Stanzas + "item-not-found"), Is.Not.Null, foreign.ToString());
    }

    [Test]
    public async Task A_route_without_streamid_closes_the_link_with_bad_format()
    {
        await using var link = await _core.OpenLinkAsync();
        await link.SendAsync("<route><message/></route>");
        var error = await link.NextAsync();
        Assert.That(error.Element(StreamErrors + "bad-format"), Is.Not.Null, error.ToString());
        await link.Closed.WaitAsync(TestCmLink.Timeout);
    }

    [Test]
    public async Task Bare_message_on_the_link_closes_it_with_internal_server_error()
    {
        await using var link = await _core.OpenLinkAsync();
        await link.SendAsync("<message to='a@localhost'><body>x</body></message>");
        var error = await link.NextAsync();
        Assert.That(error.Element(StreamErrors + "internal-server-error"), Is.Not.Null, error.ToString());
        await link.Closed.WaitAsync(TestCmLink.Timeout);
    }

    [Test]
    public async Task Starttls_is_refused_under_the_disabled_link_policy()
    {
        await using var link = await TestCmLink.ConnectAsync(_core.EndPoint);
        await link.SendAsync("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        var error = await link.NextAsync();
        Assert.That(error.Element(StreamErrors + "not-authorized"), Is.Not.Null, error.ToString());
        await link.Closed.WaitAsync(TestCmLink.Timeout);
    }

    [Test]
    public async Task Malformed_xml_closes_the_link_with_the_scanner_condition()
    {
        await using var link = await _core.OpenLinkAsync();
        await link.SendAsync("<route streamid='x'><message></route>");
        var error = await link.NextAsync();
        Assert.That(error.Element(StreamErrors + "not-well-formed"), Is.Not.Null, error.ToString());
        await link.Closed.WaitAsync(TestCmLink.Timeout);
    }

    [Test]
    public async Task The_core_sends_whitespace_keepalives_and_closes_an_idle_link()
    {
        await _core.DisposeAsync();
        _core = CoreTestServer.Start(o => o with { KeepaliveInterval = TimeSpan.FromMilliseconds(100), LinkIdleTimeout = TimeSpan.FromMilliseconds(1500) });
        await using var link = await _core.OpenLinkAsync();
        var error = await link.NextAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.That(error.Element(StreamErrors + "connection-timeout"), Is.Not.Null, error.ToString());
        Assert.That(link.Keepalives, Is.GreaterThanOrEqualTo(3));
        await link.Closed.WaitAsync(TestCmLink.Timeout);
    }

    [Test]
    public async Task A_link_that_keeps_talking_is_not_idle()
    {
        await _core.DisposeAsync();
        _core = CoreTestServer.Start(o => o with { LinkIdleTimeout = TimeSpan.FromMilliseconds(600) });
        await using var link = await _core.OpenLinkAsync();
        for (var i = 0; i < 10; i++)
        {
            await link.SendAsync(" ");
            await Task.Delay(150);
        }
        Assert.That(link.Closed.IsCompleted, Is.False);
        var created = await link.CreateAsync("cm1-alive");
        Assert.That(created.Attribute("type")?.Value, Is.EqualTo("result"));
    }

    [Test]
    public async Task A_link_that_does_not_handshake_in_time_is_closed()
    {
        await _core.DisposeAsync();
        _core = CoreTestServer.Start(o => o with { HandshakeTimeout = TimeSpan.FromMilliseconds(300) });
        await using var link = await TestCmLink.ConnectAsync(_core.EndPoint);
        var error = await link.NextAsync();
        Assert.That(error.Element(StreamErrors + "connection-timeout"), Is.Not.Null, error.ToString());
        await link.Closed.WaitAsync(TestCmLink.Timeout);
    }

    [Test]
    public async Task Shutdown_sends_system_shutdown_on_every_link()
    {
        var link = await _core.OpenLinkAsync();
        await using var _ = link;
        await _core.Server.DisposeAsync();
        var error = await link.NextAsync();
        Assert.That(error.Element(StreamErrors + "system-shutdown"), Is.Not.Null, error.ToString());
        await link.Closed.WaitAsync(TestCmLink.Timeout);
    }

    [Test]
    public void Options_reject_nonsense()
    {
        var options = new CoreServerOptions
        {
            Domain = "localhost",
            Secret = "x",
            ListenEndPoint = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0),
            DataDirectory = "unused",
            MaxAuthFailures = 0,
        };
        Assert.That(() => CoreServer.Start(options, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance),
            Throws.InstanceOf<ArgumentOutOfRangeException>());
    }
}
