using NUnit.Framework;

namespace ConnMgr.Tests.OpenfireDouble;

/// <summary>Spec 3: header checks, handshake, configuration IQ, STARTTLS, pre-handshake traffic.</summary>
[TestFixture]
public sealed class LinkEstablishmentTests
{
    internal static OpenfireDoubleOptions Quiet(OpenfireDoubleOptions? options = null) =>
        (options ?? new OpenfireDoubleOptions()) with { Log = TestContext.Progress.WriteLine };

    [Test]
    public async Task Handshake_with_the_spec_vector_succeeds_and_is_followed_by_the_configuration_iq()
    {
        await using var server = OpenfireDoubleServer.Start(Quiet(new() { Secret = "s3cret", StreamIdFactory = () => "4xk2n9w1pq", LinkTlsPolicy = TlsPolicy.Disabled }));
        await using RawCmLink link = await RawCmLink.ConnectAsync(server);

        await link.SendHeaderAsync("cm1/link-1");
        Assert.That(await link.ReadHeaderAsync(), Is.EqualTo("<stream:stream xmlns:stream=\"http://etherx.jabber.org/streams\" xmlns=\"jabber:connectionmanager\" version=\"1.0\" from=\"cm1/link-1\" id=\"4xk2n9w1pq\">"));
        Assert.That(await link.NextAsync(), Is.EqualTo("<stream:features/>"));
        Assert.That(server.SentFrames[0].Text, Does.StartWith("<?xml version=\"1.0\" encoding=\"UTF-8\"?><stream:stream"), "XML declaration, no newline (spec 3.4)");

        await link.SendAsync("<handshake>6246058f0ff5a47ba6bdef3b1abfbf8f38220049</handshake>");
        Assert.That(await link.NextAsync(), Is.EqualTo("<handshake></handshake>"));
        Assert.That(await link.NextAsync(), Does.Match("^<iq type=\"set\" id=\"[0-9]{1,3}-[0-9]+\"><configuration xmlns=\"http://jabber.org/protocol/connectionmanager\">"));
        LinkInfo info = await server.WaitForLinkAsync("cm1/link-1", l => l.IsAuthenticated);
        Assert.That(info.CmDomain, Is.EqualTo("cm1"));
    }

    [Test]
    public async Task Handshake_digest_comparison_ignores_case()
    {
        await using var server = OpenfireDoubleServer.Start(Quiet(new() { Secret = "s3cret", StreamIdFactory = () => "4xk2n9w1pq" }));
        await using RawCmLink link = await RawCmLink.ConnectAsync(server);
        await link.SendHeaderAsync("cm1/link-1");
        await link.ReadHeaderAsync();
        await link.NextAsync();

        await link.SendAsync("<handshake>6246058F0FF5A47BA6BDEF3B1ABFBF8F38220049</handshake>");

        Assert.That(await link.NextAsync(), Is.EqualTo("<handshake></handshake>"));
    }

    [Test]
    public async Task Missing_to_gets_a_bare_header_and_bad_format()
    {
        await using var server = OpenfireDoubleServer.Start(Quiet());
        await using RawCmLink link = await RawCmLink.ConnectAsync(server);

        await link.SendAsync("<?xml version='1.0'?><stream:stream xmlns:stream=\"http://etherx.jabber.org/streams\" xmlns=\"jabber:connectionmanager\" version=\"1.0\">");

        Assert.That(await link.ReadUntilClosedAsync(), Is.EqualTo(
            "<stream:stream xmlns:stream=\"http://etherx.jabber.org/streams\" xmlns=\"jabber:connectionmanager\" version=\"1.0\">"
            + "<stream:error xmlns:stream=\"http://etherx.jabber.org/streams\"><bad-format xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>"
            + "<text xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\">Missing 'to' attribute value.</text></stream:error></stream:stream>"));
    }

    [Test]
    public async Task Unconfigured_secret_gets_a_header_without_id_and_internal_server_error()
    {
        await using var server = OpenfireDoubleServer.Start(Quiet(new() { Secret = null }));
        await using RawCmLink link = await RawCmLink.ConnectAsync(server);

        await link.SendHeaderAsync("cm1/link-1");

        Assert.That(await link.ReadUntilClosedAsync(), Is.EqualTo(
            "<stream:stream xmlns:stream=\"http://etherx.jabber.org/streams\" xmlns=\"jabber:connectionmanager\" version=\"1.0\" from=\"cm1/link-1\">"
            + "<stream:error xmlns:stream=\"http://etherx.jabber.org/streams\"><internal-server-error xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/></stream:error></stream:stream>"));
    }

    [Test]
    public async Task Wrong_digest_closes_with_not_authorized()
    {
        await using var server = OpenfireDoubleServer.Start(Quiet());
        await using RawCmLink link = await RawCmLink.ConnectAsync(server);
        await link.SendHeaderAsync("cm1/link-1");
        await link.ReadHeaderAsync();
        await link.NextAsync();

        await link.SendAsync("<handshake>0000000000000000000000000000000000000000</handshake>");

        Assert.That(await link.ReadUntilClosedAsync(), Is.EqualTo(
            "<stream:error xmlns:stream=\"http://etherx.jabber.org/streams\"><not-authorized xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/></stream:error></stream:stream>"));
        Assert.That(server.Counters.HandshakesFailed, Is.EqualTo(1));
    }

    [Test]
    public async Task Duplicate_link_jid_gets_conflict_and_the_first_link_lives_on()
    {
        await using var server = OpenfireDoubleServer.Start(Quiet());
        await using RawCmLink first = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await using RawCmLink second = await RawCmLink.ConnectAsync(server);

        await second.SendHeaderAsync("cm1/link-1");

        string refusal = await second.ReadUntilClosedAsync();
        Assert.That(refusal, Does.StartWith("<stream:stream xmlns:stream=\"http://etherx.jabber.org/streams\" xmlns=\"jabber:connectionmanager\" version=\"1.0\" from=\"cm1/link-1\">"));
        Assert.That(refusal, Does.Contain("<conflict xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/><text xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\">"));
        Assert.That(refusal, Does.EndWith("</stream:error></stream:stream>"));

        await first.SendAsync("<iq type=\"set\" id=\"c1\"><session xmlns=\"http://jabber.org/protocol/connectionmanager\" id=\"cm1-a\"><create/></session></iq>");
        Assert.That(await first.NextAsync(), Does.StartWith("<iq type=\"result\" id=\"c1\">"));
    }

    [Test]
    public async Task Another_resource_of_the_same_cm_is_not_a_conflict()
    {
        await using var server = OpenfireDoubleServer.Start(Quiet());
        await using RawCmLink first = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await using RawCmLink second = await RawCmLink.OpenAsync(server, "cm1/link-2");

        Assert.That(server.Links.Count(l => l.CmDomain == "cm1" && l.IsInPool), Is.EqualTo(2));
    }

    [TestCase("xmlns=\"jabber:client\"", TestName = "Wrong default namespace gets invalid-namespace")]
    [TestCase("xmlns=\"jabber:connectionmanager\" xmlns:stream=\"urn:wrong\"", TestName = "Wrong stream namespace gets invalid-namespace")]
    public async Task Header_namespace_checks(string declarations)
    {
        await using var server = OpenfireDoubleServer.Start(Quiet());
        await using RawCmLink link = await RawCmLink.ConnectAsync(server);

        string streamNs = declarations.Contains("xmlns:stream") ? "" : "xmlns:stream=\"http://etherx.jabber.org/streams\" ";
        await link.SendAsync($"<stream:stream {streamNs}{declarations} to=\"cm1/link-1\" version=\"1.0\">");

        Assert.That(await link.ReadUntilClosedAsync(), Does.Contain("<invalid-namespace xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>"));
    }

    [Test]
    public async Task A_to_that_is_not_a_jid_drops_the_connection_with_nothing_written()
    {
        await using var server = OpenfireDoubleServer.Start(Quiet());
        await using RawCmLink link = await RawCmLink.ConnectAsync(server);

        await link.SendHeaderAsync("cm 1/link-1");

        Assert.That(await link.ReadUntilClosedAsync(), Is.Empty);
        Assert.That(server.Links.Single().CloseReason, Is.EqualTo(LinkCloseReason.Dropped));
    }

    [Test]
    public async Task Anything_before_a_proper_header_is_ignored()
    {
        await using var server = OpenfireDoubleServer.Start(Quiet());
        await using RawCmLink link = await RawCmLink.ConnectAsync(server);

        await link.SendAsync("hello <handshake>x</handshake>");
        await link.SendHeaderAsync("cm1/link-1");

        Assert.That(await link.ReadHeaderAsync(), Does.Contain("from=\"cm1/link-1\""));
    }

    [Test]
    public async Task Configuration_iq_lists_every_option_in_the_corrected_order()
    {
        await using var server = OpenfireDoubleServer.Start(Quiet(new()
        {
            ClientTlsPolicy = TlsPolicy.Required,
            Mechanisms = ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", "EXTERNAL", "ANONYMOUS"],
            ClientCompression = true,
            IqAuth = true,
            Register = true,
        }));
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1", readConfiguration: false);

        string iq = await link.NextAsync();

        Assert.That(iq, Does.Match(
            "^<iq type=\"set\" id=\"[0-9]+-[0-9]+\"><configuration xmlns=\"http://jabber.org/protocol/connectionmanager\">"
            + "<starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"><required/></starttls>"
            + "<mechanisms xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"><mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1</mechanism>"
            + "<mechanism>SCRAM-SHA-1-PLUS</mechanism><mechanism>EXTERNAL</mechanism><mechanism>ANONYMOUS</mechanism></mechanisms>"
            + "<compression xmlns=\"http://jabber.org/features/compress\"><method>zlib</method></compression>"
            + "<auth xmlns=\"http://jabber.org/features/iq-auth\"/>"
            + "<register xmlns=\"http://jabber.org/features/iq-register\"/>"
            + "</configuration></iq>$"));
    }

    [Test]
    public async Task Configuration_iq_with_nothing_to_report_is_empty()
    {
        await using var server = OpenfireDoubleServer.Start(Quiet(new()
        {
            ClientTlsPolicy = TlsPolicy.Disabled,
            Mechanisms = [],
            ClientCompression = false,
            Register = false,
        }));
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1", readConfiguration: false);

        Assert.That(await link.NextAsync(), Does.Match("^<iq type=\"set\" id=\"[0-9]+-[0-9]+\"><configuration xmlns=\"http://jabber.org/protocol/connectionmanager\"/></iq>$"));
    }

    [Test]
    public async Task Before_the_handshake_iq_and_route_get_not_authorized_on_the_same_link()
    {
        await using var server = OpenfireDoubleServer.Start(Quiet());
        await using RawCmLink link = await RawCmLink.ConnectAsync(server);
        await link.SendHeaderAsync("cm1/link-1");
        await link.ReadHeaderAsync();
        await link.NextAsync();

        await link.SendAsync("<iq type=\"set\" id=\"c1\" from=\"cm1/link-1\" to=\"example.com\"><session xmlns=\"http://jabber.org/protocol/connectionmanager\" id=\"cm1-a\"><create/></session></iq>");
        Assert.That(await link.NextAsync(), Is.EqualTo(
            "<iq type=\"error\" id=\"c1\" from=\"example.com\" to=\"cm1/link-1\"><session xmlns=\"http://jabber.org/protocol/connectionmanager\" id=\"cm1-a\"><create/></session>"
            + "<error code=\"401\" type=\"auth\"><not-authorized xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></error></iq>"));

        await link.SendAsync("<route streamid=\"cm1-a\" id=\"r1\"><message to=\"bob@example.com\"/></route>");
        Assert.That(await link.NextAsync(), Is.EqualTo(
            "<route streamid=\"cm1-a\" id=\"r1\" type=\"error\"><error code=\"401\" type=\"auth\"><not-authorized xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></error></route>"));

        // The link stays open: the handshake still works.
        await link.SendAsync($"<handshake>{RawCmLink.Digest(link.StreamId!, "secret")}</handshake>");
        Assert.That(await link.NextAsync(), Is.EqualTo("<handshake></handshake>"));
    }

    [Test]
    public async Task A_link_joins_the_routing_pool_when_its_header_arrives()
    {
        await using var server = OpenfireDoubleServer.Start(Quiet());
        await using RawCmLink link = await RawCmLink.ConnectAsync(server);
        await link.SendHeaderAsync("cm1/link-1");
        await link.ReadHeaderAsync();
        await link.NextAsync();

        Assert.That(await server.DeliverStanzaAsync("cm1-ghost", "<message to=\"a@example.com\"/>"), Is.True);

        Assert.That(await link.NextAsync(), Is.EqualTo("<route streamid=\"cm1-ghost\" from=\"example.com\" to=\"cm1\"><message to=\"a@example.com\"/></route>"));
    }

    [Test]
    public async Task Starttls_on_the_link_restarts_the_stream_with_the_server_domain_and_the_same_id()
    {
        await using var server = OpenfireDoubleServer.Start(Quiet(new() { LinkTlsPolicy = TlsPolicy.Optional }));
        await using RawCmLink link = await RawCmLink.ConnectAsync(server);
        await link.SendHeaderAsync("cm1/link-1");
        await link.ReadHeaderAsync();
        string id = link.StreamId!;
        Assert.That(await link.NextAsync(), Is.EqualTo("<stream:features><starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"/></stream:features>"));

        await link.StartTlsAsync();
        await link.SendHeaderAsync("cm1/link-1");

        Assert.That(await link.ReadHeaderAsync(), Is.EqualTo(
            $"<stream:stream xmlns:stream=\"http://etherx.jabber.org/streams\" xmlns=\"jabber:connectionmanager\" from=\"example.com\" id=\"{id}\" xml:lang=\"en-US\" version=\"1.0\">"));
        Assert.That(await link.NextAsync(), Is.EqualTo("<stream:features/>"));
        await link.SendAsync($"<handshake>{RawCmLink.Digest(id, "secret")}</handshake>");
        Assert.That(await link.NextAsync(), Is.EqualTo("<handshake></handshake>"));
        Assert.That((await server.WaitForLinkAsync("cm1/link-1", l => l.IsAuthenticated)).IsEncrypted, Is.True);
    }

    [Test]
    public async Task Required_link_tls_is_advertised_and_a_handshake_in_clear_text_is_refused()
    {
        await using var server = OpenfireDoubleServer.Start(Quiet(new() { LinkTlsPolicy = TlsPolicy.Required }));
        await using RawCmLink link = await RawCmLink.ConnectAsync(server);
        await link.SendHeaderAsync("cm1/link-1");
        await link.ReadHeaderAsync();
        Assert.That(await link.NextAsync(), Is.EqualTo("<stream:features><starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"><required/></starttls></stream:features>"));

        await link.SendAsync($"<handshake>{RawCmLink.Digest(link.StreamId!, "secret")}</handshake>");

        Assert.That(await link.ReadUntilClosedAsync(), Does.Contain("<not-authorized xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>"));
    }

    [Test]
    public async Task Starttls_with_link_tls_disabled_closes_with_not_authorized()
    {
        await using var server = OpenfireDoubleServer.Start(Quiet(new() { LinkTlsPolicy = TlsPolicy.Disabled }));
        await using RawCmLink link = await RawCmLink.ConnectAsync(server);
        await link.SendHeaderAsync("cm1/link-1");
        await link.ReadHeaderAsync();
        Assert.That(await link.NextAsync(), Is.EqualTo("<stream:features/>"));

        await link.SendAsync("<starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"/>");

        Assert.That(await link.ReadUntilClosedAsync(), Does.Contain("<not-authorized xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/>"));
    }

    [Test]
    public async Task Direct_tls_encrypts_from_the_first_byte_and_still_advertises_starttls()
    {
        await using var server = OpenfireDoubleServer.Start(Quiet(new() { DirectTls = true, LinkTlsPolicy = TlsPolicy.Disabled }));
        await using RawCmLink link = await RawCmLink.ConnectAsync(server);
        Assert.That(link.IsEncrypted, Is.True);

        await link.SendHeaderAsync("cm1/link-1");
        await link.ReadHeaderAsync();
        Assert.That(await link.NextAsync(), Is.EqualTo("<stream:features><starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"/></stream:features>"));
        await link.SendAsync($"<handshake>{RawCmLink.Digest(link.StreamId!, "secret")}</handshake>");

        Assert.That(await link.NextAsync(), Is.EqualTo("<handshake></handshake>"));
        Assert.That((await server.WaitForLinkAsync("cm1/link-1", l => l.IsAuthenticated)).IsEncrypted, Is.True);
    }

    [Test]
    public async Task Compress_is_refused_with_setup_failed_and_the_link_stays_open()
    {
        await using var server = OpenfireDoubleServer.Start(Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");

        await link.SendAsync("<compress xmlns=\"http://jabber.org/protocol/compress\"><method>zlib</method></compress>");

        Assert.That(await link.NextAsync(), Is.EqualTo("<failure xmlns=\"http://jabber.org/protocol/compress\"><setup-failed/></failure>"));
        await link.SendAsync("<iq type=\"get\" id=\"g\"><query xmlns=\"urn:x\"/></iq>");
        Assert.That(await link.NextAsync(), Does.Contain("<bad-request"));
    }
}
