using System.Net;
using System.Xml.Linq;
using ConnMgr.Core.Storage;
using ConnMgr.Edge;
using ConnMgr.Hosting;
using ConnMgr.Protocol;
using ConnMgr.Tests.Hosting;
using NUnit.Framework;

namespace ConnMgr.Tests.Core;

/// <summary>
/// The all-in-one daemon, in-process: real clients (STARTTLS, SASL, bind) through the real edge
/// to the embedded core, with users managed as the CLI manages them (its own store instance).
/// </summary>
[TestFixture]
[CancelAfter(120_000)]
public class EdgeEndToEndTests
{
    private const string Password = "correct horse";

    private TestDaemon _daemon = null!;
    private IPEndPoint _clients = null!;

    [SetUp]
    public async Task Start()
    {
        // DaemonHost does not start the edge yet; registered here after the core, as AddEdge asks.
        _daemon = await TestDaemon.StartAsync(["--Edge:Name=edge1", "--Edge:HttpPort=0", "--Edge:DirectTlsPort=0"],
            (services, configuration) => services.AddEdge(configuration));
        await _daemon.Get<ReadinessGate>().Ready.WaitAsync(TimeSpan.FromSeconds(30));
        _clients = _daemon.Endpoint("Edge:ClientPort");
        await using var cli = XmppStore.Open(_daemon.DataDirectory);
        foreach (var user in new[] { "alice", "bob" })
        {
            await cli.AddUserAsync(user, Password);
        }
    }

    [TearDown]
    public async Task Stop() => await _daemon.DisposeAsync();

    [Test]
    public async Task Clients_log_in_with_each_mechanism_and_exchange_messages_and_presence()
    {
        await using var alice = await TestXmppClient.LoginAsync(_clients, "alice", Password, "phone", "SCRAM-SHA-256");
        await using var bob = await TestXmppClient.LoginAsync(_clients, "bob", Password, "desk", "SCRAM-SHA-1");
        await using var plain = await TestXmppClient.LoginAsync(_clients, "bob", Password, "laptop", "PLAIN");

        await alice.SendAsync("<message to='bob@localhost/desk' type='chat' id='m1'><body>hello through the edge</body></message>");
        var message = await bob.ExpectMessageAsync("hello through the edge");
        Assert.That((string?)message.Attribute("from"), Is.EqualTo("alice@localhost/phone"));
        await bob.SendAsync("<message to='alice@localhost' type='chat'><body>and back</body></message>");
        await alice.ExpectMessageAsync("and back");

        await alice.SendAsync("<presence to='bob@localhost/laptop'><status>here</status></presence>");
        var presence = await plain.ExpectAsync(e => e.Name.LocalName == "presence" && (string?)e.Attribute("from") == "alice@localhost/phone", "directed presence");
        Assert.That(presence.Elements().Single(e => e.Name.LocalName == "status").Value, Is.EqualTo("here"));

        var pong = await alice.IqAsync("<iq type='get' id='{id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That((string?)pong.Attribute("type"), Is.EqualTo("result"));
    }

    [Test]
    public async Task A_wrong_password_fails_and_plain_is_not_offered_before_tls()
    {
        await using var client = await TestXmppClient.ConnectAsync(_clients);
        var mechanisms = client.Features.Descendants(TestXmppClient.Sasl + "mechanism").Select(m => m.Value).ToArray();
        Assert.That(mechanisms, Is.Empty.Or.Not.Contains("PLAIN"), "TLS is required by the core's configuration");
        await client.StartTlsAsync();
        var offered = client.Features.Descendants(TestXmppClient.Sasl + "mechanism").Select(m => m.Value).ToArray();
        Assert.That(offered, Is.EqualTo(new[] { "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN" }));
        var failure = await client.TryAuthenticateAsync("SCRAM-SHA-256", "alice", "wrong");
        Assert.That(failure.Name, Is.EqualTo(TestXmppClient.Sasl + "failure"));
        Assert.That(failure.Element(TestXmppClient.Sasl + "not-authorized"), Is.Not.Null, failure.ToString());
    }

    [Test]
    public async Task An_offline_message_waits_in_sqlite_and_arrives_with_a_delay_stamp()
    {
        await using (var alice = await TestXmppClient.LoginAsync(_clients, "alice", Password, "phone"))
        {
            await alice.SendAsync("<message to='bob@localhost' type='chat'><body>later</body></message>");
            var pong = await alice.IqAsync("<iq type='get' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>");
            Assert.That((string?)pong.Attribute("type"), Is.EqualTo("result"));
        }
        await using var bob = await TestXmppClient.LoginAsync(_clients, "bob", Password, "desk");
        var message = await bob.ExpectMessageAsync("later");
        Assert.That(message.Element(XNamespace.Get(XmppNamespaces.Delay) + "delay"), Is.Not.Null, message.ToString());
    }

    [Test]
    public async Task Binding_the_same_resource_again_ends_the_first_stream_with_conflict()
    {
        await using var first = await TestXmppClient.LoginAsync(_clients, "alice", Password, "phone");
        await using var second = await TestXmppClient.LoginAsync(_clients, "alice", Password, "phone");
        var error = await first.ExpectAsync(e => e.Name.LocalName == "error", "a stream error");
        Assert.That(error.Element(XNamespace.Get(XmppNamespaces.Streams) + "conflict"), Is.Not.Null, error.ToString());
        Assert.That(async () => await first.NextAsync(), Throws.InstanceOf<EndOfStreamException>());
    }

    [Test]
    public async Task Removing_a_user_with_the_cli_ends_their_stream_with_not_authorized()
    {
        await using var alice = await TestXmppClient.LoginAsync(_clients, "alice", Password, "phone");
        await using (var cli = XmppStore.Open(_daemon.DataDirectory))
        {
            Assert.That(await cli.RemoveUserAsync("alice"), Is.True);
        }
        var error = await alice.ExpectAsync(e => e.Name.LocalName == "error", "a stream error");
        Assert.That(error.Element(XNamespace.Get(XmppNamespaces.Streams) + "not-authorized"), Is.Not.Null, error.ToString());
    }
}
