using System.Net.Sockets;
using System.Text;
using ConnMgr.Tests.EndToEnd;
using NUnit.Framework;

namespace ConnMgr.Tests.Edge.Streams;

/// <summary>Timeouts and limits of the client stream layer, each ending in its stream error.</summary>
public sealed class StreamLimitTests
{
    [Test]
    public async Task A_slowloris_sending_its_header_byte_by_byte_is_cut_at_the_negotiation_deadline()
    {
        await using var edge = await EdgeHarness.StartAsync(streams: s => s with { NegotiationTimeout = TimeSpan.FromSeconds(2) });
        await using var client = await edge.ConnectAsync();

        var dribble = DribbleAsync(client, XmppTestClient.Header("example.com"));
        var frames = await client.ExpectStreamErrorAsync("connection-timeout");

        Assert.That(frames[0], Does.StartWith("<stream:stream"), "the edge opens its stream before the error (RFC 6120 4.9.1.2)");
        Assert.That(frames[1], Does.Contain("Edge:NegotiationTimeoutSeconds"));
        await dribble;
        edge.AssertLinksIntact();
    }

    [Test]
    public async Task A_client_that_authenticates_but_never_binds_is_cut_at_the_negotiation_deadline()
    {
        await using var edge = await EdgeHarness.StartAsync(streams: s => s with { NegotiationTimeout = TimeSpan.FromSeconds(3) });
        await using var client = await edge.ConnectAsync();
        await client.OpenStreamAsync();
        await client.StartTlsAsync();
        await client.OpenStreamAsync();
        await client.AuthenticateAsync("alice", "secret");
        var streamId = client.StreamId!;

        await client.ExpectStreamErrorAsync("connection-timeout");
        await edge.Server.WaitForAsync(s => s.FindSession(streamId) is null, description: "the session closed upstream");
    }

    [Test]
    public async Task An_idle_client_is_pinged_kept_when_it_answers_and_cut_when_it_does_not()
    {
        await using var edge = await EdgeHarness.StartAsync(streams: s => s with
        {
            IdleTimeout = TimeSpan.FromSeconds(2),
            IdlePingGrace = TimeSpan.FromSeconds(2),
        });
        await using var alice = await edge.LoginAsync("alice");

        Assert.That(await alice.ExpectAsync(), Is.EqualTo("<iq type='get' id='connmgr-idle-ping' from='example.com'><ping xmlns='urn:xmpp:ping'/></iq>"));
        await alice.SendAsync("<iq type='result' id='connmgr-idle-ping'/>");

        // Alive: pinged again after the next quiet period, not cut.
        Assert.That(await alice.ExpectAsync(), Does.Contain("id='connmgr-idle-ping'"));
        var frames = await alice.ExpectStreamErrorAsync("connection-timeout");
        Assert.That(string.Join("", frames), Does.Contain("Edge:IdleTimeoutSeconds"));
        Assert.That(edge.Server.ReceivedElements.Any(e => e.Xml.Contains("connmgr-idle-ping", StringComparison.Ordinal)), Is.False,
            "the answer to the edge's own ping stays on the edge");
    }

    [Test]
    public async Task Unauthenticated_connections_per_address_are_limited_and_the_slot_is_freed_by_authentication()
    {
        await using var edge = await EdgeHarness.StartAsync(streams: s => s with { MaxUnauthenticatedPerIp = 2 });
        await using var first = await edge.ConnectAsync();
        await first.OpenStreamAsync();
        await using var second = await edge.ConnectAsync();
        await second.OpenStreamAsync();

        await using (var third = await edge.ConnectAsync())
        {
            var frames = await third.ExpectStreamErrorAsync("policy-violation");
            Assert.That(string.Join("", frames), Does.Contain("Edge:MaxUnauthenticatedPerIp"));
        }

        await first.StartTlsAsync();
        await first.OpenStreamAsync();
        await first.AuthenticateAsync("alice", "secret");
        await using var fourth = await edge.ConnectAsync();
        Assert.That(await fourth.OpenStreamAsync(), Does.StartWith("<stream:features>"), "authentication released a slot");
    }

    [Test]
    public async Task A_connection_over_the_global_cap_gets_resource_constraint()
    {
        await using var edge = await EdgeHarness.StartAsync(transport: t => t with { MaxConnections = 1 });
        await using var first = await edge.ConnectAsync();
        await first.OpenStreamAsync();

        await using var second = await edge.ConnectAsync();
        var frames = await second.ExpectStreamErrorAsync("resource-constraint");
        Assert.That(frames[0], Does.StartWith("<?xml").Or.StartWith("<stream:stream"));
    }

    [Test]
    public async Task A_client_that_stops_reading_is_cut_at_its_output_cap_while_others_keep_flowing()
    {
        const int cap = 64 * 1024;
        await using var edge = await EdgeHarness.StartAsync(
            streams: s => s with { MaxStanzaBytes = 8 * 1024, MaxPendingOutputBytes = cap },
            transport: t => t with { MaxStanzaBytes = 8 * 1024, MaxPendingOutputBytes = cap });
        await using var bob = await edge.LoginAsync("bob", "desk");
        await using var carol = await edge.LoginAsync("bob", "laptop");
        // A small receive window, and alice reads nothing more after her login.
        await using var alice = await edge.LoginAsync("alice", "phone", receiveBufferSize: 4096);
        var aliceStream = alice.StreamId!;

        // 4 KiB messages until the edge gives up on alice: the kernel's buffers take some, then
        // the edge's queue fills to the cap.
        var body = new string('x', 4000);
        var sent = 0;
        while (edge.Server.FindSession(aliceStream) is not null && sent < 2000)
        {
            await bob.SendAsync($"<message to='{alice.Jid}' type='chat' id='flood{sent}'><body>{body}</body></message>");
            sent++;
            if (sent % 10 == 0)
            {
                await EdgeHarness.ExchangeAsync(bob, carol, $"still-flowing-{sent}");
            }
        }
        await edge.Server.WaitForAsync(s => s.FindSession(aliceStream) is null, description: "alice's session closed upstream");

        await EdgeHarness.ExchangeAsync(carol, bob, "after-the-cut");
        Assert.That(edge.Server.OfflineMessages.Any(m => m.StreamId == aliceStream && m.FromFailedIq), Is.True,
            "a message alice could not take went back to the core with <failed/> (spec 5.5)");
        edge.AssertLinksIntact();

        // What alice reads now ends with the reason, if she reads before the transport gives up on her.
        var frames = await alice.ReadToEndAsync();
        if (frames.Count > 0 && frames[^1] == "</stream:stream>")
        {
            Assert.That(frames[^2], Does.StartWith("<stream:error><policy-violation").And.Contain("Edge:MaxPendingOutputBytes"));
        }
    }

    private static async Task DribbleAsync(XmppTestClient client, string text)
    {
        try
        {
            foreach (var b in Encoding.UTF8.GetBytes(text))
            {
                await client.SendAsync([b]);
                await Task.Delay(300);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            // Cut by the edge mid-header: expected.
        }
    }
}
