using System.Text.Json;
using NUnit.Framework;

namespace ConnMgr.Tests.Edge.Web;

/// <summary>XEP-0156 discovery of the web endpoints.</summary>
public sealed class HostMetaTests
{
    [Test]
    public async Task Host_meta_lists_websocket_and_bosh_as_the_client_reached_the_server()
    {
        await using var web = await WebHarness.StartAsync();
        using var http = new HttpClient();

        var xrd = await http.GetAsync(new Uri(web.BaseUri, "/.well-known/host-meta"));
        var text = await xrd.Content.ReadAsStringAsync();
        Assert.That(xrd.Content.Headers.ContentType!.MediaType, Is.EqualTo("application/xrd+xml"));
        Assert.That(xrd.Headers.GetValues("Access-Control-Allow-Origin"), Is.EqualTo(new[] { "*" }));
        Assert.That(text, Does.Contain($"<Link rel='urn:xmpp:alt-connections:websocket' href='ws://{web.BaseUri.Authority}/xmpp-websocket'/>"));
        Assert.That(text, Does.Contain($"<Link rel='urn:xmpp:alt-connections:xbosh' href='http://{web.BaseUri.Authority}/http-bind'/>"));

        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(web.BaseUri, "/.well-known/host-meta.json"));
        request.Headers.Add("X-Forwarded-Proto", "https");
        var json = await http.SendAsync(request);
        using var document = JsonDocument.Parse(await json.Content.ReadAsStringAsync());
        var links = document.RootElement.GetProperty("links").EnumerateArray()
            .ToDictionary(l => l.GetProperty("rel").GetString()!, l => l.GetProperty("href").GetString());
        Assert.That(links["urn:xmpp:alt-connections:websocket"], Is.EqualTo($"wss://{web.BaseUri.Authority}/xmpp-websocket"), "behind a local TLS proxy");
        Assert.That(links["urn:xmpp:alt-connections:xbosh"], Is.EqualTo($"https://{web.BaseUri.Authority}/http-bind"));
    }
}
