using NUnit.Framework;

namespace ConnMgr.Tests.OpenfireDouble;

/// <summary>Spec 6.1 route handling, the fatal inputs of spec 2 / 0.1 point 6, and link pinning (8.2).</summary>
[TestFixture]
public sealed class RouteTests
{
    private const string InternalServerError = "<stream:error xmlns:stream=\"http://etherx.jabber.org/streams\"><internal-server-error xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/></stream:error></stream:stream>";

    [Test]
    public async Task Unknown_stream_id_gets_an_item_not_found_route_error_with_id_echoed_and_addresses_swapped()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");

        await link.SendAsync("<route to=\"example.com\" from=\"cm1/link-1\" streamid=\"cm1-nobody\" id=\"r7\"><message to=\"bob@example.com\"><body>hi</body></message></route>");

        Assert.That(await link.NextAsync(), Is.EqualTo(
            "<route streamid=\"cm1-nobody\" id=\"r7\" from=\"example.com\" to=\"cm1/link-1\" type=\"error\"><error code=\"404\" type=\"cancel\"><item-not-found xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></error></route>"));
    }

    [TestCase("<abort xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"/>", TestName = "SASL abort is an unknown stanza")]
    [TestCase("<enable xmlns=\"urn:xmpp:sm:3\"/>", TestName = "Stream management is an unknown stanza")]
    [TestCase("<error code=\"404\" type=\"cancel\"><item-not-found xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></error>", TestName = "A type=error route from the CM is an unknown stanza")]
    public async Task Children_other_than_auth_response_iq_message_presence_get_bad_request_unknown_stanza(string child)
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await SessionIqTests.CreateAsync(link, "cm1-a");

        await link.SendAsync($"<route streamid=\"cm1-a\" type=\"error\">{child}</route>");

        Assert.That(await link.NextAsync(), Is.EqualTo(
            "<route streamid=\"cm1-a\" type=\"error\"><error code=\"400\" type=\"modify\"><bad-request xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/><unknown-stanza xmlns=\"http://jabber.org/protocol/connectionmanager#errors\"/></error></route>"));
    }

    [TestCase("<route><message to=\"bob@example.com\"/></route>", TestName = "Fatal: route without streamid")]
    [TestCase("<route streamid=\"\"><message to=\"bob@example.com\"/></route>", TestName = "Fatal: route with an empty streamid")]
    [TestCase("<route streamid=\"cm1-a\"/>", TestName = "Fatal: empty route for a known stream")]
    [TestCase("<route streamid=\"cm1-a\">just text</route>", TestName = "Fatal: text-only route for a known stream")]
    [TestCase("<message to=\"bob@example.com\"><body>hi</body></message>", TestName = "Fatal: bare message on the link")]
    [TestCase("<presence/>", TestName = "Fatal: bare presence on the link")]
    [TestCase("<iq type=\"get\" id=\"g\"/>", TestName = "Fatal: iq get without a child")]
    [TestCase("<iq type=\"set\" id=\"s\"/>", TestName = "Fatal: iq set without a child")]
    [TestCase("<iq type=\"bogus\" id=\"b\"><x/></iq>", TestName = "Fatal: iq with an unknown type")]
    [TestCase("<iq type=\"set\" id=\"e\"><session xmlns=\"http://jabber.org/protocol/connectionmanager\" id=\"\"><close/></session></iq>", TestName = "Fatal: session with an empty id")]
    [TestCase("<r xmlns=\"urn:xmpp:sm:3\"/>", TestName = "Fatal: unknown top-level element")]
    [TestCase("<route streamid=\"cm1-a\"><message><body>\u0001</body></message></route>", TestName = "Fatal: control character")]
    [TestCase("<route streamid=\"cm1-a\"><message><body>&#0;</body></message></route>", TestName = "Fatal: reference to an illegal character")]
    [TestCase("<route streamid=\"cm1-a\"><x:message/></route>", TestName = "Fatal: undeclared prefix")]
    [TestCase("<route streamid=\"cm1-a\"><message></route>", TestName = "Fatal: not well-formed")]
    public async Task Fatal_inputs_close_the_link_with_internal_server_error(string input)
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await SessionIqTests.CreateAsync(link, "cm1-a");

        await link.SendAsync(input);

        Assert.That(await link.ReadUntilClosedAsync(), Is.EqualTo(InternalServerError));
        LinkInfo closed = await server.WaitForLinkAsync("cm1/link-1", l => !l.IsOpen);
        Assert.That(closed.CloseCondition, Is.EqualTo("internal-server-error"));
    }

    [Test]
    public async Task An_element_over_the_size_limit_closes_the_link_with_internal_server_error()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet(new() { MaxElementSize = 4096 }));
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await SessionIqTests.CreateAsync(link, "cm1-a");

        await link.SendAsync($"<route streamid=\"cm1-a\"><message to=\"bob@example.com\"><body>{new string('x', 4000)}</body></message></route>");
        Assert.That(server.Links.Single().IsOpen, Is.True, "just under the limit passes");
        await link.SendAsync($"<route streamid=\"cm1-a\"><message to=\"bob@example.com\"><body>{new string('x', 5000)}</body></message></route>");

        Assert.That(await link.ReadUntilClosedAsync(), Does.EndWith(InternalServerError));
    }

    [Test]
    public async Task Stream_end_from_the_cm_is_answered_and_the_link_closed()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");

        await link.SendAsync("</stream:stream>");

        Assert.That(await link.ReadUntilClosedAsync(), Is.EqualTo("</stream:stream>"));
        Assert.That((await server.WaitForLinkAsync("cm1/link-1", l => !l.IsOpen)).CloseReason, Is.EqualTo(LinkCloseReason.CmClosedStream));
    }

    [Test]
    public async Task Java_string_hash_matches_known_values()
    {
        await Task.CompletedTask;
        Assert.That(DoubleWire.JavaHashCode(""), Is.Zero);
        Assert.That(DoubleWire.JavaHashCode("hello"), Is.EqualTo(99162322));
        Assert.That(DoubleWire.JavaHashCode("polygenelubricants"), Is.EqualTo(int.MinValue));
    }

    [Test]
    public async Task Deliveries_are_pinned_to_abs_java_hash_modulo_the_link_count()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        string[] jids = ["cm1/link-1", "cm1/link-2", "cm1/link-3"];
        await using RawCmLink one = await RawCmLink.OpenAsync(server, jids[0]);
        await using RawCmLink two = await RawCmLink.OpenAsync(server, jids[1]);
        await using RawCmLink three = await RawCmLink.OpenAsync(server, jids[2]);

        foreach (string id in new[] { "cm1-0", "cm1-1", "cm1-2", "cm1-3", "cm1-4", "cm1-5" })
        {
            await server.DeliverStanzaAsync(id, "<message/>");
            int expected = Math.Abs(DoubleWire.JavaHashCode(id)) % 3;
            Assert.That(server.SentFrames.Last().Link, Is.EqualTo(jids[expected]), id);
        }

        // Java's abs(Integer.MIN_VALUE) is negative: with three links the packet is lost.
        Assert.That(await server.DeliverStanzaAsync("polygenelubricants", "<message/>"), Is.False);
    }

    [Test]
    public async Task A_stream_id_with_the_minimum_hash_still_works_with_two_links()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink one = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await using RawCmLink two = await RawCmLink.OpenAsync(server, "cm1/link-2");

        Assert.That(await server.DeliverStanzaAsync("polygenelubricants", "<message/>"), Is.True);

        Assert.That(server.SentFrames.Last().Link, Is.EqualTo("cm1/link-1"));
    }

    [Test]
    public async Task Admin_route_error_goes_to_the_cm()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await SessionIqTests.CreateAsync(link, "cm1-a");

        await server.SendRouteErrorAsync("cm1-a", "item-not-found");

        Assert.That(await link.NextAsync(), Is.EqualTo(
            "<route streamid=\"cm1-a\" from=\"example.com\" to=\"cm1\" type=\"error\"><error code=\"404\" type=\"cancel\"><item-not-found xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></error></route>"));
    }
}
