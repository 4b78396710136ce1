using System.Globalization;
using System.Xml.Linq;
using ConnMgr.Protocol;
using NUnit.Framework;

namespace ConnMgr.Tests.Core;

/// <summary>Instant messaging through the core: roster, subscriptions, presence, messages, offline storage, IQ services (RFC 6121, XEPs 30, 160, 199, 203).</summary>
[TestFixture]
[CancelAfter(60_000)]
public class ImTests
{
    private static readonly XNamespace Roster = TestClient.Roster;
    private static readonly XNamespace Stanzas = TestClient.Stanzas;

    private CoreTestServer _core = null!;
    private TestCmLink _link = null!;

    [SetUp]
    public async Task Start()
    {
        _core = CoreTestServer.Start();
        await _core.AddUsersAsync("alice", "bob", "carol");
        _link = await _core.OpenLinkAsync();
    }

    [TearDown]
    public async Task Stop()
    {
        await _link.DisposeAsync();
        await _core.DisposeAsync();
    }

    private Task<TestClient> Login(string user, string resource = "res", bool presence = true)
        => TestClient.LoginAsync(_link, user, CoreTestServer.Password, resource, presence);

    /// <summary>Alice subscribes to Bob and Bob approves and subscribes back: both end with subscription both.</summary>
    private async Task MakeFriends(TestClient alice, TestClient bob)
    {
        // Asking for the roster makes a resource interested in pushes (RFC 6121 2.1.6).
        await alice.GetRosterAsync();
        await bob.GetRosterAsync();
        await alice.SendAsync($"<presence to='{bob.Bare}' type='subscribe'/>");
        await alice.ExpectRosterPushAsync(bob.Bare, "none");
        await bob.ExpectPresenceAsync(alice.Bare, "subscribe");
        await bob.SendAsync($"<presence to='{alice.Bare}' type='subscribed'/>");
        await bob.ExpectRosterPushAsync(alice.Bare, "from");
        await alice.ExpectRosterPushAsync(bob.Bare, "to");
        await alice.ExpectPresenceAsync(bob.Bare, "subscribed");
        await alice.ExpectPresenceAsync(bob.Jid!);

        await bob.SendAsync($"<presence to='{alice.Bare}' type='subscribe'/>");
        await bob.ExpectRosterPushAsync(alice.Bare, "from");
        await alice.ExpectPresenceAsync(bob.Bare, "subscribe");
        await alice.SendAsync($"<presence to='{bob.Bare}' type='subscribed'/>");
        await alice.ExpectRosterPushAsync(bob.Bare, "both");
        await bob.ExpectRosterPushAsync(alice.Bare, "both");
        await bob.ExpectPresenceAsync(alice.Jid!);
    }

    [Test]
    public async Task Roster_set_get_and_remove_with_pushes_to_interested_resources()
    {
        var alice = await Login("alice", "one");
        var other = await Login("alice", "two");
        await alice.GetRosterAsync();
        await other.GetRosterAsync();

        var set = await alice.IqAsync($"<iq type='set' id='{{id}}'><query xmlns='{Roster}'><item jid='carol@localhost' name='Carol'><group>Friends</group><group>Work</group></item></query></iq>");
        Assert.That(set.Attribute("type")?.Value, Is.EqualTo("result"), set.ToString());
        var push = await other.ExpectRosterPushAsync("carol@localhost", "none");
        var item = push.Element(Roster + "query")!.Element(Roster + "item")!;
        Assert.That(item.Attribute("name")?.Value, Is.EqualTo("Carol"));
        Assert.That(item.Elements(Roster + "group").Select(g => g.Value), Is.EqualTo(new[] { "Friends", "Work" }));
        await alice.ExpectRosterPushAsync("carol@localhost", "none");

        var roster = await other.GetRosterAsync();
        Assert.That(roster.Select(i => i.Attribute("jid")?.Value), Is.EqualTo(new[] { "carol@localhost" }));

        var remove = await alice.IqAsync($"<iq type='set' id='{{id}}'><query xmlns='{Roster}'><item jid='carol@localhost' subscription='remove'/></query></iq>");
        Assert.That(remove.Attribute("type")?.Value, Is.EqualTo("result"));
        await other.ExpectRosterPushAsync("carol@localhost", "remove");
        Assert.That(await alice.GetRosterAsync(), Is.Empty);

        var missing = await alice.IqAsync($"<iq type='set' id='{{id}}'><query xmlns='{Roster}'><item jid='carol@localhost' subscription='remove'/></query></iq>");
        Assert.That(missing.Element("error")!.Element(Stanzas + "item-not-found"), Is.Not.Null);
        var duplicateGroup = await alice.IqAsync($"<iq type='set' id='{{id}}'><query xmlns='{Roster}'><item jid='carol@localhost'><group>A</group><group>A</group></item></query></iq>");
        Assert.That(duplicateGroup.Element("error")!.Element(Stanzas + "bad-request"), Is.Not.Null);
        var twoItems = await alice.IqAsync($"<iq type='set' id='{{id}}'><query xmlns='{Roster}'><item jid='a@localhost'/><item jid='b@localhost'/></query></iq>");
        Assert.That(twoItems.Element("error")!.Element(Stanzas + "bad-request"), Is.Not.Null);
    }

    [Test]
    public async Task Subscription_handshake_both_ways_then_presence_flows_both_ways()
    {
        var alice = await Login("alice");
        var bob = await Login("bob");
        await alice.GetRosterAsync();
        await bob.GetRosterAsync();
        await MakeFriends(alice, bob);

        var aliceRoster = await alice.GetRosterAsync();
        Assert.That(aliceRoster.Single().Attribute("subscription")?.Value, Is.EqualTo("both"));
        Assert.That(aliceRoster.Single().Attribute("ask"), Is.Null);

        await alice.SendAsync("<presence><show>away</show><status>lunch</status></presence>");
        var seen = await bob.ExpectPresenceAsync(alice.Jid!);
        Assert.That(seen.Elements().First(e => e.Name.LocalName == "status").Value, Is.EqualTo("lunch"));
        Assert.That(seen.Attribute("to")?.Value, Is.EqualTo("bob@localhost"));

        await bob.SendAsync("<presence type='unavailable'/>");
        await alice.ExpectPresenceAsync(bob.Jid!, "unavailable");
    }

    [Test]
    public async Task A_subscription_request_waits_for_an_offline_contact_and_survives_a_restart()
    {
        var alice = await Login("alice");
        await alice.GetRosterAsync();
        await alice.SendAsync("<presence to='bob@localhost' type='subscribe'><status>it is me</status></presence>");
        var push = await alice.ExpectRosterPushAsync("bob@localhost", "none");
        Assert.That(push.Element(Roster + "query")!.Element(Roster + "item")!.Attribute("ask")?.Value, Is.EqualTo("subscribe"));
        await alice.DrainAsync();

        await _link.DisposeAsync();
        await _core.RestartAsync();
        _link = await _core.OpenLinkAsync();

        var bob = await Login("bob", presence: false);
        Assert.That(await bob.GetRosterAsync(), Is.Empty, "a bare pending request is no roster item (RFC 6121 3.1.3)");
        await bob.SendAsync("<presence/>");
        var request = await bob.ExpectPresenceAsync("alice@localhost", "subscribe");
        Assert.That(request.Attribute("to")?.Value, Is.EqualTo("bob@localhost"));

        alice = await Login("alice");
        await alice.GetRosterAsync();
        await bob.SendAsync("<presence to='alice@localhost' type='subscribed'/>");
        await alice.ExpectRosterPushAsync("bob@localhost", "to");
        await alice.ExpectPresenceAsync(bob.Jid!);
        var bobRoster = await bob.GetRosterAsync();
        Assert.That(bobRoster.Single().Attribute("subscription")?.Value, Is.EqualTo("from"));
    }

    [Test]
    public async Task Refusing_a_request_clears_the_ask_and_leaves_no_item_behind()
    {
        var alice = await Login("alice");
        var bob = await Login("bob");
        await alice.GetRosterAsync();
        await bob.GetRosterAsync();
        await alice.SendAsync("<presence to='bob@localhost' type='subscribe'/>");
        await alice.ExpectRosterPushAsync("bob@localhost", "none");
        await bob.ExpectPresenceAsync("alice@localhost", "subscribe");
        await bob.SendAsync("<presence to='alice@localhost' type='unsubscribed'/>");
        await alice.ExpectPresenceAsync("bob@localhost", "unsubscribed");
        var push = await alice.ExpectRosterPushAsync("bob@localhost", "none");
        Assert.That(push.Element(Roster + "query")!.Element(Roster + "item")!.Attribute("ask"), Is.Null);
        Assert.That(await bob.GetRosterAsync(), Is.Empty);
    }

    [Test]
    public async Task Subscribing_to_a_user_that_does_not_exist_is_answered_with_unsubscribed()
    {
        var alice = await Login("alice");
        await alice.GetRosterAsync();
        await alice.SendAsync("<presence to='ghost@localhost' type='subscribe'/>");
        await alice.ExpectPresenceAsync("ghost@localhost", "unsubscribed");
    }

    [Test]
    public async Task Unsubscribing_stops_presence_and_removing_the_item_cancels_both_ways()
    {
        var alice = await Login("alice");
        var bob = await Login("bob");
        await alice.GetRosterAsync();
        await bob.GetRosterAsync();
        await MakeFriends(alice, bob);

        await alice.SendAsync("<presence to='bob@localhost' type='unsubscribe'/>");
        await alice.ExpectRosterPushAsync("bob@localhost", "from");
        await bob.ExpectRosterPushAsync("alice@localhost", "to");
        await bob.ExpectPresenceAsync("alice@localhost", "unsubscribe");
        await alice.ExpectPresenceAsync(bob.Jid!, "unavailable");

        await bob.IqAsync($"<iq type='set' id='{{id}}'><query xmlns='{Roster}'><item jid='alice@localhost' subscription='remove'/></query></iq>");
        await bob.ExpectRosterPushAsync("alice@localhost", "remove");
        await alice.ExpectRosterPushAsync("bob@localhost", "none");
        Assert.That((await alice.GetRosterAsync()).Single().Attribute("subscription")?.Value, Is.EqualTo("none"));
    }

    [Test]
    public async Task Presence_probe_answers_subscribers_only()
    {
        var alice = await Login("alice");
        var bob = await Login("bob");
        var carol = await Login("carol");
        await MakeFriends(alice, bob);

        await alice.SendAsync("<presence type='probe' to='bob@localhost'/>");
        var answer = await alice.ExpectPresenceAsync(bob.Jid!);
        Assert.That(answer.Attribute("to")?.Value, Is.EqualTo(alice.Jid));

        await carol.SendAsync("<presence type='probe' to='bob@localhost'/>");
        await carol.ExpectPresenceAsync("bob@localhost", "unsubscribed");
    }

    [Test]
    public async Task Initial_presence_gets_the_contacts_presence_and_the_end_of_a_session_is_seen()
    {
        var bob = await Login("bob");
        var alice = await Login("alice");
        await MakeFriends(alice, bob);

        var second = await Login("alice", "two");
        await second.ExpectPresenceAsync(bob.Jid!);
        await bob.ExpectPresenceAsync(second.Jid!);

        var closed = await _link.CloseSessionAsync(second.StreamId);
        Assert.That(closed.Attribute("type")?.Value, Is.EqualTo("result"));
        await bob.ExpectPresenceAsync(second.Jid!, "unavailable");
        await alice.ExpectPresenceAsync(second.Jid!, "unavailable");
    }

    [Test]
    public async Task Directed_presence_is_delivered_and_undone_when_the_session_ends()
    {
        var alice = await Login("alice");
        var carol = await Login("carol");
        await alice.SendAsync($"<presence to='{carol.Jid}'/>");
        await carol.ExpectPresenceAsync(alice.Jid!);
        await _link.CloseSessionAsync(alice.StreamId);
        await carol.ExpectPresenceAsync(alice.Jid!, "unavailable");
    }

    [Test]
    public async Task Messages_to_a_full_jid_go_to_that_resource_and_to_a_bare_jid_to_the_highest_priority()
    {
        var sender = await Login("carol");
        var high = await Login("bob", "high", presence: false);
        var low = await Login("bob", "low", presence: false);
        await high.SendAsync("<presence><priority>5</priority></presence>");
        await high.ExpectPresenceAsync(high.Jid!);
        await low.SendAsync("<presence><priority>1</priority></presence>");
        await low.ExpectPresenceAsync(low.Jid!);

        await sender.SendAsync("<message to='bob@localhost/low' type='chat' id='m1'><body>to low</body></message>");
        var full = await low.ExpectMessageAsync("to low");
        Assert.That(full.Attribute("from")?.Value, Is.EqualTo(sender.Jid));
        Assert.That(full.Attribute("id")?.Value, Is.EqualTo("m1"));

        await sender.SendAsync("<message to='bob@localhost' type='chat'><body>to bare</body></message>");
        await high.ExpectMessageAsync("to bare");
        var lowSaw = await low.DrainAsync();
        Assert.That(lowSaw.Any(e => e.Name.LocalName == "message"), Is.False, "chat to the bare JID goes to the highest priority only (RFC 6121 8.5.2.1.1)");

        await sender.SendAsync("<message to='bob@localhost' type='headline'><body>news</body></message>");
        await high.ExpectMessageAsync("news");
        await low.ExpectMessageAsync("news");

        // Not in prepared form: the general path prepares it (RFC 7622) and delivers all the same.
        await sender.SendAsync("<message to='Bob@LocalHost/low' type='chat'><body>case-folded</body></message>");
        await low.ExpectMessageAsync("case-folded");

        await sender.SendAsync("<message to='bob@localhost/gone' type='chat'><body>fallback</body></message>");
        await high.ExpectMessageAsync("fallback");
    }

    [Test]
    public async Task A_forged_from_is_replaced_by_the_senders_address()
    {
        var mallory = await Login("carol");
        var bob = await Login("bob");
        await mallory.SendAsync("<message from='alice@localhost/desk' to='bob@localhost/res'><body>I am alice</body></message>");
        var message = await bob.ExpectMessageAsync("I am alice");
        Assert.That(message.Attribute("from")?.Value, Is.EqualTo("carol@localhost/res"));

        await mallory.SendAsync("<presence from='alice@localhost/desk' to='bob@localhost/res'/>");
        var presence = await bob.ExpectAsync(e => e.Name.LocalName == "presence" && e.Attribute("to")?.Value == "bob@localhost/res", "directed presence");
        Assert.That(presence.Attribute("from")?.Value, Is.EqualTo("carol@localhost/res"));
    }

    [Test]
    public async Task Unknown_users_and_foreign_domains_get_stanza_errors()
    {
        var alice = await Login("alice");
        await alice.SendAsync("<message to='nobody@localhost' id='u1' type='chat'><body>hello?</body></message>");
        var error = await alice.ExpectAsync(e => e.Attribute("id")?.Value == "u1", "error for the unknown user");
        Assert.Multiple(() =>
        {
            Assert.That(error.Attribute("type")?.Value, Is.EqualTo("error"));
            Assert.That(error.Attribute("from")?.Value, Is.EqualTo("nobody@localhost"));
            Assert.That(error.Attribute("to")?.Value, Is.EqualTo(alice.Jid));
            Assert.That(error.Element("error")!.Element(Stanzas + "service-unavailable"), Is.Not.Null, error.ToString());
        });

        await alice.SendAsync("<message to='someone@elsewhere.example' id='u2'><body>far</body></message>");
        var remote = await alice.ExpectAsync(e => e.Attribute("id")?.Value == "u2", "error for the foreign domain");
        Assert.That(remote.Element("error")!.Element(Stanzas + "remote-server-not-found"), Is.Not.Null, remote.ToString());

        var iq = await alice.IqAsync("<iq type='get' id='{id}' to='bob@localhost/nowhere'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(iq.Element("error")!.Element(Stanzas + "service-unavailable"), Is.Not.Null, iq.ToString());
        var unsupported = await alice.IqAsync("<iq type='get' id='{id}'><query xmlns='jabber:iq:version'/></iq>");
        Assert.That(unsupported.Element("error")!.Element(Stanzas + "service-unavailable"), Is.Not.Null, unsupported.ToString());
        var badJid = await alice.IqAsync("<iq type='get' id='{id}' to='a@b@c'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(badJid.Element("error")!.Element(Stanzas + "jid-malformed"), Is.Not.Null, badJid.ToString());
        var setPing = await alice.IqAsync("<iq type='set' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(setPing.Element("error")!.Element(Stanzas + "feature-not-implemented"), Is.Not.Null, setPing.ToString());
    }

    [Test]
    public async Task Ping_to_the_server_is_answered_and_to_a_full_jid_passes_through()
    {
        var alice = await Login("alice");
        var bob = await Login("bob");
        var pong = await alice.IqAsync("<iq type='get' id='{id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        Assert.That(pong.Attribute("type")?.Value, Is.EqualTo("result"));
        Assert.That(pong.Attribute("from")?.Value, Is.EqualTo("localhost"));

        await alice.SendAsync($"<iq type='get' id='p2p' to='{bob.Jid}'><ping xmlns='urn:xmpp:ping'/></iq>");
        var relayed = await bob.ExpectAsync(e => e.Name.LocalName == "iq" && e.Attribute("id")?.Value == "p2p", "the relayed ping");
        Assert.That(relayed.Attribute("from")?.Value, Is.EqualTo(alice.Jid));
        await bob.SendAsync($"<iq type='result' id='p2p' to='{alice.Jid}'/>");
        var answer = await alice.ExpectAsync(e => e.Name.LocalName == "iq" && e.Attribute("id")?.Value == "p2p", "the pong");
        Assert.That(answer.Attribute("from")?.Value, Is.EqualTo(bob.Jid));
    }

    [Test]
    public async Task Disco_info_describes_the_server_and_items_are_empty()
    {
        var alice = await Login("alice");
        var disco = XNamespace.Get(XmppNamespaces.DiscoInfo);
        var info = await alice.IqAsync($"<iq type='get' id='{{id}}' to='localhost'><query xmlns='{disco}'/></iq>");
        var query = info.Element(disco + "query")!;
        var identity = query.Element(disco + "identity")!;
        Assert.Multiple(() =>
        {
            Assert.That(identity.Attribute("category")?.Value, Is.EqualTo("server"));
            Assert.That(identity.Attribute("type")?.Value, Is.EqualTo("im"));
            Assert.That(query.Elements(disco + "feature").Select(f => f.Attribute("var")!.Value),
                Is.SupersetOf(new[] { XmppNamespaces.DiscoInfo, XmppNamespaces.DiscoItems, XmppNamespaces.Ping, "msgoffline" }));
        });
        var itemsNs = XNamespace.Get(XmppNamespaces.DiscoItems);
        var items = await alice.IqAsync($"<iq type='get' id='{{id}}' to='localhost'><query xmlns='{itemsNs}'/></iq>");
        Assert.That(items.Element(itemsNs + "query")!.HasElements, Is.False);
        var account = await alice.IqAsync($"<iq type='get' id='{{id}}' to='alice@localhost'><query xmlns='{disco}'/></iq>");
        Assert.That(account.Element(disco + "query")!.Element(disco + "identity")!.Attribute("category")?.Value, Is.EqualTo("account"));
    }

    [Test]
    public async Task Offline_messages_are_stored_and_delivered_with_a_delay_stamp_after_a_restart()
    {
        var alice = await Login("alice");
        var before = DateTime.UtcNow.AddSeconds(-1);
        await alice.SendAsync("<message to='bob@localhost' type='chat' id='o1'><body>while you were out</body></message>");
        await alice.SendAsync("<message to='bob@localhost' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
        var errors = await alice.DrainAsync();
        Assert.That(errors, Is.Empty, "a stored message gets no error; a bodiless one is dropped silently");

        await _link.DisposeAsync();
        await _core.RestartAsync();
        _link = await _core.OpenLinkAsync();

        var bob = await Login("bob", presence: false);
        await bob.SendAsync("<presence/>");
        var message = await bob.ExpectMessageAsync("while you were out");
        var delay = message.Element(XNamespace.Get(XmppNamespaces.Delay) + "delay");
        Assert.That(delay, Is.Not.Null, message.ToString());
        Assert.Multiple(() =>
        {
            Assert.That(message.Attribute("from")?.Value, Is.EqualTo("alice@localhost/res"));
            Assert.That(message.Attribute("id")?.Value, Is.EqualTo("o1"));
            Assert.That(delay!.Attribute("from")?.Value, Is.EqualTo("localhost"));
            var stamp = DateTime.Parse(delay.Attribute("stamp")!.Value, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal);
            Assert.That(stamp, Is.GreaterThan(before).And.LessThan(DateTime.UtcNow));
        });
        var rest = await bob.DrainAsync();
        Assert.That(rest.Any(e => e.Name.LocalName == "message"), Is.False, "the chat state was not stored, the message is delivered once");

        // Taken: a second login finds nothing.
        var again = await Login("bob", "other", presence: false);
        await again.SendAsync("<presence/>");
        Assert.That((await again.DrainAsync()).Any(e => e.Name.LocalName == "message"), Is.False);
    }

    [Test]
    public async Task A_message_the_cm_could_not_deliver_is_stored_offline()
    {
        var bob = await Login("bob");
        var stanza = "<message to='bob@localhost/res' from='alice@localhost/x' type='chat'><body>lost in transit</body></message>";
        var reply = await _link.IqAsync($"<iq type='set' id='{{id}}'><session xmlns='{TestCmLink.Cm}' id='{bob.StreamId}'><failed>{stanza}</failed></session></iq>");
        Assert.That(reply.Attribute("type")?.Value, Is.EqualTo("result"), reply.ToString());
        await _link.CloseSessionAsync(bob.StreamId);

        var again = await Login("bob", "other", presence: false);
        await again.SendAsync("<presence/>");
        var message = await again.ExpectMessageAsync("lost in transit");
        Assert.That(message.Element(XNamespace.Get(XmppNamespaces.Delay) + "delay"), Is.Not.Null);
    }

    [Test]
    public async Task Groupchat_to_a_user_is_refused_and_error_messages_are_not_answered()
    {
        var alice = await Login("alice");
        await Login("bob");
        await alice.SendAsync("<message to='bob@localhost' type='groupchat' id='g1'><body>x</body></message>");
        var error = await alice.ExpectAsync(e => e.Attribute("id")?.Value == "g1", "groupchat error");
        Assert.That(error.Element("error")!.Element(Stanzas + "service-unavailable"), Is.Not.Null);
        await alice.SendAsync("<message to='nobody@localhost' type='error' id='e1'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
        Assert.That((await alice.DrainAsync()).Any(e => e.Attribute("id")?.Value == "e1"), Is.False, "never an error about an error (RFC 6120 8.3.1)");
    }
}
