using System.Xml.Linq;
using ConnMgr.Core;
using ConnMgr.Protocol.Sasl;
using NUnit.Framework;

namespace ConnMgr.Tests.Core;

/// <summary>SASL through routes (RFC 6120 6, spec 6.2, 7.3), resource binding (RFC 6120 7) and the session's life on the core.</summary>
[TestFixture]
[CancelAfter(60_000)]
public class SaslAndBindTests
{
    private static readonly XNamespace Sasl = TestClient.Sasl;
    private static readonly XNamespace StreamErrors = TestClient.StreamErrors;

    private CoreTestServer _core = null!;
    private TestCmLink _link = null!;

    [SetUp]
    public async Task Start()
    {
        _core = CoreTestServer.Start();
        await _core.AddUsersAsync("alice", "bob");
        _link = await _core.OpenLinkAsync();
    }

    [TearDown]
    public async Task Stop()
    {
        await _link.DisposeAsync();
        await _core.DisposeAsync();
    }

    [Test]
    public async Task Plain_login_succeeds_with_an_empty_success_as_escaped_raw_text()
    {
        var client = await TestClient.CreateAsync(_link);
        var success = await client.TryPlainAsync("alice", CoreTestServer.Password);
        Assert.That(success.Name, Is.EqualTo(Sasl + "success"));
        Assert.That(success.IsEmpty, Is.True, "PLAIN has no additional data");
        Assert.That(success.RouteForm(), Is.EqualTo(RouteForm.RawText), "Openfire 4.8+ form by default");
    }

    [TestCase(ScramHash.Sha1)]
    [TestCase(ScramHash.Sha256)]
    public async Task Scram_login_succeeds_and_the_server_proves_it_knows_the_password(ScramHash hash)
    {
        var client = await TestClient.CreateAsync(_link);
        await client.AuthenticateScramAsync(hash, "alice", CoreTestServer.Password);
        var jid = await client.BindAsync("desk");
        Assert.That(jid, Is.EqualTo("alice@localhost/desk"));
    }

    [Test]
    public async Task Scram_without_initial_response_starts_with_an_empty_challenge()
    {
        var client = await TestClient.CreateAsync(_link);
        var scram = new ScramClient(ScramHash.Sha256, "bob", CoreTestServer.Password);
        await client.SendAsync($"<auth xmlns='{Sasl}' mechanism='SCRAM-SHA-256'/>");
        var empty = await client.ExpectSaslAsync();
        Assert.That(empty.Name, Is.EqualTo(Sasl + "challenge"));
        Assert.That(empty.Value, Is.Empty);
        await client.SendAsync($"<response xmlns='{Sasl}'>{Convert.ToBase64String(scram.ClientFirst())}</response>");
        var challenge = await client.ExpectSaslAsync();
        Assert.That(scram.ReceiveServerFirst(Convert.FromBase64String(challenge.Value), out var final), Is.EqualTo(SaslResult.Continue));
        await client.SendAsync($"<response xmlns='{Sasl}'>{Convert.ToBase64String(final!)}</response>");
        var success = await client.ExpectSaslAsync();
        Assert.That(scram.VerifyServerFinal(Convert.FromBase64String(success.Value)), Is.True);
    }

    [Test]
    public async Task Element_form_raw_text_routes_can_be_chosen()
    {
        await _link.DisposeAsync();
        await _core.DisposeAsync();
        _core = CoreTestServer.Start(o => o with { RawTextRoutes = RawTextRouteForm.Elements });
        await _core.AddUsersAsync("alice");
        _link = await _core.OpenLinkAsync();
        var client = await TestClient.CreateAsync(_link);
        var success = await client.TryPlainAsync("alice", CoreTestServer.Password);
        Assert.That(success.Name, Is.EqualTo(Sasl + "success"));
        Assert.That(success.RouteForm(), Is.EqualTo(RouteForm.Element));
    }

    [Test]
    public async Task Wrong_password_fails_and_the_third_failure_ends_the_session()
    {
        var client = await TestClient.CreateAsync(_link);
        for (var attempt = 1; attempt <= 2; attempt++)
        {
            var failure = await client.TryPlainAsync("alice", "wrong");
            Assert.That(failure.Element(Sasl + "not-authorized"), Is.Not.Null, failure.ToString());
        }
        var unknown = await client.TryPlainAsync("nobody", "wrong");
        Assert.That(unknown.Element(Sasl + "not-authorized"), Is.Not.Null, "an unknown user fails the same way");

        var error = await client.ExpectStreamErrorAsync();
        Assert.That(error.Element(StreamErrors + "not-authorized"), Is.Not.Null, error.ToString());
        var close = await client.ExpectCloseIqAsync();
        Assert.That(close.Attribute("to")?.Value, Is.EqualTo("cm1"), "to the CM domain (spec 5.4)");
        await AssertSessionGone(client);
    }

    [Test]
    public async Task Scram_with_a_wrong_password_fails_without_success()
    {
        var client = await TestClient.CreateAsync(_link);
        var scram = new ScramClient(ScramHash.Sha1, "alice", "wrong");
        await client.SendAsync($"<auth xmlns='{Sasl}' mechanism='SCRAM-SHA-1'>{Convert.ToBase64String(scram.ClientFirst())}</auth>");
        var challenge = await client.ExpectSaslAsync();
        scram.ReceiveServerFirst(Convert.FromBase64String(challenge.Value), out var final);
        await client.SendAsync($"<response xmlns='{Sasl}'>{Convert.ToBase64String(final!)}</response>");
        var failure = await client.ExpectSaslAsync();
        Assert.That(failure.Element(Sasl + "not-authorized"), Is.Not.Null, failure.ToString());
        // The session lives on: a correct login still works.
        await client.AuthenticatePlainAsync("alice", CoreTestServer.Password);
    }

    [Test]
    public async Task Sasl_errors_name_the_problem()
    {
        var client = await TestClient.CreateAsync(_link);
        await client.SendAsync($"<auth xmlns='{Sasl}' mechanism='DIGEST-MD5'/>");
        Assert.That((await client.ExpectSaslAsync()).Element(Sasl + "invalid-mechanism"), Is.Not.Null);
        await client.SendAsync($"<auth xmlns='{Sasl}' mechanism='PLAIN'>not base64!</auth>");
        Assert.That((await client.ExpectSaslAsync()).Element(Sasl + "incorrect-encoding"), Is.Not.Null);
        var other = await TestClient.CreateAsync(_link);
        await other.SendAsync($"<response xmlns='{Sasl}'>AAAA</response>");
        Assert.That((await other.ExpectSaslAsync()).Element(Sasl + "not-authorized"), Is.Not.Null, "a response with no auth before it (spec 0.1 point 4)");
        var third = await TestClient.CreateAsync(_link);
        await third.SendAsync($"<auth xmlns='urn:example' mechanism='PLAIN'>{TestClient.Base64("\0alice\0pencil")}</auth>");
        Assert.That((await third.ExpectSaslAsync()).Element(Sasl + "not-authorized"), Is.Not.Null, "auth in the wrong namespace");
    }

    [Test]
    public async Task Plain_refuses_an_authzid_for_someone_else()
    {
        var client = await TestClient.CreateAsync(_link);
        await client.SendAsync($"<auth xmlns='{Sasl}' mechanism='PLAIN'>{TestClient.Base64("bob@localhost\0alice\0pencil")}</auth>");
        Assert.That((await client.ExpectSaslAsync()).Element(Sasl + "invalid-authzid"), Is.Not.Null);
        await client.SendAsync($"<auth xmlns='{Sasl}' mechanism='PLAIN'>{TestClient.Base64("alice@localhost\0alice\0pencil")}</auth>");
        Assert.That((await client.ExpectSaslAsync()).Name, Is.EqualTo(Sasl + "success"), "one's own JID is fine");
    }

    [Test]
    public async Task A_stanza_before_authentication_ends_the_session_with_not_authorized()
    {
        var client = await TestClient.CreateAsync(_link);
        await client.SendAsync("<message to='bob@localhost'><body>hi</body></message>");
        var error = await client.ExpectStreamErrorAsync();
        Assert.That(error.Element(StreamErrors + "not-authorized"), Is.Not.Null, error.ToString());
        await client.ExpectCloseIqAsync();
    }

    [Test]
    public async Task A_message_after_authentication_but_before_binding_ends_the_session()
    {
        var client = await TestClient.CreateAsync(_link);
        await client.AuthenticatePlainAsync("alice", CoreTestServer.Password);
        await client.SendAsync("<message to='bob@localhost'><body>hi</body></message>");
        var error = await client.ExpectStreamErrorAsync();
        Assert.That(error.Element(StreamErrors + "not-authorized"), Is.Not.Null, error.ToString());
        await client.ExpectCloseIqAsync();
    }

    [Test]
    public async Task Bind_without_a_resource_gets_a_generated_one_and_session_iq_is_a_no_op()
    {
        var client = await TestClient.CreateAsync(_link);
        await client.AuthenticatePlainAsync("alice", CoreTestServer.Password);
        var jid = await client.BindAsync(null);
        Assert.That(jid, Does.Match("^alice@localhost/[0-9a-z]{16}$"));
        var session = await client.IqAsync("<iq type='set' id='{id}'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
        Assert.That(session.Attribute("type")?.Value, Is.EqualTo("result"));
        var again = await client.IqAsync($"<iq type='set' id='{{id}}'><bind xmlns='{TestClient.Bind}'><resource>x</resource></bind></iq>");
        Assert.That(again.Attribute("type")?.Value, Is.EqualTo("error"), "one resource per stream");
    }

    [Test]
    public async Task Binding_a_resource_in_use_replaces_the_older_session_with_conflict()
    {
        var first = await TestClient.LoginAsync(_link, "alice", CoreTestServer.Password, "phone");
        var watcher = await TestClient.LoginAsync(_link, "alice", CoreTestServer.Password, "desk");
        await watcher.ExpectPresenceAsync("alice@localhost/phone");

        var second = await TestClient.CreateAsync(_link);
        await second.AuthenticatePlainAsync("alice", CoreTestServer.Password);
        var jid = await second.BindAsync("phone");
        Assert.That(jid, Is.EqualTo("alice@localhost/phone"));

        var error = await first.ExpectStreamErrorAsync();
        Assert.That(error.Element(StreamErrors + "conflict"), Is.Not.Null, error.ToString());
        Assert.That(error.RouteForm(), Is.EqualTo(RouteForm.RawText), "as Openfire's Session.close(StreamError) (spec 0.1 point 1)");
        await watcher.ExpectPresenceAsync("alice@localhost/phone", "unavailable");
        var rest = await first.DrainAsyncOrNothing();
        Assert.That(rest.Any(e => e.Name.LocalName == "iq" && e.Element(TestCmLink.Cm + "session") is not null), Is.False,
            "a bound session gets no close IQ (spec 0.1 point 1)");

        // The new session has the resource: messages to it arrive there.
        await watcher.SendAsync("<message to='alice@localhost/phone' type='chat'><body>to the new one</body></message>");
        await second.ExpectMessageAsync("to the new one");
        // And the CM's own close for the old stream gets item-not-found: it is already gone (spec 5.3).
        var closed = await _link.CloseSessionAsync(first.StreamId);
        Assert.That(closed.Attribute("type")?.Value, Is.EqualTo("error"));
    }

    [Test]
    public async Task Sessions_that_never_bind_are_closed_after_the_pre_bind_timeout()
    {
        await _link.DisposeAsync();
        await _core.DisposeAsync();
        _core = CoreTestServer.Start(o => o with { PreBindTimeout = TimeSpan.FromMilliseconds(300) });
        _link = await _core.OpenLinkAsync();
        var client = await TestClient.CreateAsync(_link);
        var error = await client.ExpectStreamErrorAsync();
        Assert.That(error.Element(StreamErrors + "connection-timeout"), Is.Not.Null, error.ToString());
        await client.ExpectCloseIqAsync();
    }

    private async Task AssertSessionGone(TestClient client)
    {
        var closed = await _link.CloseSessionAsync(client.StreamId);
        Assert.That(closed.Attribute("type")?.Value, Is.EqualTo("error"), "the session is gone: item-not-found");
    }
}

internal static class TestClientExtensions
{
    /// <summary>Whatever is waiting now or arrives within half a second; for a session that can no longer answer pings.</summary>
    public static async Task<List<XElement>> DrainAsyncOrNothing(this TestClient client)
    {
        var seen = new List<XElement>();
        var channel = client.Link.Session(client.StreamId);
        var deadline = DateTime.UtcNow.AddMilliseconds(500);
        while (DateTime.UtcNow < deadline)
        {
            while (channel.TryRead(out var element))
            {
                seen.Add(element);
            }
            await Task.Delay(50);
        }
        return seen;
    }
}
