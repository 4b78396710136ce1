using System.Net;
using System.Net.WebSockets;
using System.Text;
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

    private static Uri WebSocketUri(IPEndPoint http) => new($"ws://{http}/xmpp-websocket");
}
