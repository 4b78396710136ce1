using System.Security.Cryptography;
using System.Text;
using System.Xml.Linq;
using NUnit.Framework;

namespace ConnMgr.Tests.OpenfireDouble;

/// <summary>The c2s server behind the link: SASL through raw-text routes (both encodings), binding, routing, server-side closes.</summary>
[TestFixture]
public sealed class ClientSessionTests
{
    private const string Sasl = "urn:ietf:params:xml:ns:xmpp-sasl";
    private const string Bind = "urn:ietf:params:xml:ns:xmpp-bind";

    [Test]
    public async Task Plain_login_with_openfire_48_escapes_the_success_route()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet(new() { RawTextEncoding = RawTextEncoding.Openfire48 }));
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await SessionIqTests.CreateAsync(link, "cm1-7f3a9c2b");

        // Spec 7.3: \0alice\0secret.
        await link.SendAsync($"<route streamid=\"cm1-7f3a9c2b\"><auth xmlns=\"{Sasl}\" mechanism=\"PLAIN\">AGFsaWNlAHNlY3JldA==</auth></route>");

        Assert.That(await link.NextAsync(), Is.EqualTo(
            "<route from=\"example.com\" to=\"cm1\" streamid=\"cm1-7f3a9c2b\">&lt;success xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"/&gt;</route>"));
        Assert.That(server.FindSession("cm1-7f3a9c2b")!.State, Is.EqualTo(ClientSessionState.Authenticated));
        await BindAndUseAsync(link, "cm1-7f3a9c2b");
        Assert.That(server.Faults, Is.Empty);
    }

    [Test]
    public async Task Plain_login_with_openfire_47_splices_the_success_element()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet(new() { RawTextEncoding = RawTextEncoding.Openfire47 }));
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await SessionIqTests.CreateAsync(link, "cm1-7f3a9c2b");

        await link.SendAsync($"<route streamid=\"cm1-7f3a9c2b\"><auth xmlns=\"{Sasl}\" mechanism=\"PLAIN\">AGFsaWNlAHNlY3JldA==</auth></route>");

        Assert.That(await link.NextAsync(), Is.EqualTo(
            "<route from=\"example.com\" to=\"cm1\" streamid=\"cm1-7f3a9c2b\"><success xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"/></route>"));
        await BindAndUseAsync(link, "cm1-7f3a9c2b");
    }

    /// <summary>Bind, session, ping, and an unsupported IQ, as element-form routes (spec 6.2, 7.3).</summary>
    private static async Task BindAndUseAsync(RawCmLink link, string streamId)
    {
        await link.SendAsync($"<route streamid=\"{streamId}\"><iq type=\"set\" id=\"b1\"><bind xmlns=\"{Bind}\"><resource>phone</resource></bind></iq></route>");
        Assert.That(await link.NextAsync(), Is.EqualTo(
            $"<route streamid=\"{streamId}\" from=\"example.com\" to=\"cm1\"><iq type=\"result\" id=\"b1\" to=\"alice@example.com/phone\"><bind xmlns=\"{Bind}\"><jid>alice@example.com/phone</jid></bind></iq></route>"));

        await link.SendAsync($"<route streamid=\"{streamId}\"><iq type=\"set\" id=\"s1\"><session xmlns=\"urn:ietf:params:xml:ns:xmpp-session\"/></iq></route>");
        Assert.That(await link.NextAsync(), Is.EqualTo($"<route streamid=\"{streamId}\" from=\"example.com\" to=\"cm1\"><iq type=\"result\" id=\"s1\" to=\"alice@example.com/phone\"/></route>"));

        await link.SendAsync($"<route streamid=\"{streamId}\"><iq type=\"get\" id=\"p1\" to=\"example.com\"><ping xmlns=\"urn:xmpp:ping\"/></iq></route>");
        Assert.That(await link.NextAsync(), Is.EqualTo($"<route streamid=\"{streamId}\" from=\"example.com\" to=\"cm1\"><iq type=\"result\" id=\"p1\" from=\"example.com\" to=\"alice@example.com/phone\"/></route>"));

        await link.SendAsync($"<route streamid=\"{streamId}\"><iq type=\"get\" id=\"v1\" to=\"example.com\"><query xmlns=\"jabber:iq:version\"/></iq></route>");
        Assert.That(await link.NextAsync(), Is.EqualTo(
            $"<route streamid=\"{streamId}\" from=\"example.com\" to=\"cm1\"><iq type=\"error\" id=\"v1\" from=\"example.com\" to=\"alice@example.com/phone\"><query xmlns=\"jabber:iq:version\"/>"
            + "<error code=\"503\" type=\"cancel\"><service-unavailable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></error></iq></route>"));
    }

    [Test]
    public async Task Three_failures_close_the_session_with_a_close_iq_to_the_cm_domain()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await SessionIqTests.CreateAsync(link, "cm1-a");

        for (int attempt = 1; attempt <= 3; attempt++)
        {
            await link.SendAsync($"<route streamid=\"cm1-a\"><auth xmlns=\"{Sasl}\" mechanism=\"PLAIN\">{Plain("alice", "wrong")}</auth></route>");
            Assert.That(await link.NextAsync(), Is.EqualTo(
                "<route from=\"example.com\" to=\"cm1\" streamid=\"cm1-a\">&lt;failure xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"&gt;&lt;not-authorized/&gt;&lt;/failure&gt;</route>"), $"attempt {attempt}");
        }

        Assert.That(await link.NextAsync(), Does.Match(
            "^<iq type=\"set\" id=\"[0-9]+-[0-9]+\" from=\"example.com\" to=\"cm1\"><session xmlns=\"http://jabber.org/protocol/connectionmanager\" id=\"cm1-a\"><close/></session></iq>$"));
        Assert.That(server.FindSession("cm1-a"), Is.Null);
        Assert.That(server.EndedSessions.Single(), Is.EqualTo(new EndedSession("cm1-a", "cm1", "auth-retries", CloseIqSent: true)));

        // The CM's own close afterwards finds nothing (spec 5.4: result or item-not-found, both fine).
        await link.SendAsync("<iq type=\"set\" id=\"c9\"><session xmlns=\"http://jabber.org/protocol/connectionmanager\" id=\"cm1-a\"><close/></session></iq>");
        Assert.That(await link.NextAsync(), Does.Contain("<item-not-found"));
    }

    [TestCase("<auth xmlns=\"urn:wrong\" mechanism=\"PLAIN\">AGFsaWNlAHNlY3JldA==</auth>", "not-authorized", TestName = "Auth in the wrong namespace fails with not-authorized")]
    [TestCase("<response xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\">abc=</response>", "not-authorized", TestName = "Response without auth fails with not-authorized")]
    [TestCase("<auth xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\" mechanism=\"EXTERNAL\">=</auth>", "invalid-mechanism", TestName = "EXTERNAL fails through a CM")]
    [TestCase("<auth xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\" mechanism=\"SCRAM-SHA-1-PLUS\">cCx0bHMtdW5pcXVlLCxuPWFsaWNlLHI9eA==</auth>", "invalid-mechanism", TestName = "SCRAM-SHA-1-PLUS fails through a CM")]
    [TestCase("<auth xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\" mechanism=\"DIGEST-MD5\"/>", "invalid-mechanism", TestName = "A mechanism not configured fails with invalid-mechanism")]
    [TestCase("<auth xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\" mechanism=\"PLAIN\">!!!</auth>", "incorrect-encoding", TestName = "Bad base64 fails with incorrect-encoding")]
    public async Task Sasl_failures(string auth, string condition)
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet(new() { RawTextEncoding = RawTextEncoding.Openfire47 }));
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await SessionIqTests.CreateAsync(link, "cm1-a");

        await link.SendAsync($"<route streamid=\"cm1-a\">{auth}</route>");

        Assert.That(await link.NextAsync(), Is.EqualTo($"<route from=\"example.com\" to=\"cm1\" streamid=\"cm1-a\"><failure xmlns=\"{Sasl}\"><{condition}/></failure></route>"));
        Assert.That(server.FindSession("cm1-a")!.AuthFailures, Is.EqualTo(1));
    }

    [Test]
    public async Task Plain_without_initial_response_gets_an_empty_challenge()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet(new() { RawTextEncoding = RawTextEncoding.Openfire47 }));
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await SessionIqTests.CreateAsync(link, "cm1-a");

        await link.SendAsync($"<route streamid=\"cm1-a\"><auth xmlns=\"{Sasl}\" mechanism=\"PLAIN\"/></route>");
        Assert.That(await link.NextAsync(), Is.EqualTo($"<route from=\"example.com\" to=\"cm1\" streamid=\"cm1-a\"><challenge xmlns=\"{Sasl}\">=</challenge></route>"));

        await link.SendAsync($"<route streamid=\"cm1-a\"><response xmlns=\"{Sasl}\">{Plain("bob", "secret")}</response></route>");
        Assert.That(await link.NextAsync(), Is.EqualTo($"<route from=\"example.com\" to=\"cm1\" streamid=\"cm1-a\"><success xmlns=\"{Sasl}\"/></route>"));
        Assert.That(server.FindSession("cm1-a")!.Username, Is.EqualTo("bob"));
    }

    [Test]
    public async Task Scram_sha1_login_through_escaped_challenge_and_success_routes()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await SessionIqTests.CreateAsync(link, "cm1-a");
        const string clientNonce = "fyko+d2lbbFgONRv9qkxdawL";
        string clientFirstBare = $"n=alice,r={clientNonce}";

        await link.SendAsync($"<route streamid=\"cm1-a\"><auth xmlns=\"{Sasl}\" mechanism=\"SCRAM-SHA-1\">{B64("n,," + clientFirstBare)}</auth></route>");
        XElement challenge = RawBody(await link.NextAsync());
        Assert.That(challenge.Name, Is.EqualTo(XName.Get("challenge", Sasl)));
        string serverFirst = Encoding.UTF8.GetString(Convert.FromBase64String(challenge.Value));
        Dictionary<string, string> fields = serverFirst.Split(',').ToDictionary(f => f[..1], f => f[2..]);
        Assert.That(fields["r"], Does.StartWith(clientNonce).And.Length.GreaterThan(clientNonce.Length));

        byte[] salted = Rfc2898DeriveBytes.Pbkdf2("secret"u8, Convert.FromBase64String(fields["s"]), int.Parse(fields["i"]), HashAlgorithmName.SHA1, 20);
        string finalWithoutProof = $"c=biws,r={fields["r"]}";
        byte[] authMessage = Encoding.UTF8.GetBytes($"{clientFirstBare},{serverFirst},{finalWithoutProof}");
        byte[] clientKey = HMACSHA1.HashData(salted, "Client Key"u8);
        byte[] signature = HMACSHA1.HashData(SHA1.HashData(clientKey), authMessage);
        byte[] proof = [.. clientKey.Zip(signature, (k, s) => (byte)(k ^ s))];
        await link.SendAsync($"<route streamid=\"cm1-a\"><response xmlns=\"{Sasl}\">{B64($"{finalWithoutProof},p={Convert.ToBase64String(proof)}")}</response></route>");

        XElement success = RawBody(await link.NextAsync());
        Assert.That(success.Name, Is.EqualTo(XName.Get("success", Sasl)));
        string expectedVerifier = "v=" + Convert.ToBase64String(HMACSHA1.HashData(HMACSHA1.HashData(salted, "Server Key"u8), authMessage));
        Assert.That(Encoding.UTF8.GetString(Convert.FromBase64String(success.Value)), Is.EqualTo(expectedVerifier));
        Assert.That(server.FindSession("cm1-a")!.State, Is.EqualTo(ClientSessionState.Authenticated));
    }

    [Test]
    public async Task Messages_between_sessions_are_element_routes_with_from_stamped()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await LoginAsync(link, "cm1-alice", "alice", "phone");
        await LoginAsync(link, "cm1-bob", "bob", "pc");

        await link.SendAsync("<route streamid=\"cm1-bob\"><message xmlns=\"jabber:client\" from=\"mallory@example.com/x\" to=\"alice@example.com/phone\" type=\"chat\"><body>hi</body></message></route>");

        Assert.That(await link.NextAsync(), Is.EqualTo(
            "<route streamid=\"cm1-alice\" from=\"example.com\" to=\"cm1\"><message from=\"bob@example.com/pc\" to=\"alice@example.com/phone\" type=\"chat\"><body>hi</body></message></route>"));
        Assert.That(server.Faults, Is.Empty);
    }

    [Test]
    public async Task Messages_to_offline_users_are_stored_and_to_unknown_users_bounced()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await LoginAsync(link, "cm1-alice", "alice", "phone");

        await link.SendAsync("<route streamid=\"cm1-alice\"><message to=\"bob@example.com\" type=\"chat\"><body>later</body></message></route>");
        await link.SendAsync("<route streamid=\"cm1-alice\"><message to=\"nobody@example.com\" type=\"chat\" id=\"m2\"><body>?</body></message></route>");

        Assert.That(await link.NextAsync(), Is.EqualTo(
            "<route streamid=\"cm1-alice\" from=\"example.com\" to=\"cm1\"><message to=\"alice@example.com/phone\" type=\"error\" id=\"m2\" from=\"nobody@example.com\"><body>?</body>"
            + "<error code=\"503\" type=\"cancel\"><service-unavailable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></error></message></route>"));
        Assert.That(server.OfflineMessages.Single().Xml, Is.EqualTo("<message to=\"bob@example.com\" type=\"chat\" from=\"alice@example.com/phone\"><body>later</body></message>"));
    }

    [Test]
    public async Task Presence_goes_to_the_users_own_resources_and_unavailable_follows_a_close()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await LoginAsync(link, "cm1-a1", "alice", "phone");
        await LoginAsync(link, "cm1-a2", "alice", "pc");

        await link.SendAsync("<route streamid=\"cm1-a1\"><presence><show>away</show></presence></route>");
        string[] broadcast = [await link.NextAsync(), await link.NextAsync()];
        Assert.That(broadcast, Is.EquivalentTo(new[]
        {
            "<route streamid=\"cm1-a1\" from=\"example.com\" to=\"cm1\"><presence from=\"alice@example.com/phone\" to=\"alice@example.com/phone\"><show>away</show></presence></route>",
            "<route streamid=\"cm1-a2\" from=\"example.com\" to=\"cm1\"><presence from=\"alice@example.com/phone\" to=\"alice@example.com/pc\"><show>away</show></presence></route>",
        }));

        await link.SendAsync("<iq type=\"set\" id=\"c\"><session xmlns=\"http://jabber.org/protocol/connectionmanager\" id=\"cm1-a1\"><close/></session></iq>");
        Assert.That(await link.NextAsync(), Is.EqualTo("<route streamid=\"cm1-a2\" from=\"example.com\" to=\"cm1\"><presence type=\"unavailable\" from=\"alice@example.com/phone\" to=\"alice@example.com/pc\"/></route>"));
        Assert.That(await link.NextAsync(), Does.StartWith("<iq type=\"result\" id=\"c\">"));
    }

    [Test]
    public async Task Binding_a_taken_full_jid_kicks_the_old_session_with_a_raw_conflict_and_no_close_iq()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await LoginAsync(link, "cm1-old", "alice", "phone");
        await SessionIqTests.CreateAsync(link, "cm1-new");
        await link.SendAsync($"<route streamid=\"cm1-new\"><auth xmlns=\"{Sasl}\" mechanism=\"PLAIN\">{Plain("alice", "secret")}</auth></route>");
        await link.NextAsync();

        await link.SendAsync($"<route streamid=\"cm1-new\"><iq type=\"set\" id=\"b2\"><bind xmlns=\"{Bind}\"><resource>phone</resource></bind></iq></route>");

        Assert.That(await link.NextAsync(), Is.EqualTo(
            "<route from=\"example.com\" to=\"cm1\" streamid=\"cm1-old\">&lt;stream:error xmlns:stream=\"http://etherx.jabber.org/streams\"&gt;&lt;conflict xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/&gt;&lt;/stream:error&gt;</route>"));
        Assert.That(await link.NextAsync(), Does.StartWith("<route streamid=\"cm1-new\" from=\"example.com\" to=\"cm1\"><iq type=\"result\" id=\"b2\""));
        Assert.That(server.EndedSessions.Single(), Is.EqualTo(new EndedSession("cm1-old", "cm1", "conflict", CloseIqSent: false)));
        Assert.That(server.FindSession("cm1-new")!.BoundJid, Is.EqualTo("alice@example.com/phone"));
    }

    [Test]
    public async Task Admin_kick_and_close_follow_the_bound_rule()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await LoginAsync(link, "cm1-bound", "alice", "phone");
        await SessionIqTests.CreateAsync(link, "cm1-fresh");
        await SessionIqTests.CreateAsync(link, "cm1-fresh2");

        Assert.That(await server.KickSessionAsync("cm1-fresh", "policy-violation"), Is.True);
        Assert.That(await link.NextAsync(), Does.Contain("streamid=\"cm1-fresh\">&lt;stream:error").And.Contains("policy-violation"));
        Assert.That(await link.NextAsync(), Does.Contain("<session xmlns=\"http://jabber.org/protocol/connectionmanager\" id=\"cm1-fresh\"><close/></session>"));

        Assert.That(await server.CloseSessionAsync("cm1-fresh2"), Is.True);
        Assert.That(await link.NextAsync(), Does.Contain("id=\"cm1-fresh2\"><close/></session>"));

        Assert.That(await server.CloseSessionAsync("cm1-bound"), Is.True);
        Assert.That(server.FindSession("cm1-bound"), Is.Null);
        await link.ExpectSilenceAsync(TimeSpan.FromMilliseconds(200));
    }

    [Test]
    public async Task A_close_iq_may_carry_a_stream_error_next_to_close()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await LoginAsync(link, "cm1-a", "alice", "phone");

        Assert.That(await server.SendCloseIqAsync("cm1-a", "conflict"), Is.True);

        Assert.That(await link.NextAsync(), Does.Match(
            "^<iq type=\"set\" id=\"[0-9]+-[0-9]+\" from=\"example.com\" to=\"cm1\"><session xmlns=\"http://jabber.org/protocol/connectionmanager\" id=\"cm1-a\"><close/>"
            + "<stream:error xmlns:stream=\"http://etherx.jabber.org/streams\"><conflict xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/></stream:error></session></iq>$"));
        Assert.That(server.FindSession("cm1-a"), Is.Null);
    }

    [Test]
    public async Task Sessions_not_bound_in_time_are_closed_with_a_close_iq()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet(new() { PreAuthTimeout = TimeSpan.FromMilliseconds(600) }));
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await SessionIqTests.CreateAsync(link, "cm1-slow");
        await LoginAsync(link, "cm1-quick", "alice", "phone");

        Assert.That(await link.NextAsync(), Does.Contain("id=\"cm1-slow\"><close/></session>"));
        Assert.That(server.EndedSessions.Single().Reason, Is.EqualTo("pre-auth-timeout"));
        Assert.That(server.FindSession("cm1-quick"), Is.Not.Null);
    }

    [Test]
    public async Task Before_binding_a_message_to_another_user_gets_a_raw_not_authorized_and_the_session_stays()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await SessionIqTests.CreateAsync(link, "cm1-a");

        await link.SendAsync("<route streamid=\"cm1-a\"><message to=\"bob@example.com\"><body>x</body></message></route>");

        Assert.That(await link.NextAsync(), Does.Contain("&lt;not-authorized xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/&gt;"));
        Assert.That(server.FindSession("cm1-a"), Is.Not.Null);
    }

    [Test]
    public async Task Before_binding_an_iq_to_another_entity_closes_the_session()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await SessionIqTests.CreateAsync(link, "cm1-a");

        await link.SendAsync("<route streamid=\"cm1-a\"><iq type=\"get\" id=\"q\" to=\"bob@example.com\"><query xmlns=\"jabber:iq:version\"/></iq></route>");

        Assert.That(await link.NextAsync(), Does.Contain("&lt;not-authorized xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/&gt;"));
        Assert.That(await link.NextAsync(), Does.Contain("id=\"cm1-a\"><close/></session>"));
        Assert.That(server.FindSession("cm1-a"), Is.Null);
    }

    [Test]
    public async Task Bind_before_authentication_is_not_authorized()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await SessionIqTests.CreateAsync(link, "cm1-a");

        await link.SendAsync($"<route streamid=\"cm1-a\"><iq type=\"set\" id=\"b\"><bind xmlns=\"{Bind}\"/></iq></route>");

        Assert.That(await link.NextAsync(), Is.EqualTo(
            $"<route streamid=\"cm1-a\" from=\"example.com\" to=\"cm1\"><iq type=\"error\" id=\"b\" to=\"example.com/cm1-a\"><bind xmlns=\"{Bind}\"/>"
            + "<error code=\"401\" type=\"auth\"><not-authorized xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></error></iq></route>"));
    }

    internal static async Task LoginAsync(RawCmLink link, string streamId, string user, string resource)
    {
        await SessionIqTests.CreateAsync(link, streamId);
        await link.SendAsync($"<route streamid=\"{streamId}\"><auth xmlns=\"{Sasl}\" mechanism=\"PLAIN\">{Plain(user, "secret")}</auth></route>");
        Assert.That(await link.NextAsync(), Does.Contain("success"));
        await link.SendAsync($"<route streamid=\"{streamId}\"><iq type=\"set\" id=\"b1\"><bind xmlns=\"{Bind}\"><resource>{resource}</resource></bind></iq></route>");
        Assert.That(await link.NextAsync(), Does.Contain($"<jid>{user}@example.com/{resource}</jid>"));
    }

    private static string Plain(string user, string password) => B64($"\0{user}\0{password}");

    private static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    /// <summary>The XML carried by a 4.8 raw-text route: the route's unescaped text, parsed.</summary>
    private static XElement RawBody(string route)
    {
        XElement parsed = XElement.Parse(route);
        Assert.That(parsed.HasElements, Is.False, route);
        return XElement.Parse(parsed.Value);
    }
}
