using System.Net;
using System.Net.WebSockets;
using System.Text;
using ConnMgr.Tests.Edge.Web;
using ConnMgr.Tests.EndToEnd;
using NUnit.Framework;

namespace ConnMgr.Tests.Interop;

/// <summary>
/// <c>Edge:MaxConnections</c> as the daemon wires it: the TCP listener and the HTTP listener's
/// WebSocket and BOSH endpoints draw on one count.
/// </summary>
[TestFixture]
[CancelAfter(60_000)]
public sealed class ConnectionCapDaemonTests
{
    [Test]
    public async Task Two_tcp_clients_fill_a_cap_of_two_for_websocket_and_bosh_until_one_leaves()
    {
        await using var daemon = await DaemonProcess.StartAsync("--Edge:MaxConnections=2");
        var http = daemon.Listener(DaemonProcess.HttpPortKey);
        var first = await XmppTestClient.ConnectAsync(daemon.ClientEndPoint, domain: "localhost");
        await using var second = await XmppTestClient.ConnectAsync(daemon.ClientEndPoint, domain: "localhost");
        try
        {
            await first.OpenStreamAsync();
            await second.OpenStreamAsync();

            using var refused = new ClientWebSocket();
            refused.Options.AddSubProtocol("xmpp");
            refused.Options.CollectHttpResponseDetails = true;
            Assert.ThrowsAsync<WebSocketException>(() => refused.ConnectAsync(WebSocketUri(http), CancellationToken.None).WaitAsync(XmppTestClient.Timeout));
            Assert.That(refused.HttpStatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));

            using var client = new HttpClient();
            using var content = new StringContent(
                "<body content='text/xml; charset=utf-8' hold='1' rid='100' to='localhost' wait='10' xmpp:version='1.0' xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'/>",
                Encoding.UTF8, "text/xml");
            using var response = await client.PostAsync(new Uri($"http://{http}/http-bind"), content).WaitAsync(XmppTestClient.Timeout);
            var body = await response.Content.ReadAsStringAsync();
            Assert.That(body, Does.Contain("condition='remote-stream-error'").And.Contain("<resource-constraint"), body);
        }
        finally
        {
            await first.DisposeAsync();
        }

        // The first client's slot comes back once its close reaches the edge; then a WebSocket is admitted.
        var deadline = DateTime.UtcNow + XmppTestClient.Timeout;
        while (true)
        {
            using var socket = new ClientWebSocket();
            socket.Options.AddSubProtocol("xmpp");
            try
            {
                await socket.ConnectAsync(WebSocketUri(http), CancellationToken.None).WaitAsync(XmppTestClient.Timeout);
                Assert.That(socket.State, Is.EqualTo(WebSocketState.Open));
                return;
            }
            catch (WebSocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }

    [Test]
    public async Task A_bosh_session_at_a_cap_of_one_gets_its_second_connection()
    {
        // XEP-0124: a session may have Requests (2) requests open at once, each on its own HTTP/1.1 connection.
        // Kestrel's own connection ceiling must leave room for that when every admitted client is a BOSH session.
        await using var daemon = await DaemonProcess.StartAsync("--Edge:MaxConnections=1");
        var bosh = new Uri($"http://{daemon.Listener(DaemonProcess.HttpPortKey)}/http-bind");
        using var client = new HttpClient();
        var created = await PostAsync(client, bosh,
            "<body content='text/xml; charset=utf-8' hold='1' rid='100' to='localhost' wait='10' xmpp:version='1.0' xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'/>");
        Assert.That(created, Does.Contain(" sid='").And.Not.Contain("type='terminate'"), created);
        var sid = created.Split(" sid='")[1].Split('\'')[0];

        // The first empty request is held on the connection the session was created on; the second needs another.
        var held = PostAsync(client, bosh, $"<body rid='101' sid='{sid}' xmlns='http://jabber.org/protocol/httpbind'/>");
        await Task.Delay(300);
        Assert.That(held.IsCompleted, Is.False, "the first empty request is held");
        var second = await PostAsync(client, bosh, $"<body rid='102' sid='{sid}' xmlns='http://jabber.org/protocol/httpbind'/>");
        Assert.That(second, Does.StartWith("<body").And.Not.Contain("type='terminate'"), second);
        Assert.That(await held, Does.StartWith("<body").And.Not.Contain("type='terminate'"), "the held request is answered when the next arrives");
    }

    private static async Task<string> PostAsync(HttpClient client, Uri uri, string body)
    {
        var (status, response) = await BoshTests.PostAsync(client, uri, body);
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        return response;
    }

    private static Uri WebSocketUri(IPEndPoint http) => new($"ws://{http}/xmpp-websocket");
}
