using NUnit.Framework;

namespace ConnMgr.Tests.OpenfireDouble;

/// <summary>Spec 5: create / close / failed and the error table of 5.6.</summary>
[TestFixture]
public sealed class SessionIqTests
{
    private const string Cm = "http://jabber.org/protocol/connectionmanager";

    [Test]
    public async Task Create_is_answered_with_the_child_echoed_and_the_session_is_registered()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");

        await link.SendAsync($"<iq type=\"set\" to=\"example.com\" from=\"cm1/link-1\" id=\"81-1\"><session xmlns=\"{Cm}\" id=\"cm1-7f3a9c2b\"><create><host name=\"client.example.net\" address=\"203.0.113.7\"/></create></session></iq>");

        Assert.That(await link.NextAsync(), Is.EqualTo(
            $"<iq type=\"result\" id=\"81-1\" from=\"example.com\" to=\"cm1/link-1\"><session xmlns=\"{Cm}\" id=\"cm1-7f3a9c2b\"><create><host name=\"client.example.net\" address=\"203.0.113.7\"/></create></session></iq>"));
        SessionInfo session = server.FindSession("cm1-7f3a9c2b")!;
        Assert.That(session.CmDomain, Is.EqualTo("cm1"));
        Assert.That(session.HostAddress, Is.EqualTo("203.0.113.7"));
        Assert.That(session.HostName, Is.EqualTo("client.example.net"));
        Assert.That(session.State, Is.EqualTo(ClientSessionState.PreAuthenticated));
    }

    [Test]
    public async Task Without_host_the_session_reports_the_links_peer_address_and_a_reply_without_from_has_no_to()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");

        await link.SendAsync($"<iq type=\"set\" id=\"c1\"><session xmlns=\"{Cm}\" id=\"cm1-a\"><create/></session></iq>");

        Assert.That(await link.NextAsync(), Is.EqualTo($"<iq type=\"result\" id=\"c1\"><session xmlns=\"{Cm}\" id=\"cm1-a\"><create/></session></iq>"));
        Assert.That(server.FindSession("cm1-a")!.HostAddress, Is.EqualTo("127.0.0.1"));
    }

    [Test]
    public async Task Close_removes_the_session_and_a_second_close_gets_item_not_found()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await CreateAsync(link, "cm1-a");

        await link.SendAsync($"<iq type=\"set\" id=\"c2\"><session xmlns=\"{Cm}\" id=\"cm1-a\"><close/></session></iq>");
        Assert.That(await link.NextAsync(), Is.EqualTo($"<iq type=\"result\" id=\"c2\"><session xmlns=\"{Cm}\" id=\"cm1-a\"><close/></session></iq>"));
        Assert.That(server.FindSession("cm1-a"), Is.Null);
        Assert.That(server.EndedSessions.Single(), Is.EqualTo(new EndedSession("cm1-a", "cm1", "cm-close", CloseIqSent: false)));

        await link.SendAsync($"<iq type=\"set\" id=\"c3\"><session xmlns=\"{Cm}\" id=\"cm1-a\"><close/></session></iq>");
        Assert.That(await link.NextAsync(), Is.EqualTo(
            $"<iq type=\"error\" id=\"c3\"><session xmlns=\"{Cm}\" id=\"cm1-a\"><close/></session><error code=\"404\" type=\"cancel\"><item-not-found xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></error></iq>"));
    }

    [TestCase("<session xmlns=\"" + Cm + "\"><create/></session>", "<error code=\"400\" type=\"modify\"><bad-request xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/><id-required xmlns=\"http://jabber.org/protocol/connectionmanager#errors\"/></error>", TestName = "Session without id gets bad-request with id-required")]
    [TestCase("<other xmlns=\"" + Cm + "\"/>", "<error code=\"400\" type=\"modify\"><bad-request xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/><id-required xmlns=\"http://jabber.org/protocol/connectionmanager#errors\"/></error>", TestName = "The id check comes before the child name check")]
    [TestCase("<other xmlns=\"" + Cm + "\" id=\"cm1-a\"/>", "<error code=\"400\" type=\"modify\"><bad-request xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></error>", TestName = "A child other than session gets bad-request")]
    [TestCase("<session xmlns=\"" + Cm + "\" id=\"cm1-a\"><open/></session>", "<error code=\"400\" type=\"modify\"><bad-request xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></error>", TestName = "Session without create, close or failed gets bad-request")]
    [TestCase("<session xmlns=\"" + Cm + "\" id=\"cm1-nobody\"><close/></session>", "<error code=\"404\" type=\"cancel\"><item-not-found xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></error>", TestName = "Close for an unknown stream gets item-not-found")]
    [TestCase("<session xmlns=\"" + Cm + "\" id=\"cm1-nobody\"><failed><message/></failed></session>", "<error code=\"404\" type=\"cancel\"><item-not-found xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></error>", TestName = "Failed for an unknown stream gets item-not-found")]
    [TestCase("<session xmlns=\"" + Cm + "\" id=\"cm1-a\"><failed/></session>", "<error code=\"400\" type=\"modify\"><bad-request xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/><invalid-payload xmlns=\"http://jabber.org/protocol/connectionmanager#errors\"/></error>", TestName = "Failed without a payload gets invalid-payload")]
    [TestCase("<session xmlns=\"" + Cm + "\" id=\"cm1-a\"><failed><message/><message/></failed></session>", "<error code=\"400\" type=\"modify\"><bad-request xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/><invalid-payload xmlns=\"http://jabber.org/protocol/connectionmanager#errors\"/></error>", TestName = "Failed with two payloads gets invalid-payload")]
    [TestCase("<session xmlns=\"" + Cm + "\" id=\"cm1-a\"><failed><presence/></failed></session>", "<error code=\"400\" type=\"modify\"><bad-request xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/><unknown-stanza xmlns=\"http://jabber.org/protocol/connectionmanager#errors\"/></error>", TestName = "Failed with a non-message gets unknown-stanza")]
    public async Task Session_iq_errors(string child, string error)
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await CreateAsync(link, "cm1-a");

        await link.SendAsync($"<iq type=\"set\" id=\"e1\">{child}</iq>");

        Assert.That(await link.NextAsync(), Is.EqualTo($"<iq type=\"error\" id=\"e1\">{child}{error}</iq>"));
        Assert.That(server.FindSession("cm1-a"), Is.Not.Null, "errors leave the session alone");
    }

    [Test]
    public async Task Create_from_a_blocked_address_gets_not_allowed()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet(new() { BlockedAddresses = ["203.0.113.66"] }));
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");

        await link.SendAsync($"<iq type=\"set\" id=\"81-1\" from=\"cm1/link-1\" to=\"example.com\"><session xmlns=\"{Cm}\" id=\"cm1-x\"><create><host name=\"h\" address=\"203.0.113.66\"/></create></session></iq>");

        Assert.That(await link.NextAsync(), Is.EqualTo(
            $"<iq type=\"error\" id=\"81-1\" from=\"example.com\" to=\"cm1/link-1\"><session xmlns=\"{Cm}\" id=\"cm1-x\"><create><host name=\"h\" address=\"203.0.113.66\"/></create></session>"
            + "<error code=\"405\" type=\"cancel\"><not-allowed xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></error></iq>"));
        Assert.That(server.FindSession("cm1-x"), Is.Null);
        Assert.That(server.Counters.SessionsRefused, Is.EqualTo(1));
    }

    [Test]
    public async Task Failed_with_one_message_is_stored_offline()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await CreateAsync(link, "cm1-a");
        string failed = $"<session xmlns=\"{Cm}\" id=\"cm1-a\"><failed><message to=\"alice@example.com/phone\" from=\"bob@example.com/pc\" type=\"chat\"><body>hi</body></message></failed></session>";

        await link.SendAsync($"<iq type=\"set\" id=\"f1\">{failed}</iq>");

        Assert.That(await link.NextAsync(), Is.EqualTo($"<iq type=\"result\" id=\"f1\">{failed}</iq>"));
        Assert.That(server.OfflineMessages.Single(), Is.EqualTo(new StoredMessage("cm1-a", "<message to=\"alice@example.com/phone\" from=\"bob@example.com/pc\" type=\"chat\"><body>hi</body></message>", FromFailedIq: true)));
    }

    [Test]
    public async Task Get_is_bad_request_and_results_and_errors_from_the_cm_are_not_answered()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");

        await link.SendAsync("<iq type=\"result\" id=\"512-3\"/>");
        await link.SendAsync("<iq type=\"error\" id=\"x\"><error type=\"cancel\"/></iq>");
        await link.SendAsync("<iq type=\"get\" id=\"g1\"><ping xmlns=\"urn:xmpp:ping\"/></iq>");

        Assert.That(await link.NextAsync(), Is.EqualTo(
            "<iq type=\"error\" id=\"g1\"><ping xmlns=\"urn:xmpp:ping\"/><error code=\"400\" type=\"modify\"><bad-request xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></error></iq>"));
    }

    [Test]
    public async Task Replies_go_on_a_random_link_of_the_cm()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet(new() { RandomSeed = 7 }));
        await using RawCmLink one = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await using RawCmLink two = await RawCmLink.OpenAsync(server, "cm1/link-2");

        for (int i = 0; i < 20; i++)
        {
            await one.SendAsync($"<iq type=\"set\" id=\"c{i}\"><session xmlns=\"{Cm}\" id=\"cm1-{i}\"><create/></session></iq>");
        }

        await server.WaitForAsync(s => s.SentFrames.Count(f => f.Text.StartsWith("<iq type=\"result\"", StringComparison.Ordinal)) == 20);
        var replyLinks = server.SentFrames.Where(f => f.Text.StartsWith("<iq type=\"result\"", StringComparison.Ordinal)).Select(f => f.Link).Distinct().Order();
        Assert.That(replyLinks, Is.EqualTo(new[] { "cm1/link-1", "cm1/link-2" }));
    }

    [Test]
    public async Task Creating_an_existing_stream_id_replaces_the_session()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await CreateAsync(link, "cm1-a");
        await link.SendAsync("<route streamid=\"cm1-a\"><auth xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\" mechanism=\"PLAIN\">AGFsaWNlAHNlY3JldA==</auth></route>");
        await link.NextAsync();
        Assert.That(server.FindSession("cm1-a")!.State, Is.EqualTo(ClientSessionState.Authenticated));

        await CreateAsync(link, "cm1-a");

        Assert.That(server.FindSession("cm1-a")!.State, Is.EqualTo(ClientSessionState.PreAuthenticated));
    }

    internal static async Task CreateAsync(RawCmLink link, string streamId, string? host = null)
    {
        string create = host is null ? "<create/>" : $"<create><host name=\"{host}\" address=\"{host}\"/></create>";
        await link.SendAsync($"<iq type=\"set\" id=\"create-{streamId}\"><session xmlns=\"{Cm}\" id=\"{streamId}\">{create}</session></iq>");
        Assert.That(await link.NextAsync(), Does.StartWith($"<iq type=\"result\" id=\"create-{streamId}\">"));
    }
}
