using System.Net;
using System.Text;
using ConnMgr.Edge.Upstream;
using ConnMgr.Protocol.Xml;
using ConnMgr.Tests.OpenfireDouble;
using NUnit.Framework;
using static ConnMgr.Tests.Edge.Upstream.UpstreamTestSupport;

namespace ConnMgr.Tests.Edge.Upstream;

/// <summary>The session protocol (spec 5) and routes both ways (spec 6), against the Openfire double.</summary>
[TestFixture]
public sealed class UpstreamSessionTests
{
    private const string PlainAuth = "<auth xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\" mechanism=\"PLAIN\">AGFsaWNlAHNlY3JldA==</auth>";

    [Test]
    public async Task Create_sends_the_client_address_and_the_owner_hears_created()
    {
        await using var server = OpenfireDoubleServer.Start();
        await using var pool = await StartPoolAsync(Settings(server));
        var owner = new RecordingOwner();

        // An IPv4 client seen on a dual-stack socket is reported in IPv4 form (spec 5.2: an IP literal).
        var session = pool.CreateSession(pool.NewStreamId(), owner, IPAddress.Parse("203.0.113.7").MapToIPv6());

        await owner.WaitForEventAsync("created");
        var info = await server.WaitForSessionAsync(session.StreamId);
        Assert.That(info.HostAddress, Is.EqualTo("203.0.113.7"));
        Assert.That(info.HostName, Is.EqualTo("203.0.113.7"));
        Assert.That(session.StreamId, Does.StartWith("cm1-"));
        Assert.That(pool.SessionCount, Is.EqualTo(1));
    }

    [Test]
    public async Task A_refused_create_tells_the_owner_and_forgets_the_session()
    {
        await using var server = OpenfireDoubleServer.Start(new OpenfireDoubleOptions { BlockedAddresses = ["198.51.100.1"] });
        await using var pool = await StartPoolAsync(Settings(server));
        var owner = new RecordingOwner();

        pool.CreateSession(pool.NewStreamId(), owner, IPAddress.Parse("198.51.100.1"));

        await owner.WaitForEventAsync("refused");
        Assert.That(owner.Events.Single().Refusal, Is.EqualTo(StanzaErrorCondition.NotAllowed));
        Assert.That(pool.SessionCount, Is.Zero);
        Assert.That(server.Sessions, Is.Empty);
    }

    [Test]
    public async Task Close_is_sent_once_and_ends_the_server_session()
    {
        await using var server = OpenfireDoubleServer.Start();
        await using var pool = await StartPoolAsync(Settings(server));
        var (session, owner) = await CreateAsync(pool, server);

        session.Close();
        session.Close();

        await server.WaitForAsync(s => s.EndedSessions.Any(e => e.StreamId == session.StreamId && e.Reason == "cm-close"), description: "cm-close");
        await Task.Delay(100);
        Assert.That(CloseIqsFor(server, session.StreamId), Is.EqualTo(1));
        Assert.That(pool.SessionCount, Is.Zero);
        Assert.That(owner.Events.Select(e => e.Kind), Is.EqualTo(new[] { "created" }), "no callback after the owner's own close");
    }

    [Test]
    public async Task Failed_hands_an_undelivered_message_back_for_offline_storage()
    {
        await using var server = OpenfireDoubleServer.Start();
        await using var pool = await StartPoolAsync(Settings(server));
        var (session, _) = await CreateAsync(pool, server);

        await session.SendFailedAsync("<message to=\"alice@example.com/phone\" from=\"bob@example.com/pc\" type=\"chat\"><body>hi</body></message>"u8.ToArray());

        await server.WaitForAsync(s => s.OfflineMessages.Any(), description: "an offline message");
        var stored = server.OfflineMessages.Single();
        Assert.That(stored.FromFailedIq, Is.True);
        Assert.That(stored.StreamId, Is.EqualTo(session.StreamId));
        // Written as jabber:client, it is stored without any connection-manager namespace (spec 5.5).
        Assert.That(stored.Xml, Does.Contain("<body>hi</body>").And.Not.Contain("connectionmanager"));
        Assert.That(() => session.SendFailedAsync("<presence/>"u8.ToArray()), Throws.ArgumentException);
    }

    [TestCase(RawTextEncoding.Openfire47)]
    [TestCase(RawTextEncoding.Openfire48)]
    public async Task A_plain_login_and_bind_complete_with_either_raw_text_encoding(RawTextEncoding encoding)
    {
        await using var server = OpenfireDoubleServer.Start(new OpenfireDoubleOptions { RawTextEncoding = encoding });
        await using var pool = await StartPoolAsync(Settings(server));
        var (session, owner) = await CreateAsync(pool, server);

        await session.RouteAsync(PlainAuth);
        await owner.WaitForAsync(o => o.Deliveries.Count == 1, "SASL success");
        var success = owner.Deliveries[0];
        Assert.That(success.DeliveryKind, Is.EqualTo(DeliveryKind.SaslSuccess));
        Assert.That(success.Xml, Does.StartWith("<success xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\""));

        await session.RouteAsync("<iq type=\"set\" id=\"b1\"><bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\"><resource>phone</resource></bind></iq>");
        await owner.WaitForAsync(o => o.Deliveries.Count == 2, "bind result");
        var bind = owner.Deliveries[1];
        Assert.That(bind.DeliveryKind, Is.EqualTo(DeliveryKind.Stanza));
        Assert.That(bind.Xml, Does.Contain("<jid>alice@example.com/phone</jid>").And.Not.Contain("jabber:connectionmanager"));
        Assert.That((await server.WaitForSessionAsync(session.StreamId)).State, Is.EqualTo(ClientSessionState.Bound));
        Assert.That(server.Faults, Is.Empty);
    }

    [TestCase(RawTextEncoding.Openfire47)]
    [TestCase(RawTextEncoding.Openfire48)]
    public async Task A_wrong_password_is_delivered_as_a_sasl_failure(RawTextEncoding encoding)
    {
        await using var server = OpenfireDoubleServer.Start(new OpenfireDoubleOptions { RawTextEncoding = encoding });
        await using var pool = await StartPoolAsync(Settings(server));
        var (session, owner) = await CreateAsync(pool, server);

        await session.RouteAsync("<auth xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\" mechanism=\"PLAIN\">AGFsaWNlAHdyb25n</auth>");

        await owner.WaitForAsync(o => o.Deliveries.Count == 1, "SASL failure");
        Assert.That(owner.Deliveries[0].DeliveryKind, Is.EqualTo(DeliveryKind.SaslFailure));
        Assert.That(owner.Deliveries[0].Xml, Does.Contain("not-authorized"));
    }

    [Test]
    public async Task Scram_challenges_are_delivered_as_challenges()
    {
        await using var server = OpenfireDoubleServer.Start();
        await using var pool = await StartPoolAsync(Settings(server));
        var (session, owner) = await CreateAsync(pool, server);

        var clientFirst = Convert.ToBase64String(Encoding.UTF8.GetBytes("n,,n=alice,r=abcdefghijklmnop"));
        await session.RouteAsync($"<auth xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\" mechanism=\"SCRAM-SHA-1\">{clientFirst}</auth>");

        await owner.WaitForAsync(o => o.Deliveries.Count == 1, "SASL challenge");
        Assert.That(owner.Deliveries[0].DeliveryKind, Is.EqualTo(DeliveryKind.SaslChallenge));
    }

    [TestCase(RawTextEncoding.Openfire47)]
    [TestCase(RawTextEncoding.Openfire48)]
    public async Task A_routed_stream_error_ends_the_session_in_either_encoding(RawTextEncoding encoding)
    {
        await using var server = OpenfireDoubleServer.Start(new OpenfireDoubleOptions { RawTextEncoding = encoding });
        await using var pool = await StartPoolAsync(Settings(server));
        var (session, owner) = await CreateAsync(pool, server);
        await session.RouteAsync(PlainAuth);
        await session.RouteAsync("<iq type=\"set\" id=\"b1\"><bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\"><resource>phone</resource></bind></iq>");
        await server.WaitForSessionAsync(session.StreamId, s => s.State == ClientSessionState.Bound);

        // A bound session kicked by the server: only a raw-text stream error, no close IQ (spec 0.1 point 1).
        await server.KickSessionAsync(session.StreamId, "conflict");

        await owner.WaitForEventAsync("stream-error");
        var error = owner.Events.Single(e => e.Kind == "stream-error");
        Assert.That(error.StreamError, Is.EqualTo(StreamErrorCondition.Conflict));
        Assert.That(owner.Deliveries.Any(d => d.Xml!.Contains("stream:error")), Is.False, "the owner writes its own stream error");
        await server.WaitForAsync(_ => CloseIqsFor(server, session.StreamId) == 1, description: "our close after the stream error");
        Assert.That(pool.SessionCount, Is.Zero);
    }

    [Test]
    public async Task A_server_close_is_answered_and_followed_by_our_close()
    {
        await using var server = OpenfireDoubleServer.Start();
        await using var pool = await StartPoolAsync(Settings(server));
        var (session, owner) = await CreateAsync(pool, server);

        // Not bound yet, so the server sends its close IQ (spec 5.4).
        await server.CloseSessionAsync(session.StreamId);

        await owner.WaitForEventAsync("closed");
        // First: the server's close precedes its result for our own close, which may already be there.
        var closeIq = server.SentFrames.First(f => f.Text.Contains("<close/>") && f.Text.StartsWith("<iq"));
        var closeId = System.Xml.Linq.XElement.Parse(closeIq.Text).Attribute("id")!.Value;
        await server.WaitForAsync(s => s.ReceivedElements.Any(e => e.Name == "iq" && e.Attr("type") == "result" && e.Attr("id") == closeId),
            description: "a result for the server's close");
        await server.WaitForAsync(_ => CloseIqsFor(server, session.StreamId) == 1, description: "our own close");
        Assert.That(pool.SessionCount, Is.Zero);
    }

    [Test]
    public async Task A_stream_error_inside_the_server_close_reaches_the_owner()
    {
        await using var server = OpenfireDoubleServer.Start();
        await using var pool = await StartPoolAsync(Settings(server));
        var (session, owner) = await CreateAsync(pool, server);

        // The OF-2414 form (spec 5.4): <session><close/><stream:error>...</stream:error></session>.
        await server.SendCloseIqAsync(session.StreamId, "policy-violation");

        await owner.WaitForEventAsync("stream-error");
        Assert.That(owner.Events.Last().StreamError, Is.EqualTo(StreamErrorCondition.PolicyViolation));
        await server.WaitForAsync(_ => CloseIqsFor(server, session.StreamId) == 1, description: "our own close");
        Assert.That(server.Faults, Is.Empty);
    }

    [Test]
    public async Task An_unknown_stanza_route_error_is_logged_and_never_reaches_the_client()
    {
        await using var server = OpenfireDoubleServer.Start();
        var logger = new ListLogger<UpstreamPool>();
        await using var pool = await StartPoolAsync(Settings(server), logger);
        var (session, owner) = await CreateAsync(pool, server);

        // SASL abort is not one of the elements Openfire routes (spec 6.1.1).
        await session.RouteAsync("<abort xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"/>");

        await logger.WaitForAsync(3045);
        Assert.That(logger.Entries.Single(e => e.EventId == 3045).Message, Does.Contain("bad-request").And.Contain("unknown-stanza"));
        Assert.That(owner.Deliveries, Is.Empty);
        Assert.That(owner.Ended, Is.False, "the session goes on");
        Assert.That(server.FindSession(session.StreamId), Is.Not.Null);
    }

    [Test]
    public async Task An_item_not_found_route_error_means_the_session_is_gone()
    {
        await using var server = OpenfireDoubleServer.Start();
        await using var pool = await StartPoolAsync(Settings(server));
        var (session, owner) = await CreateAsync(pool, server);

        await server.SendRouteErrorAsync(session.StreamId, "item-not-found");

        await owner.WaitForEventAsync("closed");
        Assert.That(owner.Deliveries, Is.Empty, "an error route is never forwarded (spec 6.1.3)");
        await server.WaitForAsync(_ => CloseIqsFor(server, session.StreamId) == 1, description: "our close");
        Assert.That(pool.SessionCount, Is.Zero);
    }

    [Test]
    public async Task A_route_for_an_unknown_stream_gets_failed_for_messages_and_one_close()
    {
        await using var server = OpenfireDoubleServer.Start();
        await using var pool = await StartPoolAsync(Settings(server));
        const string ghost = "cm1-ghost1";

        await server.DeliverStanzaAsync(ghost, "<message from=\"bob@example.com/pc\" to=\"alice@example.com/phone\" id=\"g1\"><body>1</body></message>", "cm1");
        await server.DeliverStanzaAsync(ghost, "<message from=\"bob@example.com/pc\" to=\"alice@example.com/phone\" id=\"g2\"><body>2</body></message>", "cm1");
        await server.DeliverStanzaAsync(ghost, "<presence from=\"bob@example.com/pc\"/>", "cm1");

        await server.WaitForAsync(s => FailedFor(s, ghost) == 2 && CloseIqsFor(s, ghost) == 1, description: "two failed and one close");
        var firstFailed = server.ReceivedElements.First(e => IsSessionIq(e, ghost, "failed"));
        var firstClose = server.ReceivedElements.First(e => IsSessionIq(e, ghost, "close"));
        Assert.That(firstFailed.Sequence, Is.LessThan(firstClose.Sequence), "failed goes before close (spec 5.5)");
        await Task.Delay(200);
        Assert.That(CloseIqsFor(server, ghost), Is.EqualTo(1), "one close per unknown stream ID");
    }

    [Test]
    public async Task A_child_naming_the_link_namespace_reaches_the_client_without_it()
    {
        await using var server = OpenfireDoubleServer.Start();
        await using var pool = await StartPoolAsync(Settings(server));
        var (session, owner) = await CreateAsync(pool, server);

        await server.DeliverStanzaAsync(session.StreamId, "<message xmlns=\"jabber:connectionmanager\" id=\"x1\"><body>hi</body></message>");
        await server.DeliverStanzaAsync(session.StreamId, "<message id=\"x2\"><body>hi</body></message>");

        await owner.WaitForAsync(o => o.Deliveries.Count == 2, "two messages");
        Assert.That(owner.Deliveries[0].Xml, Is.EqualTo("<message id=\"x1\"><body>hi</body></message>"));
        Assert.That(owner.Deliveries[1].Xml, Is.EqualTo("<message id=\"x2\"><body>hi</body></message>"), "forwarded byte for byte");
    }

    [Test]
    public async Task Prefixes_of_the_client_header_are_declared_on_the_route()
    {
        await using var server = OpenfireDoubleServer.Start();
        await using var pool = await StartPoolAsync(Settings(server));
        var owner = new RecordingOwner();
        var session = pool.CreateSession(pool.NewStreamId(), owner, IPAddress.Loopback,
            [new("", "jabber:client"), new("stream", "http://etherx.jabber.org/streams"), new("x", "urn:example:x")]);
        await owner.WaitForEventAsync("created");

        await session.RouteAsync("<message to=\"bob@example.com\" id=\"p1\"><x:thing>1</x:thing></message>");

        var route = await server.WaitForElementAsync(e => e.Name == "route");
        Assert.That(route.Xml, Does.StartWith($"<route streamid=\"{session.StreamId}\" xmlns:x=\"urn:example:x\">"));
        Assert.That(route.Element!.Descendants(System.Xml.Linq.XName.Get("thing", "urn:example:x")).Count(), Is.EqualTo(1));
        Assert.That(server.Links.Single(l => l.IsAuthenticated).IsOpen, Is.True, "the route parsed standalone (spec 2)");
    }

    [Test]
    public async Task An_owner_that_throws_loses_its_session_and_others_keep_receiving()
    {
        await using var server = OpenfireDoubleServer.Start();
        await using var pool = await StartPoolAsync(Settings(server));
        var (broken, _) = await CreateAsync(pool, server, new RecordingOwner { BeforeDeliver = _ => throw new InvalidOperationException("client gone wrong") });
        var (healthy, healthyOwner) = await CreateAsync(pool, server);

        for (var i = 0; i < 20; i++)
        {
            await server.DeliverStanzaAsync(broken.StreamId, $"<message id=\"b{i}\"/>");
            await server.DeliverStanzaAsync(healthy.StreamId, $"<message id=\"h{i}\"/>");
        }

        await healthyOwner.WaitForAsync(o => o.Deliveries.Count == 20, "20 deliveries to the healthy owner");
        Assert.That(healthyOwner.Deliveries.Select(d => d.Xml), Is.EqualTo(Enumerable.Range(0, 20).Select(i => $"<message id=\"h{i}\"/>")));
        await server.WaitForAsync(_ => CloseIqsFor(server, broken.StreamId) == 1, description: "the broken session closed");
        Assert.That(broken.IsClosed, Is.True);
    }

    [Test]
    public async Task A_stanza_beyond_the_link_limit_is_refused_before_it_can_cut_the_link()
    {
        await using var server = OpenfireDoubleServer.Start();
        await using var pool = await StartPoolAsync(Settings(server));
        var (session, _) = await CreateAsync(pool, server);
        var huge = new byte[UpstreamPool.MaxRoutedStanzaBytes + 1];

        Assert.That(async () => await session.RouteAsync(new System.Buffers.ReadOnlySequence<byte>(huge), CancellationToken.None),
            Throws.TypeOf<ArgumentOutOfRangeException>());
        Assert.That(async () => await session.RouteAsync(" "), Throws.ArgumentException, "an empty route would cut the link (spec 2)");
        Assert.That(() => pool.CreateSession("bad id", new RecordingOwner(), null), Throws.ArgumentException);
        Assert.That(() => pool.CreateSession(session.StreamId, new RecordingOwner(), null), Throws.ArgumentException, "IDs are never reused (spec 5.1)");
    }

    [Test]
    public async Task Without_a_link_no_session_can_be_created()
    {
        await using var pool = new UpstreamPool(new UpstreamSettings { Host = "127.0.0.1", Port = 1, Secret = "s", CmName = "cm1" }, new ListLogger<UpstreamPool>());
        Assert.That(() => pool.CreateSession("cm1-x", new RecordingOwner(), null), Throws.TypeOf<UpstreamUnavailableException>());
    }

    private static bool IsSessionIq(ReceivedElement e, string streamId, string request)
        => e.Name == "iq" && e.Element!.Elements().Any(s => s.Name.LocalName == "session" && (string?)s.Attribute("id") == streamId
            && s.Elements().Any(r => r.Name.LocalName == request));

    private static int CloseIqsFor(OpenfireDoubleServer server, string streamId)
        => server.ReceivedElements.Count(e => IsSessionIq(e, streamId, "close"));

    private static int FailedFor(OpenfireDoubleServer server, string streamId)
        => server.ReceivedElements.Count(e => IsSessionIq(e, streamId, "failed"));
}
