using System.Xml.Linq;
using ConnMgr.Core.Storage;
using ConnMgr.Tests.Core.Storage;
using NUnit.Framework;

namespace ConnMgr.Tests.Core;

/// <summary>Sessions and links over time: several CMs, link loss and re-pinning, users removed by the CLI, slow edges.</summary>
[TestFixture]
[CancelAfter(90_000)]
public class LifecycleTests
{
    private static readonly XNamespace StreamErrors = TestClient.StreamErrors;

    private CoreTestServer _core = null!;

    [SetUp]
    public async Task Start()
    {
        _core = CoreTestServer.Start();
        await _core.AddUsersAsync("alice", "bob");
    }

    [TearDown]
    public async Task Stop() => await _core.DisposeAsync();

    [Test]
    public async Task Two_connection_managers_at_once_exchange_messages()
    {
        await using var cm1 = await _core.OpenLinkAsync("cm1/link-1");
        await using var cm2 = await _core.OpenLinkAsync("cm2/link-1");
        var alice = await TestClient.LoginAsync(cm1, "alice", CoreTestServer.Password);
        var bob = await TestClient.LoginAsync(cm2, "bob", CoreTestServer.Password);

        await alice.SendAsync($"<message to='{bob.Jid}' type='chat'><body>across edges</body></message>");
        var message = await bob.ExpectMessageAsync("across edges");
        Assert.That(message.Attribute("from")?.Value, Is.EqualTo(alice.Jid));
        await bob.SendAsync($"<message to='{alice.Jid}' type='chat'><body>and back</body></message>");
        await alice.ExpectMessageAsync("and back");
    }

    [Test]
    public async Task Losing_the_last_link_ends_the_cms_sessions_and_others_see_them_go()
    {
        await using var cm1 = await _core.OpenLinkAsync("cm1/link-1");
        await using var cm2 = await _core.OpenLinkAsync("cm2/link-1");
        var alice = await TestClient.LoginAsync(cm1, "alice", CoreTestServer.Password);
        var bob = await TestClient.LoginAsync(cm2, "bob", CoreTestServer.Password);
        await alice.SendAsync($"<presence to='{bob.Jid}'/>");
        await bob.ExpectPresenceAsync(alice.Jid!);

        cm1.Abort();
        await bob.ExpectPresenceAsync(alice.Jid!, "unavailable");

        // No ghost: the stream ID is unknown when the CM comes back under the same name (spec 0.1 point 2).
        await using var back = await _core.OpenLinkAsync("cm1/link-1");
        await back.RouteAsync(alice.StreamId, "<presence/>");
        var error = await back.NextAsync();
        Assert.That(error.Attribute("type")?.Value, Is.EqualTo("error"));
        Assert.That(error.Element("error")!.Element(TestClient.Stanzas + "item-not-found"), Is.Not.Null, error.ToString());
        var ping = await bob.IqAsync($"<iq type='get' id='{{id}}' to='{alice.Jid}'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(ping.Element("error")!.Element(TestClient.Stanzas + "service-unavailable"), Is.Not.Null, "the resource is gone");
    }

    [Test]
    public async Task When_a_sessions_link_dies_its_traffic_moves_to_another_link_of_the_same_cm()
    {
        var first = await _core.OpenLinkAsync("cm1/link-1");
        await using var second = await _core.OpenLinkAsync("cm1/link-2");
        await using var cm2 = await _core.OpenLinkAsync("cm2/link-1");
        var alice = await TestClient.LoginAsync(first, "alice", CoreTestServer.Password);
        var bob = await TestClient.LoginAsync(cm2, "bob", CoreTestServer.Password);

        first.Abort();
        await first.DisposeAsync();
        // Wait until the core has noticed: a create on the dead link's CM still works through link-2.
        await Task.Delay(200);

        await bob.SendAsync($"<message to='{alice.Jid}' type='chat'><body>re-pinned</body></message>");
        var moved = new TestClient(second, alice.StreamId);
        var message = await moved.ExpectMessageAsync("re-pinned");
        Assert.That(message.Attribute("from")?.Value, Is.EqualTo(bob.Jid));
        // The session itself lives on and accepts stanzas on the remaining link.
        var pong = await moved.IqAsync("<iq type='get' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(pong.Attribute("type")?.Value, Is.EqualTo("result"));
    }

    [Test]
    public async Task A_user_removed_with_another_store_instance_loses_their_sessions()
    {
        await using var link = await _core.OpenLinkAsync();
        var alice = await TestClient.LoginAsync(link, "alice", CoreTestServer.Password);
        var bob = await TestClient.LoginAsync(link, "bob", CoreTestServer.Password);
        await alice.SendAsync($"<presence to='{bob.Jid}'/>");
        await bob.ExpectPresenceAsync(alice.Jid!);

        // What "connmgr user remove alice" does from another process: its own store on the same file.
        await using (var cli = XmppStore.Open(_core.DataDirectory, options: StoreTestSupport.Fast()))
        {
            Assert.That(await cli.RemoveUserAsync("alice"), Is.True);
        }

        var error = await alice.ExpectStreamErrorAsync();
        Assert.That(error.Element(StreamErrors + "not-authorized"), Is.Not.Null, error.ToString());
        await bob.ExpectPresenceAsync(alice.Jid!, "unavailable");

        var again = await TestClient.CreateAsync(link);
        var failure = await again.TryPlainAsync("alice", CoreTestServer.Password);
        Assert.That(failure.Name.LocalName, Is.EqualTo("failure"), "credentials are read at each login");
    }

    [Test]
    public async Task A_session_flooding_faster_than_the_store_commits_is_ended_with_resource_constraint()
    {
        await _core.DisposeAsync();
        _core = CoreTestServer.Start(o => o with { MaxSessionQueue = 5 });
        await _core.AddUsersAsync("alice", "bob");
        await using var link = await _core.OpenLinkAsync();
        var flooder = await TestClient.LoginAsync(link, "alice", CoreTestServer.Password);
        var other = await TestClient.LoginAsync(link, "bob", CoreTestServer.Password, "other");

        // Messages to an offline user each wait for a store commit; 200 in one write outrun them.
        var flood = string.Concat(Enumerable.Repeat($"<route streamid='{flooder.StreamId}'><message to='carol@localhost' type='chat'><body>spam</body></message></route>", 200));
        await _core.AddUsersAsync("carol");
        await link.SendAsync(flood);

        var error = await flooder.ExpectStreamErrorAsync();
        Assert.That(error.Element(StreamErrors + "resource-constraint"), Is.Not.Null, error.ToString());
        var pong = await other.IqAsync("<iq type='get' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(pong.Attribute("type")?.Value, Is.EqualTo("result"), "the link and the other sessions on it are untouched");
    }

    [Test]
    public async Task A_cm_that_stops_reading_loses_its_link_while_other_cms_keep_working()
    {
        await _core.DisposeAsync();
        _core = CoreTestServer.Start(o => o with { MaxLinkOutputBytes = 1024 * 1024 });
        await _core.AddUsersAsync("alice", "bob");
        await using var stalled = await _core.OpenLinkAsync("cm1/link-1");
        await using var healthy = await _core.OpenLinkAsync("cm2/link-1");
        var victim = await TestClient.LoginAsync(stalled, "alice", CoreTestServer.Password);
        var sender = await TestClient.LoginAsync(healthy, "bob", CoreTestServer.Password);
        stalled.PauseReading();

        // Far more than the socket buffers and the 1 MiB output limit hold.
        var body = new string('x', 60_000);
        bool StalledLinkOpen() => _core.Server.Links.Any(l => l.LinkJid == "cm1/link-1" && !l.IsClosed);
        for (var i = 0; i < 400 && StalledLinkOpen(); i++)
        {
            await sender.SendAsync($"<message to='{victim.Jid}' type='chat'><body>{body}</body></message>");
            if (i % 50 == 49)
            {
                await sender.DrainAsync();
            }
        }
        var pong = await sender.IqAsync("<iq type='get' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(pong.Attribute("type")?.Value, Is.EqualTo("result"), "the other CM is served throughout");
        Assert.That(StalledLinkOpen, Is.False.After(10_000, 50),
            "the stalled link was dropped");
    }
}
