using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using ConnMgr.Tests.EndToEnd;
using NUnit.Framework;

namespace ConnMgr.Tests.Edge.Web;

/// <summary>BOSH (XEP-0124/0206) at /http-bind, driven over raw HTTP, through the edge's one stream state machine.</summary>
public sealed partial class BoshTests
{
    private const string HttpBind = "http://jabber.org/protocol/httpbind";
    private const string Xbosh = "urn:xmpp:xbosh";

    [Test]
    public async Task A_bosh_client_logs_in_chats_both_ways_and_terminates()
    {
        await using var web = await WebHarness.StartAsync();
        using var http = new HttpClient();
        var bosh = new Uri(web.BaseUri, "/http-bind");
        long rid = 4_000_000_000;

        var (status, created) = await PostAsync(http, bosh,
            $"<body content='text/xml; charset=utf-8' hold='1' rid='{rid}' to='example.com' wait='10' xml:lang='en' xmpp:version='1.0' xmlns='{HttpBind}' xmlns:xmpp='{Xbosh}'/>");
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        var sid = Attribute(created, "sid");
        var authid = Attribute(created, "authid");
        Assert.That(created, Does.Contain("xmpp:restartlogic='true'").And.Contain("hold='1'").And.Contain("requests='2'").And.Contain("from='example.com'"));
        Assert.That(created, Does.Contain("<stream:features").And.Contain("<mechanism>PLAIN</mechanism>"), "loopback counts as encrypted");

        var plain = Convert.ToBase64String(Encoding.UTF8.GetBytes("\0alice\0secret"));
        var success = await SendAsync(http, bosh, sid, ++rid, $"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>");
        Assert.That(success, Does.Contain("<success"));

        var (_, restarted) = await PostAsync(http, bosh,
            $"<body rid='{++rid}' sid='{sid}' to='example.com' xml:lang='en' xmpp:restart='true' xmlns='{HttpBind}' xmlns:xmpp='{Xbosh}'/>");
        Assert.That(restarted, Does.Contain("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"));

        var bound = await SendAsync(http, bosh, sid, ++rid,
            "<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>bosh</resource></bind></iq>");
        Assert.That(bound, Does.Contain("<jid>alice@example.com/bosh</jid>"));
        Assert.That(web.Edge.Server.FindSession(authid)!.BoundJid, Is.EqualTo("alice@example.com/bosh"), "authid is the core session's stream ID");

        await using var bob = await web.Edge.LoginAsync("bob", "pc");
        await bob.SendAsync("<message to='alice@example.com/bosh' type='chat' id='b1'><body>to-bosh</body></message>");
        var polled = await SendAsync(http, bosh, sid, ++rid, "");
        Assert.That(polled, Does.Contain("<message xmlns='jabber:client'").And.Contain("<body>to-bosh</body>"));

        await SendAsync(http, bosh, sid, ++rid, $"<message xmlns='jabber:client' to='{bob.Jid}' type='chat'><body>from-bosh</body></message>", expectAnswer: false);
        Assert.That(await bob.NextMessageAsync("from-bosh"), Does.Contain("<body>from-bosh</body>"));

        var (_, terminated) = await PostAsync(http, bosh,
            $"<body rid='{++rid}' sid='{sid}' type='terminate' xmlns='{HttpBind}'><presence xmlns='jabber:client' type='unavailable'/></body>");
        Assert.That(terminated, Does.StartWith($"<body xmlns='{HttpBind}'").And.Contain("type='terminate'"));
        await web.Edge.Server.WaitForAsync(s => s.FindSession(authid) is null, description: "session closed on the core");

        var (gone, after) = await PostAsync(http, bosh, $"<body rid='{++rid}' sid='{sid}' xmlns='{HttpBind}'/>");
        Assert.That(gone, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(after, Does.Contain("condition='item-not-found'"));
        web.Edge.AssertLinksIntact();
    }

    [Test]
    public async Task A_repeated_rid_gets_the_same_response_and_one_out_of_the_window_ends_the_session()
    {
        await using var web = await WebHarness.StartAsync();
        using var http = new HttpClient();
        var bosh = new Uri(web.BaseUri, "/http-bind");
        var (sid, rid) = await CreateAsync(http, bosh);

        var auth = $"<body rid='{rid + 1}' sid='{sid}' xmlns='{HttpBind}'><auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{Convert.ToBase64String(Encoding.UTF8.GetBytes("\0alice\0secret"))}</auth></body>";
        var (_, first) = await PostAsync(http, bosh, auth);
        var (_, again) = await PostAsync(http, bosh, auth);
        Assert.That(first, Does.Contain("<success"));
        Assert.That(again, Is.EqualTo(first), "XEP-0124 14.3: the response is sent again");

        var (status, far) = await PostAsync(http, bosh, $"<body rid='{rid + 10}' sid='{sid}' xmlns='{HttpBind}'/>");
        Assert.That(status, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(far, Does.Contain("condition='item-not-found'"));
    }

    [Test]
    public async Task A_held_request_is_answered_empty_when_a_newer_one_comes_or_its_wait_ends()
    {
        await using var web = await WebHarness.StartAsync();
        using var http = new HttpClient();
        var bosh = new Uri(web.BaseUri, "/http-bind");
        var (sid, rid) = await CreateAsync(http, bosh, wait: 2);

        var held = PostAsync(http, bosh, $"<body rid='{rid + 1}' sid='{sid}' xmlns='{HttpBind}'/>");
        await Task.Delay(300);
        Assert.That(held.IsCompleted, Is.False, "nothing to say yet: the request is held");
        var newer = PostAsync(http, bosh, $"<body rid='{rid + 2}' sid='{sid}' xmlns='{HttpBind}'/>");
        Assert.That((await held.WaitAsync(XmppTestClient.Timeout)).Body, Is.EqualTo($"<body xmlns='{HttpBind}'/>"));
        Assert.That((await newer.WaitAsync(XmppTestClient.Timeout)).Body, Is.EqualTo($"<body xmlns='{HttpBind}'/>"), "answered empty at its wait");
    }

    [TestCase("not xml at all")]
    [TestCase("<body xmlns='jabber:client' rid='1'/>")]
    [TestCase("<body xmlns='http://jabber.org/protocol/httpbind'/>")]
    [TestCase("<body xmlns='http://jabber.org/protocol/httpbind' rid='one'/>")]
    public async Task A_body_that_is_not_a_bosh_body_gets_bad_request(string body)
    {
        await using var web = await WebHarness.StartAsync();
        using var http = new HttpClient();

        var (status, text) = await PostAsync(http, new Uri(web.BaseUri, "/http-bind"), body);
        Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(text, Is.EqualTo($"<body xmlns='{HttpBind}' type='terminate' condition='bad-request'/>"));
    }

    [Test]
    public async Task A_body_over_the_size_limit_is_refused_and_an_unknown_sid_is_not_found()
    {
        await using var web = await WebHarness.StartAsync(streams: s => s with { MaxStanzaBytes = 4096 }, web: w => w with { MaxStanzaBytes = 4096 });
        using var http = new HttpClient();
        var bosh = new Uri(web.BaseUri, "/http-bind");

        var (status, _) = await PostAsync(http, bosh, $"<body xmlns='{HttpBind}' rid='1'>{new string(' ', 64 * 1024)}</body>");
        Assert.That(status, Is.EqualTo(HttpStatusCode.RequestEntityTooLarge));

        (status, var text) = await PostAsync(http, bosh, $"<body xmlns='{HttpBind}' rid='1' sid='nosuchsession'/>");
        Assert.That(status, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(text, Does.Contain("condition='item-not-found'"));
    }

    [Test]
    public async Task A_stanza_the_stream_refuses_ends_the_session_with_the_stream_error()
    {
        await using var web = await WebHarness.StartAsync();
        using var http = new HttpClient();
        var bosh = new Uri(web.BaseUri, "/http-bind");
        var (sid, rid) = await CreateAsync(http, bosh);

        var (_, text) = await PostAsync(http, bosh, $"<body rid='{rid + 1}' sid='{sid}' xmlns='{HttpBind}'><message xmlns='jabber:client'><body>before login</body></message></body>");
        Assert.That(text, Does.Contain("type='terminate'").And.Contain("condition='remote-stream-error'").And.Contain("<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"));
        web.Edge.AssertLinksIntact();
    }

    private static async Task<(string Sid, long Rid)> CreateAsync(HttpClient http, Uri bosh, int wait = 10)
    {
        const long rid = 100;
        var (_, created) = await PostAsync(http, bosh,
            $"<body hold='1' rid='{rid}' to='example.com' wait='{wait}' xmpp:version='1.0' xmlns='{HttpBind}' xmlns:xmpp='{Xbosh}'/>");
        return (Attribute(created, "sid"), rid);
    }

    private static async Task<string> SendAsync(HttpClient http, Uri bosh, string sid, long rid, string payload, bool expectAnswer = true)
    {
        var (status, body) = await PostAsync(http, bosh, $"<body rid='{rid}' sid='{sid}' xmlns='{HttpBind}'>{payload}</body>");
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK), body);
        if (expectAnswer)
        {
            Assert.That(body, Does.Not.EndWith("/>").Or.Contain("><"), "a response with content: " + body);
        }
        return body;
    }

    internal static async Task<(HttpStatusCode Status, string Body)> PostAsync(HttpClient http, Uri bosh, string body)
    {
        using var content = new StringContent(body, Encoding.UTF8, "text/xml");
        using var response = await http.PostAsync(bosh, content).WaitAsync(XmppTestClient.Timeout);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private static string Attribute(string body, string name)
    {
        var match = Regex.Match(body, $" {name}='([^']*)'");
        Assert.That(match.Success, Is.True, $"no {name} in {body}");
        return match.Groups[1].Value;
    }
}
