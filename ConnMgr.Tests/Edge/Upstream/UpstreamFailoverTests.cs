using ConnMgr.Edge.Upstream;
using ConnMgr.Protocol.Xml;
using ConnMgr.Tests.OpenfireDouble;
using NUnit.Framework;
using static ConnMgr.Tests.Edge.Upstream.UpstreamTestSupport;

namespace ConnMgr.Tests.Edge.Upstream;

/// <summary>Pinning, ordering and link failure (spec 8), against the Openfire double.</summary>
[TestFixture]
public sealed class UpstreamFailoverTests
{
    [Test]
    public async Task Ten_thousand_stanzas_of_one_client_arrive_in_order_on_one_link_of_a_four_link_pool()
    {
        await using var server = OpenfireDoubleServer.Start();
        await using var pool = await StartPoolAsync(Settings(server, links: 4));
        await WaitForLinksAsync(pool, 4);
        var (first, _) = await CreateAsync(pool, server);
        var (second, _) = await CreateAsync(pool, server);
        const int count = 10_000;

        // Two clients at once, as client loops run: each one's order must hold on its own.
        await Task.WhenAll(SendAsync(first, count), SendAsync(second, count));

        foreach (var session in new[] { first, second })
        {
            await server.WaitForAsync(s => RoutesOf(s, session.StreamId).Count == count, TimeSpan.FromSeconds(30), $"{count} routes of {session.StreamId}");
            var routes = RoutesOf(server, session.StreamId);
            Assert.That(routes.Select(r => r.Id), Is.EqualTo(Enumerable.Range(0, count)), "arrival order = sending order");
            Assert.That(routes.Select(r => r.Link).Distinct().Count(), Is.EqualTo(1), "one link per client (spec 8.1)");
        }
        Assert.That(server.Links.All(l => l.IsOpen || !l.IsAuthenticated), Is.True);
        Assert.That(server.Faults, Is.Empty);
    }

    [Test]
    public async Task Sessions_of_a_killed_link_move_to_live_links_without_reordering()
    {
        await using var server = OpenfireDoubleServer.Start();
        await using var pool = await StartPoolAsync(Settings(server, links: 3));
        await WaitForLinksAsync(pool, 3);
        var sessions = new List<(UpstreamSession Session, RecordingOwner Owner)>();
        for (var i = 0; i < 6; i++)
        {
            sessions.Add(await CreateAsync(pool, server));
        }
        var victim = sessions[0].Session;
        var killedLink = LinkOfCreate(server, victim.StreamId);
        const int count = 3000;

        var traffic = sessions.Select(s => SendAsync(s.Session, count, yieldEvery: 25)).ToArray();
        await server.WaitForAsync(s => RoutesOf(s, victim.StreamId).Count >= 300, TimeSpan.FromSeconds(20), "traffic under way");
        Assert.That(server.DropLink(killedLink), Is.True);
        await Task.WhenAll(traffic);

        foreach (var (session, owner) in sessions)
        {
            await server.WaitForAsync(s => RoutesOf(s, session.StreamId).Any(r => r.Id == count - 1), TimeSpan.FromSeconds(20), $"last route of {session.StreamId}");
            var ids = RoutesOf(server, session.StreamId).Select(r => r.Id).ToList();
            Assert.That(ids, Is.Ordered.Ascending, $"{session.StreamId}: nothing reordered");
            Assert.That(ids, Is.Unique, $"{session.StreamId}: nothing duplicated");
            Assert.That(owner.Ended, Is.False, "a lost link is not a lost session while others remain (spec 8.4)");
        }
        var victimRoutes = RoutesOf(server, victim.StreamId);
        Assert.That(victimRoutes[0].Link, Is.EqualTo(killedLink));
        Assert.That(victimRoutes[^1].Link, Is.Not.EqualTo(killedLink), "moved to a live link");

        // The server's replies find the moved session too (spec 8.2).
        await victim.RouteAsync("<iq type=\"get\" id=\"after\" to=\"example.com\"><ping xmlns=\"urn:xmpp:ping\"/></iq>");
        await sessions[0].Owner.WaitForAsync(o => o.Deliveries.Any(d => d.Xml!.Contains("id=\"after\"")), "the ping result");
        await WaitForLinksAsync(pool, 3);
    }

    [Test]
    public async Task Losing_the_last_link_tells_every_owner_and_closes_the_ghosts_when_a_link_returns()
    {
        // Openfire 5.x keeps the sessions of a CM without links as ghosts (spec 0.1 point 2).
        await using var server = OpenfireDoubleServer.Start(new OpenfireDoubleOptions { LastLinkBehaviour = LastLinkBehaviour.KeepGhostSessions });
        await using var pool = await StartPoolAsync(Settings(server, links: 2) with { ReconnectInitial = TimeSpan.FromSeconds(2) });
        await WaitForLinksAsync(pool, 2);
        var sessions = new List<(UpstreamSession Session, RecordingOwner Owner)>();
        for (var i = 0; i < 3; i++)
        {
            sessions.Add(await CreateAsync(pool, server));
        }

        server.DropLink("cm1/link-1");
        server.DropLink("cm1/link-2");

        foreach (var (_, owner) in sessions)
        {
            await owner.WaitForEventAsync("lost");
        }
        Assert.That(pool.SessionCount, Is.Zero);
        Assert.That(server.Sessions.All(s => s.IsGhost), Is.True);

        await server.WaitForAsync(s => s.Sessions.Count == 0, TimeSpan.FromSeconds(15), "the ghosts closed by the returning link");
        Assert.That(server.EndedSessions.Where(e => e.Reason == "cm-close").Select(e => e.StreamId),
            Is.EquivalentTo(sessions.Select(s => s.Session.StreamId)));
    }

    [Test]
    public async Task A_server_shutdown_ends_every_session_and_the_links_reconnect_later()
    {
        await using var server = OpenfireDoubleServer.Start();
        var logger = new ListLogger<UpstreamPool>();
        await using var pool = await StartPoolAsync(Settings(server, links: 2), logger);
        await WaitForLinksAsync(pool, 2);
        var owners = new List<RecordingOwner>();
        for (var i = 0; i < 3; i++)
        {
            owners.Add((await CreateAsync(pool, server)).Owner);
        }

        await server.ShutdownAsync();

        foreach (var owner in owners)
        {
            await owner.WaitForEventAsync("stream-error");
            Assert.That(owner.Events.Last().StreamError, Is.EqualTo(StreamErrorCondition.SystemShutdown));
        }
        await WaitForLinksAsync(pool, 0);
        Assert.That(pool.SessionCount, Is.Zero);
        Assert.That(logger.Count(3014), Is.GreaterThanOrEqualTo(1));
    }

    [Test]
    public async Task Stopping_closes_every_session_before_the_links()
    {
        await using var server = OpenfireDoubleServer.Start();
        var pool = await StartPoolAsync(Settings(server, links: 2));
        await WaitForLinksAsync(pool, 2);
        var sessions = new List<(UpstreamSession Session, RecordingOwner Owner)>();
        for (var i = 0; i < 4; i++)
        {
            sessions.Add(await CreateAsync(pool, server));
        }

        await pool.StopAsync(CancellationToken.None);
        await pool.DisposeAsync();

        Assert.That(server.Sessions, Is.Empty, "closed one by one, not left as ghosts (spec 0.1 point 2)");
        Assert.That(server.EndedSessions.Select(e => e.Reason).Distinct(), Is.EqualTo(new[] { "cm-close" }));
        // Each link is read in order (spec 2): on every link, its closes come before its stream end.
        var received = server.ReceivedElements;
        var streamEnds = received.Where(e => e.Xml == "</stream:stream>").ToList();
        Assert.That(streamEnds, Has.Count.EqualTo(2));
        foreach (var end in streamEnds)
        {
            Assert.That(received.Where(e => e.Link == end.Link && e.Name == "iq" && e.Xml.Contains("<close/>")).All(e => e.Sequence < end.Sequence), Is.True);
        }
        await server.WaitForAsync(s => s.Links.All(l => !l.IsOpen), description: "links closed");
        Assert.That(server.Links.Where(l => l.IsAuthenticated).Select(l => l.CloseReason).Distinct(),
            Is.EqualTo(new[] { OpenfireDouble.LinkCloseReason.CmClosedStream }));
        foreach (var (_, owner) in sessions)
        {
            Assert.That(owner.Events.Last().StreamError, Is.EqualTo(StreamErrorCondition.SystemShutdown));
        }
    }

    private static async Task SendAsync(UpstreamSession session, int count, int yieldEvery = 0)
    {
        for (var i = 0; i < count; i++)
        {
            await session.RouteAsync($"<message id=\"{i}\"/>");
            if (yieldEvery > 0 && i % yieldEvery == 0)
            {
                await Task.Delay(1);
            }
        }
    }

    private static List<(int Id, string Link)> RoutesOf(OpenfireDoubleServer server, string streamId)
        => [.. server.ReceivedElements
            .Where(e => e.Name == "route" && e.Attr("streamid") == streamId && e.Element!.Elements().FirstOrDefault()?.Name.LocalName == "message")
            .Select(e => (int.Parse(e.Element!.Elements().First().Attribute("id")!.Value), e.Link))];
}
