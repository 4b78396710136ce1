using System.Net.Sockets;
using NUnit.Framework;

namespace ConnMgr.Tests.OpenfireDouble;

/// <summary>Spec 8.3–8.5: heartbeat, idle close, last-link loss (4.x and 5.x), shutdown, admin drop, disposal.</summary>
[TestFixture]
public sealed class LinkLifetimeTests
{
    [Test]
    public async Task Every_link_gets_a_whitespace_heartbeat()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet(new() { HeartbeatInterval = TimeSpan.FromMilliseconds(100) }));
        await using RawCmLink one = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await using RawCmLink two = await RawCmLink.ConnectAsync(server);
        await two.SendHeaderAsync("cm1/link-2");
        await two.ReadHeaderAsync();
        await two.NextAsync();

        Assert.That(await one.NextFrameAsync(), Is.EqualTo(new XmlFrame(FrameKind.Whitespace, " ")));
        Assert.That(await two.NextFrameAsync(), Is.EqualTo(new XmlFrame(FrameKind.Whitespace, " ")), "links in the pool before their handshake too");
        Assert.That(server.Counters.HeartbeatsSent, Is.GreaterThanOrEqualTo(2));
    }

    [Test]
    public async Task A_silent_link_is_closed_with_connection_timeout_after_two_idle_half_periods()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet(new() { IdleTimeout = TimeSpan.FromMilliseconds(400) }));
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");

        Assert.That(await link.ReadUntilClosedAsync(), Is.EqualTo(
            "<stream:error xmlns:stream=\"http://etherx.jabber.org/streams\"><connection-timeout xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/></stream:error></stream:stream>"));
    }

    [Test]
    public async Task A_link_that_keeps_sending_whitespace_is_not_idle()
    {
        // Half-period 400 ms against a 50 ms whitespace cadence: only two stalls of 400 ms could close it.
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet(new() { IdleTimeout = TimeSpan.FromMilliseconds(800) }));
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");

        for (int i = 0; i < 20; i++)
        {
            await Task.Delay(50);
            await link.SendAsync(" ");
        }

        Assert.That(server.Links.Single().IsOpen, Is.True);
    }

    [Test]
    public async Task Losing_the_last_link_closes_the_cms_sessions_in_4x_mode()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet(new() { LastLinkBehaviour = LastLinkBehaviour.CloseSessions }));
        RawCmLink one = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await ClientSessionTests.LoginAsync(one, "cm1-a", "alice", "phone");
        await using RawCmLink two = await RawCmLink.OpenAsync(server, "cm1/link-2");

        await one.DisposeAsync();
        await server.WaitForLinkAsync("cm1/link-1", l => !l.IsOpen);
        Assert.That(server.FindSession("cm1-a"), Is.Not.Null, "another link of the CM remains");

        await two.DisposeAsync();
        await server.WaitForAsync(s => s.FindSession("cm1-a") is null, description: "sessions closed with the last link");
        Assert.That(server.EndedSessions.Single().Reason, Is.EqualTo("last-link"));
    }

    [Test]
    public async Task Losing_the_last_link_leaves_ghost_sessions_in_5x_mode()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet(new() { LastLinkBehaviour = LastLinkBehaviour.KeepGhostSessions }));
        RawCmLink old = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await ClientSessionTests.LoginAsync(old, "cm1-a", "alice", "phone");

        await old.DisposeAsync();
        SessionInfo ghost = await server.WaitForSessionAsync("cm1-a", s => s.IsGhost);
        Assert.That(ghost.BoundJid, Is.EqualTo("alice@example.com/phone"));
        Assert.That(await server.DeliverStanzaAsync("cm1-a", "<message/>"), Is.False, "traffic for a ghost is dropped");

        // A CM that comes back under the same name receives the ghost's traffic (spec 0.1 point 2).
        await using RawCmLink restarted = await RawCmLink.OpenAsync(server, "cm1/link-9");
        Assert.That(await server.DeliverStanzaAsync("cm1-a", "<message/>"), Is.True);
        Assert.That(await restarted.NextAsync(), Is.EqualTo("<route streamid=\"cm1-a\" from=\"example.com\" to=\"cm1\"><message/></route>"));
    }

    [Test]
    public async Task Shutdown_sends_system_shutdown_on_every_link()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink one = await RawCmLink.OpenAsync(server, "cm1/link-1");
        await using RawCmLink two = await RawCmLink.OpenAsync(server, "cm2/link-1");
        await SessionIqTests.CreateAsync(one, "cm1-a");

        await server.ShutdownAsync();

        const string shutdown = "<stream:error xmlns:stream=\"http://etherx.jabber.org/streams\"><system-shutdown xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/></stream:error></stream:stream>";
        Assert.That(await one.ReadUntilClosedAsync(), Is.EqualTo(shutdown), "no close IQ for the session (spec 8.5)");
        Assert.That(await two.ReadUntilClosedAsync(), Is.EqualTo(shutdown));
        Assert.That(server.Sessions, Is.Empty);
    }

    [Test]
    public async Task DropLink_resets_the_connection()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");

        Assert.That(server.DropLink("cm1/link-1"), Is.True);

        Assert.That(await link.ReadUntilClosedAsync(), Is.Empty);
        Assert.That((await server.WaitForLinkAsync("cm1/link-1", l => !l.IsOpen)).CloseReason, Is.EqualTo(LinkCloseReason.Dropped));
        Assert.That(server.DropLink("cm1/link-1"), Is.False);
    }

    [Test]
    public async Task Received_elements_are_logged_per_link_in_order()
    {
        await using var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");

        await link.SendAsync("<iq type=\"result\" id=\"x1\"/><iq type=\"result\" id=\"x2\"/>");

        ReceivedElement second = await server.WaitForElementAsync(e => e.Attr("id") == "x2");
        IReadOnlyList<ReceivedElement> received = server.ReceivedOn("cm1/link-1");
        Assert.That(received.Select(e => e.Name), Is.EqualTo(new string?[] { null, "handshake", "iq", "iq" }));
        Assert.That(second.Xml, Is.EqualTo("<iq type=\"result\" id=\"x2\"/>"));
    }

    [Test]
    public async Task Disposal_closes_every_connection()
    {
        var server = OpenfireDoubleServer.Start(LinkEstablishmentTests.Quiet());
        int port = server.Port;
        await using RawCmLink link = await RawCmLink.OpenAsync(server, "cm1/link-1");

        await server.DisposeAsync();

        Assert.That(await link.ReadUntilClosedAsync(), Is.Empty);
        using var late = new TcpClient();
        Assert.That(async () => await late.ConnectAsync("127.0.0.1", port), Throws.InstanceOf<SocketException>());
    }
}
