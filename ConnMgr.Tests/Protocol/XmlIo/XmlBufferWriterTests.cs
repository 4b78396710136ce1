using System.Buffers;
using System.Text;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Xml;
using NUnit.Framework;

namespace ConnMgr.Tests.Protocol.XmlIo;

public class XmlBufferWriterTests
{
    private static string S(ReadOnlySpan<byte> s) => Encoding.UTF8.GetString(s);

    [Test]
    public void WritesTheBindResultFromTheBrief()
    {
        var output = new ArrayBufferWriter<byte>();
        var w = new XmlBufferWriter(output);
        w.StartElement("iq"u8);
        w.Attribute("type"u8, "result"u8);
        w.Attribute("id"u8, "bind_1");
        w.StartElement("bind"u8, XmppNamespaces.Bind);
        w.StartElement("jid"u8);
        w.Text("juliet@example.com/balcony");
        w.EndElement();
        w.EndElement();
        w.EndElement();
        Assert.That(S(output.WrittenSpan), Is.EqualTo(
            "<iq type='result' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>juliet@example.com/balcony</jid></bind></iq>"));
        Assert.That(w.BytesWritten, Is.EqualTo(output.WrittenCount));
        Assert.That(w.Depth, Is.Zero);
    }

    [Test]
    public void SelfClosesEmptyElements()
    {
        var output = new ArrayBufferWriter<byte>();
        var w = new XmlBufferWriter(output);
        w.StartElement("presence"u8);
        w.StartElement("show"u8);
        w.EndElement();
        w.StartElement("c"u8, "http://jabber.org/protocol/caps"u8);
        w.Attribute("hash"u8, "sha-1"u8);
        w.EndElement();
        w.EndElement();
        Assert.That(S(output.WrittenSpan), Is.EqualTo("<presence><show/><c xmlns='http://jabber.org/protocol/caps' hash='sha-1'/></presence>"));
    }

    [Test]
    public void EscapesEverySpecialCharacter()
    {
        const string Nasty = "&<>\"'\t\n\r\u0001é\U0001F600";
        var output = new ArrayBufferWriter<byte>();
        var w = new XmlBufferWriter(output);
        w.StartElement("m"u8);
        w.Attribute("s"u8, Nasty);
        w.Attribute("u"u8, Encoding.UTF8.GetBytes(Nasty));
        w.Text(Nasty);
        w.Text(Encoding.UTF8.GetBytes(Nasty));
        w.EndElement();
        const string Attribute = "&amp;&lt;>&quot;&apos;&#x9;&#xA;&#xD;\uFFFDé\U0001F600";
        const string Text = "&amp;&lt;&gt;\"'\t\n&#xD;\uFFFDé\U0001F600";
        Assert.That(S(output.WrittenSpan), Is.EqualTo($"<m s='{Attribute}' u='{Attribute}'>{Text}{Text}</m>"));
        Assert.That(w.BytesWritten, Is.EqualTo(output.WrittenCount));

        var reader = new XmlElementReader(output.WrittenSpan);
        var expected = Nasty.Replace('\u0001', '\uFFFD');
        Assert.That(reader.GetAttribute("s"u8), Is.EqualTo(expected));
        Assert.That(reader.GetAttribute("u"u8), Is.EqualTo(expected));
        Assert.That(reader.GetText(), Is.EqualTo(expected + expected));
    }

    [Test]
    public void NestedNamespacesRoundTripThroughTheReader()
    {
        var output = new ArrayBufferWriter<byte>();
        var w = new XmlBufferWriter(output);
        w.StartElement("stream:error"u8);
        w.NamespaceDeclaration("stream"u8, XmppNamespaces.Stream);
        w.StartElement("x:a"u8);
        w.NamespaceDeclaration("x"u8, "urn:x");
        w.NamespaceDeclaration(""u8, "urn:default");
        w.StartElement("x:b"u8);
        w.EndElement();
        w.StartElement("c"u8);
        w.Text("t");
        w.EndElement();
        w.EndAll();
        Assert.That(S(output.WrittenSpan), Is.EqualTo(
            "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><x:a xmlns:x='urn:x' xmlns='urn:default'><x:b/><c>t</c></x:a></stream:error>"));

        var reader = new XmlElementReader(output.WrittenSpan);
        Assert.That(reader.NameIs("error"u8, XmppNamespaces.Stream));
        var a = reader.FirstChild;
        Assert.That(a.NameIs("a"u8, "urn:x"));
        var names = new List<string>();
        foreach (var child in a.Children)
            names.Add($"{S(child.QualifiedName)}={S(child.NamespaceUri)}");
        Assert.That(names, Is.EqualTo(new[] { "x:b=urn:x", "c=urn:default" }));
    }

    [Test]
    public void SplicesRawStanzasAndRawAttributes()
    {
        var stanza = "<message to='romeo@example.net' id=\"it's\"><body>hi &amp; bye</body></message>"u8.ToArray();
        var client = new XmlElementReader(stanza);
        client.TryGetAttribute("id"u8, out var rawId);

        var output = new ArrayBufferWriter<byte>();
        var w = new XmlBufferWriter(output);
        w.StartElement("route"u8);
        w.Attribute("streamid"u8, "cm1-7f3a9c2b");
        w.RawAttribute("id"u8, rawId);
        w.RawAttribute("plain"u8, "a&amp;b"u8);
        w.Raw(client.Raw);
        w.EndElement();
        Assert.That(S(output.WrittenSpan), Is.EqualTo(
            "<route streamid='cm1-7f3a9c2b' id=\"it's\" plain='a&amp;b'><message to='romeo@example.net' id=\"it's\"><body>hi &amp; bye</body></message></route>"));

        var route = new XmlElementReader(output.WrittenSpan);
        Assert.That(route.GetAttribute("id"u8), Is.EqualTo("it's"));
        Assert.That(route.FirstChild.Raw.SequenceEqual(stanza));
    }

    [Test]
    public void RawAttributeWithBothQuotesIsReEscaped()
    {
        var output = new ArrayBufferWriter<byte>();
        var w = new XmlBufferWriter(output);
        w.StartElement("a"u8);
        w.RawAttribute("v"u8, "'\"&amp;"u8);
        w.EndElement();
        Assert.That(S(output.WrittenSpan), Is.EqualTo("<a v='&apos;&quot;&amp;'/>"));
    }

    [Test]
    public void NumbersAndOptionalAttributes()
    {
        var output = new ArrayBufferWriter<byte>();
        var w = new XmlBufferWriter(output);
        w.StartElement("error"u8);
        w.Attribute("code"u8, 503);
        w.Attribute("big"u8, long.MinValue);
        w.OptionalAttribute("by"u8, null);
        w.OptionalAttribute("type"u8, "cancel");
        w.EndElement();
        Assert.That(S(output.WrittenSpan), Is.EqualTo("<error code='503' big='-9223372036854775808' type='cancel'/>"));
    }

    [Test]
    public void CloseStartTagLeavesTheElementOpen()
    {
        var output = new ArrayBufferWriter<byte>();
        var w = new XmlBufferWriter(output);
        w.StartElement("stream:stream"u8);
        w.Attribute("to"u8, "example.com");
        w.CloseStartTag();
        w.CloseStartTag();
        Assert.That(S(output.WrittenSpan), Is.EqualTo("<stream:stream to='example.com'>"));
        Assert.That(w.Depth, Is.EqualTo(1));
        w.EndElement();
        Assert.That(S(output.WrittenSpan), Is.EqualTo("<stream:stream to='example.com'></stream:stream>"));
    }

    [Test]
    public void LargeRawContentIsCopiedExactly()
    {
        var body = Encoding.UTF8.GetBytes("<body>" + new string('x', 100_000) + "</body>");
        var output = new ArrayBufferWriter<byte>();
        var w = new XmlBufferWriter(output);
        w.StartElement("message"u8);
        w.Raw(body);
        w.EndElement();
        Assert.That(output.WrittenCount, Is.EqualTo(body.Length + "<message></message>".Length));
        Assert.That(new XmlElementReader(output.WrittenSpan).FirstChild.Raw.SequenceEqual(body));
    }

    [Test]
    public void MisuseThrowsInvalidOperationException()
    {
        var output = new ArrayBufferWriter<byte>();
        Assert.Throws<InvalidOperationException>(() => new XmlBufferWriter(output).EndElement());
        Assert.Throws<InvalidOperationException>(() => new XmlBufferWriter(output).Attribute("a"u8, "b"u8));
        Assert.Throws<InvalidOperationException>(() =>
        {
            var w = new XmlBufferWriter(output);
            w.StartElement("a"u8);
            w.Text("x");
            w.Attribute("late"u8, "v"u8);
        });
        Assert.Throws<InvalidOperationException>(() =>
        {
            var w = new XmlBufferWriter(output);
            for (var i = 0; i <= XmlBufferWriter.MaxDepth; i++)
                w.StartElement("e"u8);
        });
        Assert.Throws<InvalidOperationException>(() =>
        {
            var w = new XmlBufferWriter(output);
            w.StartElement(new byte[XmlBufferWriter.MaxOpenNameBytes + 1]);
        });
    }

    [Test]
    public void TracksExactlyTheLimits()
    {
        var output = new ArrayBufferWriter<byte>();
        var w = new XmlBufferWriter(output);
        var name = "n123456789abcdef"u8;
        for (var i = 0; i < XmlBufferWriter.MaxDepth; i++)
            w.StartElement(name);
        Assert.That(XmlBufferWriter.MaxDepth * name.Length, Is.EqualTo(XmlBufferWriter.MaxOpenNameBytes));
        w.EndAll();
        var reader = new XmlElementReader(output.WrittenSpan);
        var depth = 1;
        while (reader.TryGetFirstChild(out var child))
        {
            reader = child;
            depth++;
        }
        Assert.That(depth, Is.EqualTo(XmlBufferWriter.MaxDepth));
    }

    [Test]
    public void WritingDoesNotAllocate()
    {
        var output = new ArrayBufferWriter<byte>(4096);
        var relayed = "<message to='a@b'><body>hi</body></message>"u8.ToArray();
        const string Id = "id-1";
        long Run()
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < 100; i++)
            {
                output.ResetWrittenCount();
                var w = new XmlBufferWriter(output);
                w.StartElement("route"u8);
                w.Attribute("streamid"u8, Id);
                w.Attribute("n"u8, i);
                w.StartElement("x"u8, XmppNamespaces.Client);
                w.Text("a&b");
                w.EndElement();
                w.Raw(relayed);
                w.EndElement();
            }
            return GC.GetAllocatedBytesForCurrentThread() - before;
        }
        Run();
        Assert.That(Run(), Is.Zero);
    }
}
