using System.Security.Cryptography;
using System.Text;
using System.Xml.Linq;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Sasl;
using NUnit.Framework;

namespace ConnMgr.Tests.Core;

/// <summary>
/// One client stream as the CM side of a <see cref="TestCmLink"/> sees it: stanzas go up in
/// routes, whatever the core routes back is read from the session's channel. Expectations skip
/// unrelated stanzas (presence broadcasts arrive in no fixed order) but keep them for later ones.
/// </summary>
internal sealed class TestClient
{
    public static readonly XNamespace Sasl = XmppNamespaces.Sasl;
    public static readonly XNamespace Bind = XmppNamespaces.Bind;
    public static readonly XNamespace Roster = XmppNamespaces.Roster;
    public static readonly XNamespace Stanzas = XmppNamespaces.Stanzas;
    public static readonly XNamespace StreamErrors = XmppNamespaces.Streams;

    private readonly List<XElement> _unmatched = [];
    private int _ids;

    public TestClient(TestCmLink link, string streamId)
    {
        Link = link;
        StreamId = streamId;
    }

    public TestCmLink Link { get; }

    public string StreamId { get; }

    /// <summary>The bound full JID.</summary>
    public string? Jid { get; private set; }

    /// <summary>A fresh session on <paramref name="link"/>, created (spec 5.2).</summary>
    public static async Task<TestClient> CreateAsync(TestCmLink link, string? streamId = null)
    {
        var client = new TestClient(link, streamId ?? $"{link.CmDomain}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}");
        var reply = await link.CreateAsync(client.StreamId);
        Assert.That(reply.Attribute("type")?.Value, Is.EqualTo("result"), $"create refused: {reply}");
        return client;
    }

    /// <summary>Create, SASL PLAIN, bind; and initial presence unless told not to.</summary>
    public static async Task<TestClient> LoginAsync(TestCmLink link, string user, string password, string? resource = "res", bool presence = true)
    {
        var client = await CreateAsync(link);
        await client.AuthenticatePlainAsync(user, password);
        await client.BindAsync(resource);
        if (presence)
        {
            await client.SendAsync("<presence/>");
            // Our own presence comes back (RFC 6121 4.2.2): the broadcast is done once it does.
            await client.ExpectAsync(e => e.Name.LocalName == "presence" && e.Attribute("from")?.Value == client.Jid && e.Attribute("type") is null,
                "own initial presence");
        }
        return client;
    }

    public string NextId() => $"{StreamId}-{++_ids}";

    public Task SendAsync(string stanza) => Link.RouteAsync(StreamId, stanza);

    /// <summary>The next element for this session, including ones earlier expectations skipped.</summary>
    public async Task<XElement> NextAsync()
    {
        if (_unmatched.Count > 0)
        {
            var first = _unmatched[0];
            _unmatched.RemoveAt(0);
            return first;
        }
        return await Link.Session(StreamId).ReadAsync().AsTask().WaitAsync(TestCmLink.Timeout);
    }

    /// <summary>Waits for an element matching <paramref name="predicate"/>, keeping the others for later.</summary>
    public async Task<XElement> ExpectAsync(Func<XElement, bool> predicate, string what)
    {
        for (var i = 0; i < _unmatched.Count; i++)
        {
            if (predicate(_unmatched[i]))
            {
                var found = _unmatched[i];
                _unmatched.RemoveAt(i);
                return found;
            }
        }
        try
        {
            while (true)
            {
                var element = await Link.Session(StreamId).ReadAsync().AsTask().WaitAsync(TestCmLink.Timeout);
                if (predicate(element))
                {
                    return element;
                }
                _unmatched.Add(element);
            }
        }
        catch (TimeoutException)
        {
            Assert.Fail($"{StreamId}: timed out waiting for {what}; got instead: {string.Join(" | ", _unmatched)}");
            throw;
        }
    }

    /// <summary>Sends an IQ (with a fresh id unless it has one) and returns the answer with that id.</summary>
    public async Task<XElement> IqAsync(string iqWithIdPlaceholder)
    {
        var id = NextId();
        await SendAsync(iqWithIdPlaceholder.Replace("{id}", id));
        return await ExpectAsync(e => e.Name.LocalName == "iq" && e.Attribute("id")?.Value == id
            && e.Attribute("type")?.Value is "result" or "error", $"answer to iq {id}");
    }

    /// <summary>
    /// Everything that arrives before the answer to a ping: a barrier proving that what the core
    /// would have sent by now has been sent (the session's work is processed in order).
    /// </summary>
    public async Task<List<XElement>> DrainAsync()
    {
        var id = NextId();
        await SendAsync($"<iq type='get' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>");
        var seen = new List<XElement>(_unmatched);
        _unmatched.Clear();
        while (true)
        {
            var element = await Link.Session(StreamId).ReadAsync().AsTask().WaitAsync(TestCmLink.Timeout);
            if (element.Name.LocalName == "iq" && element.Attribute("id")?.Value == id)
            {
                return seen;
            }
            seen.Add(element);
        }
    }

    public Task<XElement> ExpectSaslAsync() => ExpectAsync(e => e.Name.Namespace == Sasl, "a SASL answer");

    public async Task AuthenticatePlainAsync(string user, string password)
    {
        var result = await TryPlainAsync(user, password);
        Assert.That(result.Name, Is.EqualTo(Sasl + "success"), $"PLAIN login of {user} failed: {result}");
    }

    public async Task<XElement> TryPlainAsync(string user, string password)
    {
        await SendAsync($"<auth xmlns='{Sasl}' mechanism='PLAIN'>{Convert.ToBase64String(SaslPlain.Encode(null, user, password))}</auth>");
        return await ExpectSaslAsync();
    }

    /// <summary>A full SCRAM exchange (RFC 5802) with the initial response in &lt;auth/&gt;; checks the server signature.</summary>
    public async Task AuthenticateScramAsync(ScramHash hash, string user, string password, ScramSaltedPasswordCache? cache = null)
    {
        var scram = new ScramClient(hash, user, password, cache);
        await SendAsync($"<auth xmlns='{Sasl}' mechanism='{hash.MechanismName()}'>{Convert.ToBase64String(scram.ClientFirst())}</auth>");
        var challenge = await ExpectSaslAsync();
        Assert.That(challenge.Name, Is.EqualTo(Sasl + "challenge"), challenge.ToString());
        Assert.That(scram.ReceiveServerFirst(Convert.FromBase64String(challenge.Value), out var clientFinal), Is.EqualTo(SaslResult.Continue), scram.Error);
        await SendAsync($"<response xmlns='{Sasl}'>{Convert.ToBase64String(clientFinal!)}</response>");
        var success = await ExpectSaslAsync();
        Assert.That(success.Name, Is.EqualTo(Sasl + "success"), success.ToString());
        Assert.That(scram.VerifyServerFinal(Convert.FromBase64String(success.Value)), Is.True, "server signature");
    }

    public async Task<string> BindAsync(string? resource)
    {
        var request = resource is null ? "" : $"<resource>{resource}</resource>";
        var result = await IqAsync($"<iq type='set' id='{{id}}'><bind xmlns='{Bind}'>{request}</bind></iq>");
        Assert.That(result.Attribute("type")?.Value, Is.EqualTo("result"), $"bind failed: {result}");
        Jid = result.Element(Bind + "bind")!.Element(Bind + "jid")!.Value;
        return Jid;
    }

    public string Bare => Jid!.Split('/')[0];

    public async Task<XElement[]> GetRosterAsync()
    {
        var result = await IqAsync($"<iq type='get' id='{{id}}'><query xmlns='{Roster}'/></iq>");
        Assert.That(result.Attribute("type")?.Value, Is.EqualTo("result"), result.ToString());
        return result.Element(Roster + "query")!.Elements(Roster + "item").ToArray();
    }

    public Task<XElement> ExpectRosterPushAsync(string contact, string subscription)
        => ExpectAsync(e => e.Name.LocalName == "iq" && e.Attribute("type")?.Value == "set"
            && e.Element(Roster + "query")?.Element(Roster + "item") is { } item
            && item.Attribute("jid")?.Value == contact && item.Attribute("subscription")?.Value == subscription,
            $"roster push of {contact} with subscription {subscription}");

    public Task<XElement> ExpectPresenceAsync(string from, string? type = null)
        => ExpectAsync(e => e.Name.LocalName == "presence" && e.Attribute("from")?.Value == from && e.Attribute("type")?.Value == type,
            $"presence from {from} of type {type ?? "available"}");

    public Task<XElement> ExpectMessageAsync(string body)
        => ExpectAsync(e => e.Name.LocalName == "message" && e.Elements().Any(c => c.Name.LocalName == "body" && c.Value == body),
            $"message '{body}'");

    public Task<XElement> ExpectStreamErrorAsync()
        => ExpectAsync(e => e.Name == TestCmLink.Streams + "error", "a stream error");

    /// <summary>The server's close IQ for this session (spec 5.4).</summary>
    public Task<XElement> ExpectCloseIqAsync()
        => ExpectAsync(e => e.Name.LocalName == "iq" && e.Element(TestCmLink.Cm + "session")?.Element(TestCmLink.Cm + "close") is not null,
            "the close IQ");

    public static string Base64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));
}
