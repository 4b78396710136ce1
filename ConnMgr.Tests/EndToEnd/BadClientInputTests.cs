using System.Text;
using NUnit.Framework;

namespace ConnMgr.Tests.EndToEnd;

/// <summary>
/// A corpus of bad client input, each case with its exact answer (stream error, stanza error or
/// local reply). After every case two other clients still exchange messages, no link was closed,
/// and the core never saw anything it rejects (spec 2: one client must not hurt the shared link).
/// </summary>
[NonParallelizable]
public sealed class BadClientInputTests
{
    /// <summary>Small enough that the oversize case stays cheap.</summary>
    private const int MaxStanzaBytes = 4096;

    private EdgeHarness _edge = null!;
    private XmppTestClient _bob = null!;
    private XmppTestClient _carol = null!;
    private int _resource;

    public enum Stage
    {
        /// <summary>TCP connected, nothing sent.</summary>
        Connected,

        /// <summary>Stream opened in clear, features read.</summary>
        Opened,

        /// <summary>After STARTTLS and the restart.</summary>
        Secure,

        /// <summary>After SASL success and the restart, before binding.</summary>
        Authenticated,

        /// <summary>Resource bound.</summary>
        Bound,
    }

    public enum Outcome
    {
        /// <summary>The stream ends with this stream error condition.</summary>
        StreamError,

        /// <summary>This exact reply, then the stream goes on.</summary>
        Reply,

        /// <summary>No reply at all, and the stream goes on.</summary>
        Silent,

        /// <summary>These exact frames (joined by " | "), then the connection closes.</summary>
        Frames,
    }

    public sealed record Case(string Name, Stage Stage, string Input, Outcome Outcome, string Expected, byte[]? Bytes = null)
    {
        public override string ToString() => Name;
    }

    private const string Bob = "bob@example.com";

    public static IEnumerable<Case> Cases()
    {
        // Stream header (RFC 6120 4.7, 4.9.3).
        yield return new("wrong 'to' on the header", Stage.Connected, XmppTestClient.Header("other.example"), Outcome.StreamError, "host-unknown");
        yield return new("no 'to' on the header", Stage.Connected,
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>", Outcome.StreamError, "host-unknown");
        yield return new("no version (pre-1.0 client)", Stage.Connected,
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com'>", Outcome.StreamError, "unsupported-version");
        yield return new("version 0.9", Stage.Connected,
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='0.9'>", Outcome.StreamError, "unsupported-version");
        yield return new("server-to-server content namespace", Stage.Connected,
            "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>", Outcome.StreamError, "invalid-namespace");
        yield return new("wrong stream namespace", Stage.Connected,
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://example.com/streams' to='example.com' version='1.0'>", Outcome.StreamError, "invalid-namespace");
        yield return new("connection-manager namespace on the header", Stage.Connected,
            "<stream:stream xmlns='jabber:connectionmanager' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>", Outcome.StreamError, "invalid-namespace");

        // Before authentication (RFC 6120 4.9.3.12, spec 6.1.1).
        yield return new("message before auth", Stage.Opened, $"<message to='{Bob}' type='chat'><body>hi</body></message>", Outcome.StreamError, "not-authorized");
        yield return new("presence before auth", Stage.Opened, "<presence/>", Outcome.StreamError, "not-authorized");
        yield return new("roster query before auth", Stage.Secure, "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>", Outcome.StreamError, "not-authorized");
        yield return new("PLAIN on a stream in clear", Stage.Opened,
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>",
            Outcome.Reply, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><encryption-required/></failure>");
        yield return new("EXTERNAL, which the core cannot do through a CM", Stage.Secure,
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>",
            Outcome.Reply, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><invalid-mechanism/></failure>");
        yield return new("SASL abort", Stage.Secure, "<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
            Outcome.Reply, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><aborted/></failure>");
        yield return new("bytes pipelined after <starttls/>", Stage.Opened,
            "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><message to='bob@example.com'><body>injected</body></message>", Outcome.StreamError, "policy-violation");
        yield return new("STARTTLS on a stream already encrypted", Stage.Secure, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
            Outcome.Frames, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/> | </stream:stream>");
        yield return new("SASL2 authenticate", Stage.Secure,
            "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>AGFsaWNlAHNlY3JldA==</initial-response></authenticate>",
            Outcome.StreamError, "unsupported-stanza-type");

        // After authentication, before binding (RFC 6120 7.1).
        yield return new("message before bind", Stage.Authenticated, $"<message to='{Bob}' type='chat'><body>early</body></message>", Outcome.StreamError, "not-authorized");
        yield return new("roster query before bind", Stage.Authenticated, "<iq type='get' id='r2'><query xmlns='jabber:iq:roster'/></iq>",
            Outcome.Reply, "<iq id='r2' type='error'><error type='auth'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");

        // Well-formedness and restricted XML (RFC 6120 11), checked before anything is relayed.
        yield return new("malformed XML", Stage.Bound, $"<message to='{Bob}'><body>hi</message>", Outcome.StreamError, "not-well-formed");
        yield return new("undeclared prefix", Stage.Bound, $"<message to='{Bob}'><foo:bar/></message>", Outcome.StreamError, "bad-namespace-prefix");
        yield return new("oversize stanza", Stage.Bound, $"<message to='{Bob}'><body>{new string('x', MaxStanzaBytes)}</body></message>", Outcome.StreamError, "policy-violation");
        yield return new("nesting bomb", Stage.Bound, $"<message to='{Bob}'>{string.Concat(Enumerable.Repeat("<a>", 100))}", Outcome.StreamError, "policy-violation");
        yield return new("comment", Stage.Bound, "<!-- hello -->", Outcome.StreamError, "restricted-xml");
        yield return new("DOCTYPE", Stage.Bound, "<!DOCTYPE message [<!ENTITY x 'y'>]>", Outcome.StreamError, "restricted-xml");
        yield return new("undefined entity", Stage.Bound, $"<message to='{Bob}'><body>&lol;</body></message>", Outcome.StreamError, "restricted-xml");
        yield return new("processing instruction", Stage.Bound, $"<message to='{Bob}'><?evil instruction?></message>", Outcome.StreamError, "restricted-xml");
        yield return new("control character", Stage.Bound, $"<message to='{Bob}'><body>a\u0001b</body></message>", Outcome.StreamError, "not-well-formed");
        yield return new("reference to NUL", Stage.Bound, $"<message to='{Bob}'><body>&#0;</body></message>", Outcome.StreamError, "not-well-formed");
        yield return new("malformed UTF-8", Stage.Bound, "", Outcome.StreamError, "not-well-formed",
            Bytes: [.. Encoding.UTF8.GetBytes($"<message to='{Bob}'><body>"), 0xC3, 0x28, .. Encoding.UTF8.GetBytes("</body></message>")]);
        yield return new("text at the top level", Stage.Bound, "hello", Outcome.StreamError, "not-well-formed");
        yield return new("</route> injection", Stage.Bound, "</route>", Outcome.StreamError, "not-well-formed");

        // Elements the core must never see (spec 2, 6.1.1).
        yield return new("<route> as a top-level element", Stage.Bound,
            "<route xmlns='jabber:connectionmanager' streamid='edge1-x'><message to='bob@example.com'/></route>", Outcome.StreamError, "unsupported-stanza-type");
        yield return new("<route> in the client namespace", Stage.Bound, "<route streamid='x'/>", Outcome.StreamError, "unsupported-stanza-type");
        yield return new("stanza in the server namespace", Stage.Bound, $"<message xmlns='jabber:server' to='{Bob}'><body>x</body></message>", Outcome.StreamError, "unsupported-stanza-type");
        yield return new("unknown element", Stage.Bound, "<foo/>", Outcome.StreamError, "unsupported-stanza-type");
        yield return new("SASL auth after binding", Stage.Bound, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>=</auth>",
            Outcome.StreamError, "unsupported-stanza-type");
        yield return new("stream management enable", Stage.Bound, "<enable xmlns='urn:xmpp:sm:3'/>",
            Outcome.Reply, "<failed xmlns='urn:xmpp:sm:3'><feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");
        yield return new("client state indication", Stage.Bound, "<inactive xmlns='urn:xmpp:csi:0'/>", Outcome.Silent, "");
        yield return new("compression", Stage.Bound, "<compress xmlns='http://jabber.org/protocol/compress'><method>zlib</method></compress>",
            Outcome.Reply, "<failure xmlns='http://jabber.org/protocol/compress'><setup-failed/></failure>");

        // Stanzas the edge answers itself (RFC 6120 8; Openfire would drop the link for some, spec 2, 0.1 point 6).
        yield return new("malformed 'to' on a message", Stage.Bound, "<message to='a@b@c' id='m1' type='chat'><body>x</body></message>",
            Outcome.Reply, "<message id='m1' type='error'><error type='modify'><jid-malformed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
        yield return new("malformed 'to' on an IQ", Stage.Bound, "<iq to='@example.com' id='q1' type='get'><query xmlns='jabber:iq:version'/></iq>",
            Outcome.Reply, "<iq id='q1' type='error'><error type='modify'><jid-malformed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
        yield return new("malformed 'to' on presence", Stage.Bound, "<presence to='bob@example.com/' type='subscribe'/>",
            Outcome.Reply, "<presence type='error'><error type='modify'><jid-malformed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>");
        yield return new("malformed 'from'", Stage.Bound, "<message from='a b@example.com' to='bob@example.com' id='m2'><body>x</body></message>",
            Outcome.Reply, "<message id='m2' type='error'><error type='modify'><jid-malformed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
        yield return new("malformed 'to' on an error (dropped)", Stage.Bound, "<message to='a@b@c' type='error' id='m3'/>", Outcome.Silent, "");
        yield return new("IQ without id", Stage.Bound, "<iq type='get'><query xmlns='jabber:iq:roster'/></iq>",
            Outcome.Reply, "<iq type='error'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
        yield return new("IQ get without payload", Stage.Bound, "<iq type='get' id='q2'/>",
            Outcome.Reply, "<iq id='q2' type='error'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
        yield return new("IQ set with two payloads", Stage.Bound, "<iq type='set' id='q3'><query xmlns='jabber:iq:roster'/><query xmlns='jabber:iq:roster'/></iq>",
            Outcome.Reply, "<iq id='q3' type='error'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
        yield return new("IQ of unknown type", Stage.Bound, "<iq type='query' id='q4'><query xmlns='jabber:iq:roster'/></iq>",
            Outcome.Reply, "<iq id='q4' type='error'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
        yield return new("IQ result without id (dropped)", Stage.Bound, "<iq type='result'/>", Outcome.Silent, "");
        yield return new("message of unknown type", Stage.Bound, "<message to='bob@example.com' type='urgent' id='m4'><body>x</body></message>",
            Outcome.Reply, "<message id='m4' type='error'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
        yield return new("presence of unknown type", Stage.Bound, "<presence type='invisible' id='p1'/>",
            Outcome.Reply, "<presence id='p1' type='error'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>");

        // The client ends its stream with an error of its own (RFC 6120 4.9.1.1).
        yield return new("client stream error", Stage.Bound,
            "<stream:error><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>", Outcome.Frames, "</stream:stream>");
    }

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _edge = await EdgeHarness.StartAsync(streams: s => s with { MaxStanzaBytes = MaxStanzaBytes });
        _bob = await _edge.LoginAsync("bob", "desk");
        _carol = await _edge.LoginAsync("bob", "laptop");
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        await _bob.DisposeAsync();
        await _carol.DisposeAsync();
        await _edge.DisposeAsync();
    }

    [TestCaseSource(nameof(Cases))]
    public async Task Bad_input_gets_its_exact_answer_and_hurts_nobody_else(Case @case)
    {
        var routeErrorsBefore = _edge.Server.Counters.RouteErrorsSent;
        var faultsBefore = _edge.Server.Faults.Count;
        await using var client = await ReachAsync(@case.Stage);

        await client.SendAsync(@case.Bytes ?? Encoding.UTF8.GetBytes(@case.Input));
        switch (@case.Outcome)
        {
            case Outcome.StreamError:
                await client.ExpectStreamErrorAsync(@case.Expected);
                break;
            case Outcome.Frames:
                Assert.That(string.Join(" | ", await client.ReadToEndAsync()), Is.EqualTo(@case.Expected));
                break;
            case Outcome.Reply:
                Assert.That(await client.ExpectAsync(), Is.EqualTo(@case.Expected));
                await AssertStillWorksAsync(client, @case.Stage);
                break;
            case Outcome.Silent:
                await AssertStillWorksAsync(client, @case.Stage);
                break;
        }

        // Everyone else is unaffected: the links are up, nothing the core rejects reached it.
        await EdgeHarness.ExchangeAsync(_bob, _carol, $"after-{_resource}");
        _edge.AssertLinksIntact();
        Assert.That(_edge.Server.Counters.RouteErrorsSent, Is.EqualTo(routeErrorsBefore), "the core rejected a route");
        Assert.That(_edge.Server.Faults.Count, Is.EqualTo(faultsBefore), string.Join("; ", _edge.Server.Faults));
    }

    /// <summary>The stream goes on: the next thing the client hears answers its next request.</summary>
    private static async Task AssertStillWorksAsync(XmppTestClient client, Stage stage)
    {
        switch (stage)
        {
            case Stage.Bound:
                await client.SendAsync("<iq type='get' id='alive' to='example.com'><ping xmlns='urn:xmpp:ping'/></iq>");
                Assert.That(await client.ExpectAsync("<iq"), Does.Contain("id=\"alive\"").Or.Contain("id='alive'"));
                break;
            case Stage.Authenticated:
                Assert.That(await client.BindAsync("later"), Does.EndWith("/later"));
                break;
            case Stage.Opened:
                await client.StartTlsAsync();
                break;
            default:
                Assert.That(await client.AuthenticateAsync("alice", "secret"), Does.Contain("bind"));
                break;
        }
    }

    private async Task<XmppTestClient> ReachAsync(Stage stage)
    {
        var client = await _edge.ConnectAsync();
        if (stage == Stage.Connected)
        {
            return client;
        }
        await client.OpenStreamAsync();
        if (stage == Stage.Opened)
        {
            return client;
        }
        await client.StartTlsAsync();
        await client.OpenStreamAsync();
        if (stage == Stage.Secure)
        {
            return client;
        }
        await client.AuthenticateAsync("alice", "secret");
        if (stage == Stage.Authenticated)
        {
            return client;
        }
        await client.BindAsync($"r{++_resource}");
        return client;
    }
}
