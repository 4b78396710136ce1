using NUnit.Framework;

namespace ConnMgr.Tests.EndToEnd;

/// <summary>Logins and chat through the edge and the Openfire double, over loopback.</summary>
public sealed class LoginTests
{
    [Test]
    public async Task A_client_logs_in_over_starttls_and_messages_flow_both_ways()
    {
        await using var edge = await EdgeHarness.StartAsync();
        await using var alice = await edge.ConnectAsync();

        var features = await alice.OpenStreamAsync();
        Assert.That(features, Does.Contain("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"));
        Assert.That(features, Does.Not.Contain("PLAIN"), "PLAIN only on encrypted streams");
        Assert.That(features, Does.Contain("<mechanism>SCRAM-SHA-1</mechanism>"));
        Assert.That(features, Does.Not.Contain("EXTERNAL").And.Not.Contain("-PLUS"), "spec 7.2");
        var firstId = alice.StreamId;

        await alice.StartTlsAsync();
        features = await alice.OpenStreamAsync();
        Assert.That(features, Is.EqualTo(
            "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms>"
            + "<register xmlns='http://jabber.org/features/iq-register'/></stream:features>"));
        Assert.That(alice.StreamId, Is.EqualTo(firstId), "the core session's stream ID, across restarts");

        features = await alice.AuthenticateAsync("alice", "secret");
        Assert.That(features, Is.EqualTo(
            "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session></stream:features>"));
        Assert.That(await alice.BindAsync("phone"), Is.EqualTo("alice@example.com/phone"));

        await using var bob = await edge.LoginAsync("bob", "pc");
        await EdgeHarness.ExchangeAsync(alice, bob, "hello-bob");
        await EdgeHarness.ExchangeAsync(bob, alice, "hello-alice");

        var session = edge.Server.FindSession(firstId!);
        Assert.That(session!.BoundJid, Is.EqualTo("alice@example.com/phone"));
        Assert.That(session.HostAddress, Is.EqualTo("127.0.0.1"), "<host address> is the client's address (spec 5.2)");
        edge.AssertLinksIntact();
    }

    [Test]
    public async Task A_client_logs_in_over_direct_tls()
    {
        await using var edge = await EdgeHarness.StartAsync();
        await using var alice = await edge.ConnectAsync(directTls: true);

        var features = await alice.OpenStreamAsync();
        Assert.That(features, Does.Not.Contain("starttls"), "the stream is already encrypted");
        Assert.That(features, Does.Contain("<mechanism>PLAIN</mechanism>"));
        Assert.That(await alice.AuthenticateAsync("alice", "secret"), Does.Contain("bind"));
        Assert.That(await alice.BindAsync("tablet"), Is.EqualTo("alice@example.com/tablet"));

        await using var bob = await edge.LoginAsync("bob");
        await EdgeHarness.ExchangeAsync(bob, alice, "over-direct-tls");
        await EdgeHarness.ExchangeAsync(alice, bob, "and-back");
    }

    [Test]
    public async Task A_client_that_ends_its_stream_gets_the_end_and_its_session_is_closed_upstream()
    {
        await using var edge = await EdgeHarness.StartAsync();
        var alice = await edge.LoginAsync("alice");
        var streamId = alice.StreamId!;

        await alice.SendAsync("</stream:stream>");
        Assert.That(await alice.ReadToEndAsync(), Is.EqualTo(new[] { "</stream:stream>" }));
        await edge.Server.WaitForAsync(s => s.FindSession(streamId) is null, description: "session closed on the core");
        Assert.That(edge.Server.EndedSessions.Single(e => e.StreamId == streamId).Reason, Is.EqualTo("cm-close"));
        await alice.DisposeAsync();
        edge.AssertLinksIntact();
    }
}
