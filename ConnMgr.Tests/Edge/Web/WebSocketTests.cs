using System.Net.WebSockets;
using System.Text;
using ConnMgr.Tests.EndToEnd;
using NUnit.Framework;

namespace ConnMgr.Tests.Edge.Web;

/// <summary>XMPP over WebSocket (RFC 7395) through the edge's one stream state machine, against the Openfire double.</summary>
public sealed class WebSocketTests
{
    private const string Framing = WsClient.Framing;

    [Test]
    public async Task A_web_client_logs_in_and_chats_with_a_tcp_client_both_ways()
    {
        await using var web = await WebHarness.StartAsync();
        await using var alice = await web.ConnectAsync();

        var features = await alice.OpenStreamAsync();
        Assert.That(features, Does.StartWith("<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"), "RFC 7395 3.3.3: the prefix is declared");
        Assert.That(features, Does.Not.Contain("starttls"), "no STARTTLS over WebSocket");
        var firstId = alice.StreamId;

        Assert.That(await alice.LoginAsync("alice", "browser", features), Is.EqualTo("alice@example.com/browser"));
        Assert.That(alice.StreamId, Is.EqualTo(firstId), "the core session's stream ID, across the restart");

        await using var bob = await web.Edge.LoginAsync("bob", "pc");
        await bob.SendAsync($"<message to='{alice.Jid}' type='chat' id='b1'><body>to-the-browser</body></message>");
        var received = await alice.NextMessageAsync("to-the-browser");
        Assert.That(received, Does.StartWith("<message xmlns='jabber:client'"), "a stanza standing alone declares its namespace");

        await alice.SendAsync($"<message xmlns='jabber:client' to='{bob.Jid}' type='chat' id='a1'><body>from-the-browser</body></message>");
        Assert.That(await bob.NextMessageAsync("from-the-browser"), Does.Contain("<body>from-the-browser</body>"));

        var session = web.Edge.Server.FindSession(firstId!);
        Assert.That(session!.BoundJid, Is.EqualTo("alice@example.com/browser"));
        web.Edge.AssertLinksIntact();
    }

    [Test]
    public async Task Close_is_answered_with_close_and_the_session_ends_upstream()
    {
        await using var web = await WebHarness.StartAsync();
        await using var alice = await web.ConnectAsync();
        await alice.LoginAsync("alice");
        var streamId = alice.StreamId!;

        await alice.SendAsync($"<close xmlns='{Framing}'/>");
        Assert.That(await alice.ReadToEndAsync(), Is.EqualTo(new[] { $"<close xmlns='{Framing}'/>" }));
        Assert.That(alice.Socket.CloseStatus, Is.EqualTo(WebSocketCloseStatus.NormalClosure));
        await web.Edge.Server.WaitForAsync(s => s.FindSession(streamId) is null, description: "session closed on the core");
        Assert.That(web.Edge.Server.EndedSessions.Single(e => e.StreamId == streamId).Reason, Is.EqualTo("cm-close"));
        await WaitForAsync(() => web.Web.SessionCount == 0);
    }

    [Test]
    public async Task A_client_that_drops_the_websocket_has_its_session_closed_upstream()
    {
        await using var web = await WebHarness.StartAsync();
        var alice = await web.ConnectAsync();
        await alice.LoginAsync("alice");
        var streamId = alice.StreamId!;

        await alice.DisposeAsync();
        await web.Edge.Server.WaitForAsync(s => s.FindSession(streamId) is null, description: "session closed on the core");
        await WaitForAsync(() => web.Web.SessionCount == 0);
        web.Edge.AssertLinksIntact();
    }

    [Test]
    public async Task A_binary_message_is_refused_with_a_stream_error()
    {
        await using var web = await WebHarness.StartAsync();
        await using var alice = await web.ConnectAsync();
        await alice.OpenStreamAsync();

        await alice.SendAsync("<presence/>"u8.ToArray(), WebSocketMessageType.Binary);
        await alice.ExpectStreamErrorAsync("unsupported-encoding");
    }

    [Test]
    public async Task A_stanza_before_open_gets_the_open_then_the_stream_error()
    {
        await using var web = await WebHarness.StartAsync();
        await using var alice = await web.ConnectAsync();

        await alice.SendAsync("<message xmlns='jabber:client'><body>hi</body></message>");
        var messages = await alice.ExpectStreamErrorAsync("invalid-namespace");
        Assert.That(messages[0], Does.StartWith($"<open xmlns='{Framing}'"), "RFC 6120 4.9.1.2: the stream is opened before the error");
    }

    [Test]
    public async Task An_open_in_the_wrong_namespace_is_refused()
    {
        await using var web = await WebHarness.StartAsync();
        await using var alice = await web.ConnectAsync();

        await alice.SendAsync("<open xmlns='jabber:client' to='example.com' version='1.0'/>");
        await alice.ExpectStreamErrorAsync("invalid-namespace");
    }

    [Test]
    public async Task An_open_for_another_domain_gets_host_unknown()
    {
        await using var web = await WebHarness.StartAsync();
        await using var alice = await web.ConnectAsync();

        await alice.SendAsync(alice.Open("elsewhere.example"));
        await alice.ExpectStreamErrorAsync("host-unknown");
    }

    [Test]
    public async Task A_malformed_stanza_gets_not_well_formed_and_the_link_survives()
    {
        await using var web = await WebHarness.StartAsync();
        await using var alice = await web.ConnectAsync();
        await alice.LoginAsync("alice");

        await alice.SendAsync("<message xmlns='jabber:client' to='bob@example.com'><body>a & b</body></message>");
        await alice.ExpectStreamErrorAsync("not-well-formed");
        web.Edge.AssertLinksIntact();
    }

    [Test]
    public async Task A_message_over_the_stanza_limit_gets_policy_violation()
    {
        await using var web = await WebHarness.StartAsync(streams: s => s with { MaxStanzaBytes = 4096 }, web: w => w with { MaxStanzaBytes = 4096 });
        await using var alice = await web.ConnectAsync();
        await alice.LoginAsync("alice");

        await alice.SendAsync($"<message xmlns='jabber:client' to='bob@example.com'><body>{new string('x', 8192)}</body></message>");
        await alice.ExpectStreamErrorAsync("policy-violation");
        web.Edge.AssertLinksIntact();
    }

    [Test]
    public async Task An_element_cut_into_fragments_arrives_whole()
    {
        await using var web = await WebHarness.StartAsync();
        await using var alice = await web.ConnectAsync();
        await alice.LoginAsync("alice");
        await using var bob = await web.Edge.LoginAsync("bob");

        var bytes = Encoding.UTF8.GetBytes($"<message xmlns='jabber:client' to='{bob.Jid}' type='chat'><body>fragmented \u00e9</body></message>");
        for (var i = 0; i < bytes.Length; i += 7)
        {
            var end = Math.Min(bytes.Length, i + 7);
            await alice.Socket.SendAsync(bytes.AsMemory(i, end - i), WebSocketMessageType.Text, end == bytes.Length, CancellationToken.None);
        }
        Assert.That(await bob.NextMessageAsync("fragmented"), Does.Contain("<body>fragmented \u00e9</body>"));
    }

    [Test]
    public async Task The_forwarded_address_of_a_local_proxy_is_the_clients_address()
    {
        await using var web = await WebHarness.StartAsync();
        await using var alice = await web.ConnectAsync(o => o.SetRequestHeader("X-Forwarded-For", "198.51.100.1, 203.0.113.7"));
        await alice.LoginAsync("alice");

        Assert.That(web.Edge.Server.FindSession(alice.StreamId!)!.HostAddress, Is.EqualTo("203.0.113.7"));
    }

    [Test]
    public async Task A_request_without_the_xmpp_subprotocol_is_refused()
    {
        await using var web = await WebHarness.StartAsync();
        using var socket = new ClientWebSocket();

        var failure = Assert.CatchAsync<WebSocketException>(() => socket.ConnectAsync(web.WebSocketUri, CancellationToken.None));
        Assert.That(failure!.Message, Does.Contain("400"));

        using var http = new HttpClient();
        var plain = await http.GetAsync(new Uri(web.BaseUri, "/xmpp-websocket"));
        Assert.That((int)plain.StatusCode, Is.EqualTo(426));
    }

    [Test]
    public async Task A_page_from_an_origin_not_allowed_is_refused()
    {
        await using var web = await WebHarness.StartAsync(web: w => w with { AllowedOrigins = ["https://chat.example.com"] });

        using var refused = new ClientWebSocket();
        refused.Options.AddSubProtocol("xmpp");
        refused.Options.SetRequestHeader("Origin", "https://evil.example");
        var failure = Assert.CatchAsync<WebSocketException>(() => refused.ConnectAsync(web.WebSocketUri, CancellationToken.None));
        Assert.That(failure!.Message, Does.Contain("403"));

        await using var allowed = await web.ConnectAsync(o => o.SetRequestHeader("Origin", "https://chat.example.com"));
        Assert.That(await allowed.OpenStreamAsync(), Does.Contain("<mechanisms"));
    }

    [Test]
    public async Task Shutdown_tells_web_clients_system_shutdown()
    {
        var web = await WebHarness.StartAsync();
        await using var alice = await web.ConnectAsync();
        await alice.LoginAsync("alice");

        var stopping = web.DisposeAsync().AsTask();
        await alice.ExpectStreamErrorAsync("system-shutdown");
        await stopping;
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + XmppTestClient.Timeout;
        while (!condition())
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "condition not met in time");
            await Task.Delay(20);
        }
    }
}
