using System.Net;
using System.Net.WebSockets;
using ConnMgr.Edge.Transport;
using ConnMgr.Tests.EndToEnd;
using ConnMgr.Tests.Edge.Transport;
using NUnit.Framework;

namespace ConnMgr.Tests.Edge.Web;

/// <summary><c>Edge:MaxConnections</c> is one count over TCP clients, WebSockets and BOSH sessions.</summary>
[TestFixture]
public sealed class ConnectionCapTests
{
    private const string HttpBind = "http://jabber.org/protocol/httpbind";

    [Test]
    public void Slots_are_taken_up_to_the_limit_and_given_back()
    {
        var slots = new ConnectionSlots(2);
        Assert.That(slots.TryTake(), Is.True);
        Assert.That(slots.TryTake(), Is.True);
        Assert.That(slots.TryTake(), Is.False);
        Assert.That(slots.Taken, Is.EqualTo(2), "a refusal takes nothing");
        slots.Return();
        Assert.That(slots.TryTake(), Is.True);
        Assert.That(slots.Taken, Is.EqualTo(2));
    }

    [Test]
    public async Task A_tcp_client_and_a_bosh_session_fill_the_cap_for_every_transport_until_one_ends()
    {
        await using var web = await WebHarness.StartAsync(transport: t => t with { MaxConnections = 2 });
        using var http = new HttpClient();
        var bosh = new Uri(web.BaseUri, "/http-bind");

        await using var tcp = await web.Edge.ConnectAsync();
        await tcp.OpenStreamAsync();
        var (status, created) = await BoshTests.PostAsync(http, bosh, CreateBody(rid: 1000));
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(created, Does.Not.Contain("type='terminate'"), created);
        var sid = created.Split(" sid='")[1].Split('\'')[0];
        Assert.That(web.Edge.Transport.Slots.Taken, Is.EqualTo(2));

        // Full: a WebSocket gets HTTP's answer before any upgrade, a BOSH session the stream error, a TCP client too.
        using var refusedSocket = new ClientWebSocket();
        refusedSocket.Options.AddSubProtocol("xmpp");
        refusedSocket.Options.CollectHttpResponseDetails = true;
        Assert.ThrowsAsync<WebSocketException>(() => refusedSocket.ConnectAsync(web.WebSocketUri, CancellationToken.None).WaitAsync(XmppTestClient.Timeout));
        Assert.That(refusedSocket.HttpStatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));

        var (refusedStatus, refused) = await BoshTests.PostAsync(http, bosh, CreateBody(rid: 2000));
        Assert.That(refusedStatus, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(refused, Does.Contain("type='terminate'").And.Contain("condition='remote-stream-error'")
            .And.Contain("<resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>").And.Contain("Edge:MaxConnections"));

        await using (var refusedTcp = await web.Edge.ConnectAsync())
        {
            await refusedTcp.ExpectStreamErrorAsync("resource-constraint");
        }
        Assert.That(web.Edge.Transport.Slots.Taken, Is.EqualTo(2), "refusals hold no slot");
        Assert.That(web.Web.BoshSessionCount, Is.EqualTo(1));

        // The BOSH session ends: its slot comes back, and a WebSocket takes it.
        await BoshTests.PostAsync(http, bosh, $"<body rid='1001' sid='{sid}' type='terminate' xmlns='{HttpBind}'/>");
        Assert.That(await Kit.EventuallyAsync(() => web.Edge.Transport.Slots.Taken == 1), Is.True, "the BOSH session's slot is returned");
        await using var ws = await web.ConnectAsync();
        Assert.That(await ws.OpenStreamAsync(), Does.Contain("<stream:features"));
        Assert.That(web.Edge.Transport.Slots.Taken, Is.EqualTo(2));

        // And the WebSocket's comes back when it closes.
        await ws.DisposeAsync();
        Assert.That(await Kit.EventuallyAsync(() => web.Edge.Transport.Slots.Taken == 1), Is.True, "the WebSocket's slot is returned");
    }

    private static string CreateBody(long rid)
        => $"<body content='text/xml; charset=utf-8' hold='1' rid='{rid}' to='example.com' wait='10' xml:lang='en' xmpp:version='1.0' xmlns='{HttpBind}' xmlns:xmpp='urn:xmpp:xbosh'/>";
}
