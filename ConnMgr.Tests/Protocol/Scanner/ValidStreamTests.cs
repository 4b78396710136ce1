using System.Buffers;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Xml;
using NUnit.Framework;
using static ConnMgr.Tests.Protocol.Scanner.ScanHarness;

namespace ConnMgr.Tests.Protocol.Scanner;

/// <summary>Streams real clients send, and XML that RFC 6120 allows even if clients rarely send it.</summary>
[TestFixture]
public sealed class ValidStreamTests
{
    private const string HeaderDescription =
        " [prefix=stream default=jabber:client attrs=to=example.com,version=1.0 ns==jabber:client,stream=http://etherx.jabber.org/streams decl=True]";

    [Test]
    public void ClientSessionWithStartTlsAndSaslRestarts()
    {
        const string header2 = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' xml:lang='en'>";
        const string startTls = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
        const string auth = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj1qdWxpZXQscj1vTXNUQUF3QUFBQU1BQUFBTlAwVEFBQUFBQUJQVTBBQQ==</auth>";
        const string bind = "<iq type='set' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>balcony</resource></bind></iq>";
        const string roster = "<iq type=\"get\" id=\"roster_1\"><query xmlns=\"jabber:iq:roster\" ver=\"\"/></iq>";
        const string presence = "<presence><show>chat</show><status>Wherefore art thou? \u2014 \u0420\u043E\u043C\u0435\u043E \U0001F339</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://gajim.org' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>";
        const string message = "<message to='romeo@example.net' type='chat' id='m1' xml:lang='en'><body>a &lt; b &amp;&amp; c &gt; d, &quot;quoted&quot; &apos;x&apos; &#169; &#x1F600; caf\u00E9 \u65E5\u672C\u8A9E</body><html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><p style='font-weight:bold'>hi<br/>there</p></body></html><active xmlns='http://jabber.org/protocol/chatstates'/></message>";
        const string cdata = "<message to='romeo@example.net'><body><![CDATA[if (a < b && c > d) { x = y[z[0]]; }]]></body></message>";
        var input = Utf8(
            Header + startTls
            + header2 + auth
            + header2 + bind + "\n" + roster + " \t\r\n" + presence + message + "  " + cdata + "\n</stream:stream>");

        var outcome = ScanAllWays(input, restartAfter: f => f.Kind == XmlFrameKind.Element
            && (f.Bytes.ToArray().AsSpan().StartsWith("<starttls"u8) || f.Bytes.ToArray().AsSpan().StartsWith("<auth"u8)));

        var header2Description = "StreamHeader:" + header2
            + " [prefix=stream default=jabber:client attrs=to=example.com,version=1.0,xml:lang=en ns==jabber:client,stream=http://etherx.jabber.org/streams decl=False]";
        Assert.That(outcome.Frames, Is.EqualTo(new[]
        {
            "StreamHeader:" + Header + HeaderDescription,
            Element(startTls),
            header2Description,
            Element(auth),
            header2Description,
            Element(bind), Whitespace("\n"), Element(roster), Whitespace(" \t\r\n"), Element(presence), Element(message),
            Whitespace("  "), Element(cdata), Whitespace("\n"),
            StreamEnd("</stream:stream>"),
        }));
        Assert.That(outcome.End, Is.EqualTo("NeedMoreData(0)"));
    }

    [Test]
    public void HeaderIsParsed()
    {
        var input = Utf8("<?xml version=\"1.0\" encoding=\"utf-8\" standalone='yes' ?>\n"
            + "<stream:stream\n\tfrom=\"juliet&#64;example.com\" to='example.com'\r\n  version='1.0' xml:lang='en' id='a&#9;b&#xA;c\td'"
            + " xmlns:stream='http://etherx.jabber.org/streams' xmlns=\"jabber:client\" xmlns:db='jabber:server:dialback' >");
        var scanner = new XmppStreamScanner(XmlScannerOptions.Client);

        Assert.That(scanner.Scan(new(input), out _, out _, out var frame), Is.EqualTo(ScanStatus.Frame));

        var header = frame.Header!;
        Assert.That(frame.Kind, Is.EqualTo(XmlFrameKind.StreamHeader));
        Assert.That(frame.Bytes.Length, Is.EqualTo(input.Length));
        Assert.That(scanner.Header, Is.SameAs(header));
        Assert.That(header.Prefix, Is.EqualTo("stream"));
        Assert.That(header.DefaultNamespace, Is.EqualTo("jabber:client"));
        Assert.That(header.From, Is.EqualTo("juliet@example.com"));
        Assert.That(header.To, Is.EqualTo("example.com"));
        Assert.That(header.Version, Is.EqualTo("1.0"));
        Assert.That(header.Lang, Is.EqualTo("en"));
        Assert.That(header.Id, Is.EqualTo("a\tb\nc d"), "references kept, literal whitespace normalized (XML 1.0 3.3.3)");
        Assert.That(header.HadXmlDeclaration, Is.True);
        Assert.That(header.Attributes.Select(a => a.Key), Is.EqualTo(new[] { "from", "to", "version", "xml:lang", "id" }));
        Assert.That(header.NamespaceDeclarations, Is.EqualTo(new KeyValuePair<string, string>[]
        {
            new("stream", XmppNamespaces.Stream), new("", XmppNamespaces.Client), new("db", "jabber:server:dialback"),
        }));
    }

    [Test]
    public void PrefixesDeclaredOnTheHeaderAreInScopeForStanzas()
    {
        var header = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'>";
        const string error = "<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>";
        const string dialback = "<db:result to='a' from='b' db:x='1'>key</db:result>";
        var outcome = ScanAllWays(Utf8(header + error + dialback));
        Assert.That(outcome.Frames.Skip(1), Is.EqualTo(new[] { Element(error), Element(dialback) }));
        Assert.That(outcome.End, Is.EqualTo("NeedMoreData(0)"));
    }

    internal static IEnumerable<TestCaseData> ValidStanzas()
    {
        TestCaseData Case(string name, string stanza) => new TestCaseData(stanza).SetName("Valid_" + name);

        yield return Case("PrefixFromAncestor", "<message xmlns:x='urn:x'><x:a x:b='1'><x:c/></x:a><d x:e='2'/></message>");
        yield return Case("SameLocalNameDifferentNamespaces", "<message xmlns:a='urn:a' xmlns:b='urn:b' a:foo='1' b:foo='2' foo='3'/>");
        yield return Case("PrefixRedeclaredInNestedScope", "<a xmlns:p='urn:1'><p:b xmlns:p='urn:2' p:x='1'/><p:c p:x='2'/></a>");
        yield return Case("PrefixDeclaredAfterUseInSameTag", "<p:a p:x='1' xmlns:p='urn:p'/>");
        yield return Case("XmlPrefixIsPredefined", "<message xml:lang='de'><body xml:lang='en' xml:space='preserve'>x</body></message>");
        yield return Case("XmlPrefixDeclaredCorrectly", "<message xmlns:xml='http://www.w3.org/XML/1998/namespace' xml:lang='en'/>");
        yield return Case("DefaultNamespaceUndeclared", "<message><x xmlns='urn:x'><y xmlns=''/></x></message>");
        yield return Case("GreaterThanInTextAndAttributes", "<message id='a>b'><body>1 > 0 ]> ]] ] ]]] x</body></message>");
        yield return Case("AllPredefinedEntitiesAndReferences", "<message id='&lt;&gt;&amp;&quot;&apos;&#65;'><body>&lt;&gt;&amp;&quot;&apos;&#65;&#x41;&#x1F600;&#x10FFFF;&#9;&#xA;&#13;&#xD7FF;&#xE000;&#xFFFD;&#x10000;&#0000065;</body></message>");
        yield return Case("QuotesInsideOtherQuotes", "<message a=\"it's\" b='say \"hi\"'/>");
        yield return Case("EmptyAttributeValue", "<message id='' type=\"\"/>");
        yield return Case("WhitespaceAroundEquals", "<message id = 'x'\n\ttype\r\n=\r\n\"chat\"  ></message >");
        yield return Case("CdataWithMarkupInside", "<message><body><![CDATA[<b>&amp; ]] ]> ]]]></body></message>");
        yield return Case("EmptyCdata", "<message><body><![CDATA[]]></body></message>");
        yield return Case("CdataWithNonAscii", "<message><body><![CDATA[\u00E9\u65E5\U0001F600]]]]><![CDATA[>]]></body></message>");
        yield return Case("NonAsciiText", "<message><body>\u041F\u0440\u0438\u0432\u0435\u0442, \u043C\u0438\u0440! \u4F60\u597D\u4E16\u754C \U0001F44B\U0001F3FD e\u0301 \u00A0</body></message>");
        yield return Case("NonAsciiAttributeValues", "<message id='\u00FCber-\U0001F680' type=\"\u65E5\"/>");
        yield return Case("NonAsciiNames", "<donn\u00E9es xmlns='urn:x' cl\u00E9='valeur'><\u65E5\u672C\u8A9E/><x\u00B7y\u0301/><\U00010000a/></donn\u00E9es>");
        yield return Case("NonAsciiPrefix", "<message xmlns:\u00E9='urn:e'><\u00E9:x \u00E9:y='1'/></message>");
        yield return Case("LegalOddCharacters", "<message><body>\u007F\u0085\u009F\uFDD0\uFFFD\U0001FFFE\U0010FFFF</body></message>");
        yield return Case("DeepButWithinLimit", string.Concat(Enumerable.Repeat("<a>", 48)) + string.Concat(Enumerable.Repeat("</a>", 48)));
        yield return Case("ManyAttributesWithinLimit", "<m " + string.Join(" ", Enumerable.Range(0, 64).Select(i => $"a{i}='{i}'")) + "/>");
        yield return Case("NamesWithDotsDashesDigits", "<a.b-c_d1 e.f-g_h2='1'/>");
        // Plain name='value' attributes take a fast path; each irregular one here leaves it and comes back.
        yield return Case("PlainAndIrregularAttributesMixed", "<message xmlns:p='urn:p' a='1' p:b='2' c = '3' d=\"&amp;\" e='x&#9;y' f='t\tab' g='\u00E9' h='4' i\n=\n'5'/>");
        yield return Case("AttributeValuesWithLineBreaks", "<m a='line1\nline2' b=\"x\r\ny\" c='z'/>");
    }

    [TestCaseSource(nameof(ValidStanzas))]
    public void StanzaIsOneElementFrame(string stanza)
    {
        var outcome = ScanAllWays(Utf8(Header + stanza + " " + stanza));
        Assert.That(outcome.Frames.Skip(1), Is.EqualTo(new[] { Element(stanza), Whitespace(" "), Element(stanza) }), outcome.ToString());
        Assert.That(outcome.End, Is.EqualTo("NeedMoreData(0)"));
    }

    [Test]
    public void ByteOrderMarkAndDeclarationBeforeHeader()
    {
        var input = Bytes(new byte[] { 0xEF, 0xBB, 0xBF }, "<?xml version='1.0' encoding='UTF-8'?>\n\n" + Header[21..] + "<presence/>");
        var outcome = ScanAllWays(input);
        Assert.That(outcome.Frames, Has.Count.EqualTo(2));
        Assert.That(outcome.Frames[0], Does.StartWith("StreamHeader:\u00EF\u00BB\u00BF<?xml").And.EndWith("decl=True]"));
        Assert.That(outcome.Frames[1], Is.EqualTo(Element("<presence/>")));
    }

    [Test]
    public void WhitespaceBeforeHeaderWithoutDeclarationIsPartOfTheHeaderFrame()
    {
        var header = "\r\n <stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client'>";
        var outcome = ScanAllWays(Utf8(header));
        Assert.That(outcome.Frames, Has.Count.EqualTo(1));
        Assert.That(outcome.Frames[0], Does.StartWith("StreamHeader:" + header + " [").And.EndWith("decl=False]"));
    }

    [Test]
    public void WhitespaceKeepalivesAndStreamEndWithTrailingWhitespace()
    {
        var outcome = ScanAllWays(Utf8(Header + " \n\t\r\n</stream:stream  >\n  "));
        Assert.That(outcome.Frames.Skip(1), Is.EqualTo(new[] { Whitespace(" \n\t\r\n"), StreamEnd("</stream:stream  >"), Whitespace("\n  ") }));
        Assert.That(outcome.End, Is.EqualTo("NeedMoreData(0)"));
    }

    [Test]
    public void OtherStreamPrefixIsMatchedByTheEndTag()
    {
        var outcome = ScanAllWays(Utf8("<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:client'><message/></s:stream>"));
        Assert.That(outcome.Frames.Skip(1), Is.EqualTo(new[] { Element("<message/>"), StreamEnd("</s:stream>") }));
    }

    [Test]
    public void UnfinishedInputWaits()
    {
        var cases = new[]
        {
            Bytes(Header, "<message><body>caf", new byte[] { 0xC3 }),
            Bytes(Header, "<message><body>", new byte[] { 0xF0, 0x9F, 0x98 }),
            Bytes(Header, "<message id='", new byte[] { 0xE6, 0x97 }),
            Bytes(Header, "<caf", new byte[] { 0xC3 }),
            Bytes(Header, "<message><body>&am"),
            Bytes(Header, "<message><body>&#x1F6"),
            Bytes(Header, "<message><body>]]"),
            Bytes(Header, "<message><![CDATA[ ]]"),
            Bytes(Header, "</stream:stream"),
            Bytes("<?xml version='1.0'"),
            Bytes(new byte[] { 0xEF, 0xBB }),
        };
        foreach (var input in cases)
        {
            var outcome = ScanAllWays(input);
            var header = outcome.Frames.Count > 0 ? Utf8(Header).Length : 0;
            Assert.That(outcome.End, Is.EqualTo($"NeedMoreData({input.Length - header})"), outcome.ToString());
        }
    }

    [Test]
    public void SequenceOfTopLevelElementsWithoutHeader()
    {
        var options = new XmlScannerOptions { ExpectStreamHeader = false };
        const string open = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/>";
        const string message = "<message to='a@example.com'><body>x</body></message>";
        const string close = "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>";
        var outcome = ScanAllWays(Utf8(open + message + "\n" + close), options);
        Assert.That(outcome.Frames, Is.EqualTo(new[] { Element(open), Element(message), Whitespace("\n"), Element(close) }));
    }

    [Test]
    public void UpstreamLinkStream()
    {
        const string header = "<stream:stream xmlns='jabber:connectionmanager' xmlns:stream='http://etherx.jabber.org/streams' to='cm1/link-1' version='1.0'>";
        const string handshake = "<handshake>0123456789abcdef0123456789abcdef01234567</handshake>";
        const string route = "<route from='example.com' to='cm1' streamid='s1'><message xmlns='jabber:client' to='juliet@example.com'><body>\u00E9</body></message></route>";
        var outcome = ScanAllWays(Utf8(header + handshake + route), XmlScannerOptions.UpstreamLink);
        Assert.That(outcome.Frames.Skip(1), Is.EqualTo(new[] { Element(handshake), Element(route) }));
        Assert.That(outcome.Frames[0], Does.Contain("default=jabber:connectionmanager"));
    }
}
