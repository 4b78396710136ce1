using System.Buffers;
using System.Text;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Xml;
using NUnit.Framework;

namespace ConnMgr.Tests.Protocol.XmlIo;

public class XmlElementReaderTests
{
    private static readonly XmlNamespaceScope ClientStream = XmlNamespaceScope.Create(
        XmppNamespaces.Client, [new KeyValuePair<string, string>("stream", XmppNamespaces.Stream)]);

    private static byte[] U(string s) => Encoding.UTF8.GetBytes(s);

    private static string S(ReadOnlySpan<byte> s) => Encoding.UTF8.GetString(s);

    /// <summary>Follows child indexes from the top-level element and reports the reached element's name and namespace.</summary>
    private static (string Name, string Namespace) Resolve(string xml, XmlNamespaceScope scope, params int[] path)
    {
        var reader = new XmlElementReader(U(xml), scope);
        foreach (var index in path)
        {
            var i = 0;
            var found = false;
            foreach (var child in reader.Children)
            {
                if (i++ == index)
                {
                    reader = child;
                    found = true;
                    break;
                }
            }
            Assert.That(found, Is.True, $"child {index} missing");
        }
        return (S(reader.QualifiedName), S(reader.NamespaceUri));
    }

    private static IEnumerable<TestCaseData> NamespaceCases()
    {
        const string Bind = "urn:ietf:params:xml:ns:xmpp-bind";
        yield return new TestCaseData("<message xmlns='jabber:client'><body>hi</body></message>", new int[0], "message", "jabber:client").SetName("own default namespace");
        yield return new TestCaseData("<message xmlns='jabber:client'><body>hi</body></message>", new[] { 0 }, "body", "jabber:client").SetName("inherited default namespace");
        yield return new TestCaseData("<iq type='set'><bind xmlns='" + Bind + "'><resource>r</resource></bind></iq>", new int[0], "iq", "jabber:client").SetName("scope default namespace");
        yield return new TestCaseData("<iq type='set'><bind xmlns='" + Bind + "'><resource>r</resource></bind></iq>", new[] { 0 }, "bind", Bind).SetName("child declares default");
        yield return new TestCaseData("<iq type='set'><bind xmlns='" + Bind + "'><resource>r</resource></bind></iq>", new[] { 0, 0 }, "resource", Bind).SetName("grandchild inherits child's default");
        yield return new TestCaseData("<x:foo xmlns:x='u'><x:bar/></x:foo>", new[] { 0 }, "x:bar", "u").SetName("prefix declared on parent");
        yield return new TestCaseData("<x:foo xmlns:x='u'><bar/></x:foo>", new[] { 0 }, "bar", "jabber:client").SetName("prefixed parent does not change default");
        yield return new TestCaseData("<route streamid='s'><stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></route>", new[] { 0 }, "stream:error", XmppNamespaces.Stream).SetName("prefix from outer scope");
        yield return new TestCaseData("<route streamid='s'><stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></route>", new[] { 0, 0 }, "conflict", XmppNamespaces.Streams).SetName("default inside prefixed element");
        yield return new TestCaseData("<a xmlns='u'><b xmlns=''><c/></b></a>", new[] { 0, 0 }, "c", "").SetName("default undeclared with empty xmlns");
        yield return new TestCaseData("<p:a xmlns:p='u1'><p:b xmlns:p='u2'><p:c/></p:b><p:d/></p:a>", new[] { 0, 0 }, "p:c", "u2").SetName("inner prefix shadows outer");
        yield return new TestCaseData("<p:a xmlns:p='u1'><p:b xmlns:p='u2'><p:c/></p:b><p:d/></p:a>", new[] { 1 }, "p:d", "u1").SetName("shadowing ends with the element");
        yield return new TestCaseData("<a><q:b/></a>", new[] { 0 }, "q:b", "").SetName("unbound prefix resolves to nothing");
        yield return new TestCaseData("<a x='1>2' xmlns:p=\"v\"><p:b y=\"'>\"/></a>", new[] { 0 }, "p:b", "v").SetName("quoted > and quotes in attributes");
        yield return new TestCaseData("<a xmlns:p='one'><b xmlns:q='two'><c><p:d/></c></b></a>", new[] { 0, 0, 0 }, "p:d", "one").SetName("declaration two declaring ancestors up");
        yield return new TestCaseData("<a xmlns='u&amp;v'/>", new int[0], "a", "u&amp;v").SetName("namespace value is raw");
    }

    [TestCaseSource(nameof(NamespaceCases))]
    public void ResolvesNamespaces(string xml, int[] path, string name, string ns)
    {
        Assert.That(Resolve(xml, ClientStream, path), Is.EqualTo((name, ns)));
    }

    [Test]
    public void ResolvesThroughDeepNestingWithDeclarationsAtEveryLevel()
    {
        const int Depth = 40;
        var xml = new StringBuilder();
        for (var i = 0; i < Depth; i++)
            xml.Append($"<p{i}:e xmlns:p{i}='urn:{i}' xmlns='d{i}'>");
        xml.Append("<leaf/>");
        for (var i = Depth - 1; i >= 0; i--)
            xml.Append($"</p{i}:e>");
        var reader = new XmlElementReader(U(xml.ToString()));
        for (var i = 1; i < Depth; i++)
            reader = reader.FirstChild;
        var leaf = reader.FirstChild;
        Assert.That(S(leaf.NamespaceUri), Is.EqualTo($"d{Depth - 1}"));
        for (var i = 0; i < Depth; i++)
        {
            Assert.That(leaf.TryResolvePrefix(U($"p{i}"), out var uri), Is.True);
            Assert.That(S(uri), Is.EqualTo($"urn:{i}"));
        }
    }

    [Test]
    public void TooManyDeclaringAncestorsIsAFormatException()
    {
        var depth = XmlElementReader.MaxNamespaceAncestors + 2;
        var xml = new StringBuilder();
        for (var i = 0; i < depth; i++)
            xml.Append("<e xmlns='u'>");
        for (var i = 0; i < depth; i++)
            xml.Append("</e>");
        var bytes = U(xml.ToString());
        Assert.Throws<FormatException>(() =>
        {
            var reader = new XmlElementReader(bytes);
            while (reader.TryGetFirstChild(out var child))
                reader = child;
        });
    }

    [Test]
    public void NameIsComparesLocalNameAndNamespace()
    {
        var reader = new XmlElementReader(U("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>"), ClientStream);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(reader.NameIs("iq"u8, "jabber:client"u8), Is.True);
            Assert.That(reader.NameIs("iq"u8, XmppNamespaces.Client), Is.True);
            Assert.That(reader.NameIs("iq"u8, XmppNamespaces.Server), Is.False);
            Assert.That(reader.NameIs("message"u8, XmppNamespaces.Client), Is.False);
            Assert.That(reader.TryGetChild("bind"u8, XmppNamespaces.Bind, out var bind), Is.True);
            Assert.That(bind.IsEmptyElement, Is.True);
            Assert.That(reader.TryGetChild("bind"u8, XmppNamespaces.Session, out _), Is.False);
            Assert.That(reader.TryGetChild("bind"u8, "urn:ietf:params:xml:ns:xmpp-bind"u8, out _), Is.True);
        }
    }

    [Test]
    public void NameIsUnescapesTheNamespaceValue()
    {
        var reader = new XmlElementReader(U("<a xmlns='u&amp;v'/>"));
        Assert.That(reader.NameIs("a"u8, "u&v"), Is.True);
        Assert.That(reader.NameIs("a"u8, "u&v"u8), Is.True);
        Assert.That(reader.NameIs("a"u8, "u&amp;v"), Is.False);
    }

    [Test]
    public void ReadsNamesOfPrefixedElement()
    {
        var reader = new XmlElementReader(U("<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"), ClientStream);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(S(reader.QualifiedName), Is.EqualTo("stream:features"));
            Assert.That(S(reader.Prefix), Is.EqualTo("stream"));
            Assert.That(S(reader.LocalName), Is.EqualTo("features"));
            Assert.That(S(reader.NamespaceUri), Is.EqualTo(XmppNamespaces.Stream));
            Assert.That(reader.IsEmptyElement, Is.False);
        }
    }

    [Test]
    public void RawAndInnerRaw()
    {
        const string Xml = "  <message to='a@b'><body>x</body>  </message >\r\n";
        var reader = new XmlElementReader(U(Xml));
        Assert.That(S(reader.Raw), Is.EqualTo("<message to='a@b'><body>x</body>  </message >"));
        Assert.That(S(reader.InnerRaw), Is.EqualTo("<body>x</body>  "));
        Assert.That(S(reader.FirstChild.Raw), Is.EqualTo("<body>x</body>"));
        Assert.That(S(reader.FirstChild.InnerRaw), Is.EqualTo("x"));
        var empty = new XmlElementReader(U("<presence/>"));
        Assert.That(empty.IsEmptyElement, Is.True);
        Assert.That(empty.InnerRaw.Length, Is.Zero);
        Assert.That(S(empty.Raw), Is.EqualTo("<presence/>"));
    }

    private static IEnumerable<TestCaseData> AttributeCases()
    {
        yield return new TestCaseData("<a v='plain'/>", "plain").SetName("plain value");
        yield return new TestCaseData("<a v='&lt;&gt;&amp;&quot;&apos;'/>", "<>&\"'").SetName("five entities");
        yield return new TestCaseData("<a v=\"it's\"/>", "it's").SetName("apostrophe in double quotes");
        yield return new TestCaseData("<a v='say \"hi\"'/>", "say \"hi\"").SetName("quote in single quotes");
        yield return new TestCaseData("<a v='&#65;&#x42;&#x0043;'/>", "ABC").SetName("character references");
        yield return new TestCaseData("<a v='&#x1F600;&#128512;'/>", "\U0001F600\U0001F600").SetName("astral character references");
        yield return new TestCaseData("<a v='a\tb\nc\r\nd\re'/>", "a b c d e").SetName("literal whitespace normalized");
        yield return new TestCaseData("<a v='a&#9;b&#xA;c&#xD;d'/>", "a\tb\nc\rd").SetName("referenced whitespace kept");
        yield return new TestCaseData("<a v='1>2'/>", "1>2").SetName("greater-than unescaped");
        yield return new TestCaseData("<a v=''/>", "").SetName("empty value");
        yield return new TestCaseData("<a  v = 'spaced' />", "spaced").SetName("whitespace around equals");
        yield return new TestCaseData("<a v='ünïcödé 日本'/>", "ünïcödé 日本").SetName("non-ASCII");
    }

    [TestCaseSource(nameof(AttributeCases))]
    public void ReadsAttributeValues(string xml, string expected)
    {
        var reader = new XmlElementReader(U(xml));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(reader.GetAttribute("v"u8), Is.EqualTo(expected));
            Assert.That(reader.AttributeEquals("v"u8, expected), Is.True);
            Assert.That(reader.AttributeEquals("v"u8, U(expected)), Is.True);
            Assert.That(reader.AttributeEquals("v"u8, expected + "x"), Is.False);
            Assert.That(reader.AttributeEquals("v"u8, U(expected + "x")), Is.False);
            Assert.That(reader.TryGetAttribute("v"u8, out var raw), Is.True);
            var buffer = new byte[raw.Length];
            Assert.That(reader.TryCopyAttribute("v"u8, buffer, out var written), Is.True);
            Assert.That(S(buffer.AsSpan(0, written)), Is.EqualTo(expected));
        }
    }

    [Test]
    public void MissingAttributes()
    {
        var reader = new XmlElementReader(U("<a to='x' xmlns='u'/>"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(reader.GetAttribute("from"u8), Is.Null);
            Assert.That(reader.HasAttribute("from"u8), Is.False);
            Assert.That(reader.HasAttribute("to"u8), Is.True);
            Assert.That(reader.AttributeEquals("from"u8, ""), Is.False);
            Assert.That(reader.TryCopyAttribute("from"u8, new byte[8], out _), Is.False);
            Assert.That(reader.TryGetAttribute("t"u8, out _), Is.False, "prefix of a name is not the name");
        }
    }

    [Test]
    public void AttributeWithMalformedReferenceThrowsOnlyWhenUnescaped()
    {
        var bytes = U("<a v='x&bogus;y' w='ok'/>");
        var reader = new XmlElementReader(bytes);
        Assert.That(reader.TryGetAttribute("v"u8, out var raw), Is.True);
        Assert.That(S(raw), Is.EqualTo("x&bogus;y"));
        Assert.That(reader.AttributeEquals("v"u8, "x&bogus;y"), Is.False);
        Assert.That(reader.GetAttribute("w"u8), Is.EqualTo("ok"));
        Assert.Throws<FormatException>(() => new XmlElementReader(bytes).GetAttribute("v"u8));
    }

    [Test]
    public void EnumeratesAttributesAndDeclarationsSeparately()
    {
        var reader = new XmlElementReader(U("<iq xmlns='jabber:client' to='a' xmlns:x='u' type=\"get\" x:y='z' xmlnsfoo='n'/>"));
        var attributes = new List<string>();
        foreach (var (name, value) in reader.Attributes)
            attributes.Add($"{S(name)}={S(value)}");
        var declarations = new List<string>();
        foreach (var declaration in reader.NamespaceDeclarations)
        {
            Assert.That(declaration.IsNamespaceDeclaration, Is.True);
            declarations.Add($"{S(declaration.Prefix)}|{S(declaration.LocalName)}={declaration.GetValue()}");
        }
        Assert.That(attributes, Is.EqualTo(new[] { "to=a", "type=get", "x:y=z", "xmlnsfoo=n" }));
        Assert.That(declarations, Is.EqualTo(new[] { "|xmlns=jabber:client", "xmlns|x=u" }));
    }

    private static IEnumerable<TestCaseData> TextCases()
    {
        yield return new TestCaseData("<body>hello</body>", "hello").SetName("plain text");
        yield return new TestCaseData("<body/>", "").SetName("empty element");
        yield return new TestCaseData("<body></body>", "").SetName("no content");
        yield return new TestCaseData("<body>a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;</body>", "a <b> & \"c\" 'd'").SetName("entities");
        yield return new TestCaseData("<body><![CDATA[<html> & stuff]]></body>", "<html> & stuff").SetName("CDATA");
        yield return new TestCaseData("<body>x<![CDATA[]]>y<![CDATA[&amp;]]>z</body>", "xy&amp;z").SetName("CDATA mixed with text");
        yield return new TestCaseData("<body>&#x1F600; &#128512; &#xE9;&#233;</body>", "\U0001F600 \U0001F600 éé").SetName("character references incl. astral");
        yield return new TestCaseData("<body>a<b>skip</b>c<d/>e</body>", "ace").SetName("child elements skipped");
        yield return new TestCaseData("<body>a<!-- c -->b<?pi x?>c</body>", "abc").SetName("comments and PIs skipped");
        yield return new TestCaseData("<body>l1\r\nl2\rl3\n&#xD;</body>", "l1\nl2\nl3\n\r").SetName("line ends normalized");
        yield return new TestCaseData("<body>日本語 ✓</body>", "日本語 ✓").SetName("non-ASCII");
        yield return new TestCaseData("<body>]]&gt;</body>", "]]>").SetName("escaped CDATA end");
    }

    [TestCaseSource(nameof(TextCases))]
    public void ReadsText(string xml, string expected)
    {
        var reader = new XmlElementReader(U(xml));
        Assert.That(reader.GetText(), Is.EqualTo(expected));

        var buffer = new byte[reader.InnerRaw.Length];
        Assert.That(reader.TryCopyText(buffer, out var written), Is.True);
        Assert.That(S(buffer.AsSpan(0, written)), Is.EqualTo(expected));

        var output = new ArrayBufferWriter<byte>();
        reader.WriteText(output);
        Assert.That(S(output.WrittenSpan), Is.EqualTo(expected));
    }

    [Test]
    public void TryCopyTextFailsWhenTheDestinationIsTooShort()
    {
        var reader = new XmlElementReader(U("<body>hello &amp; goodbye</body>"));
        Assert.That(reader.TryCopyText(new byte[5], out var written), Is.False);
        Assert.That(written, Is.Zero);
    }

    [Test]
    public void LongTextUsesThePoolAndStaysExact()
    {
        var text = string.Concat(Enumerable.Repeat("a<b>&c\u00e9 ", 5000));
        var xml = "<body>" + XmlEscaping.EscapeText(text) + "</body>";
        Assert.That(new XmlElementReader(U(xml)).GetText(), Is.EqualTo(text));
    }

    [Test]
    public void MalformedReferenceInTextIsAFormatException()
    {
        var bytes = U("<body>a &nbsp; b</body>");
        Assert.Throws<FormatException>(() => new XmlElementReader(bytes).GetText());
        Assert.Throws<FormatException>(() => new XmlElementReader(bytes).TryCopyText(new byte[64], out _));
        Assert.Throws<FormatException>(() => new XmlElementReader(U("<body>&#0;</body>")).GetText());
    }

    [Test]
    public void ChildrenInDocumentOrderSkippingEverythingElse()
    {
        var reader = new XmlElementReader(U(
            "<r>text<a x='>'/><!-- <no/> --><b><inner/><inner/></b><![CDATA[<no/>]]><?pi <no/>?>\n<c>t</c><d/></r>"));
        var names = new List<string>();
        foreach (var child in reader.Children)
            names.Add(S(child.QualifiedName));
        Assert.That(names, Is.EqualTo(new[] { "a", "b", "c", "d" }));
        Assert.That(S(reader.FirstChild.QualifiedName), Is.EqualTo("a"));
    }

    [Test]
    public void NestedChildrenOfTheSameName()
    {
        var reader = new XmlElementReader(U("<a><a><a/></a><a>x</a></a>"));
        var count = 0;
        foreach (var child in reader.Children)
        {
            count++;
            Assert.That(S(child.QualifiedName), Is.EqualTo("a"));
        }
        Assert.That(count, Is.EqualTo(2));
    }

    [Test]
    public void NoChildren()
    {
        var reader = new XmlElementReader(U("<route streamid='s'>&lt;success/&gt;</route>"));
        Assert.That(reader.TryGetFirstChild(out var child), Is.False);
        Assert.That(child.QualifiedName.Length, Is.Zero, "default reader is safe to inspect");
        Assert.That(child.Raw.Length, Is.Zero);
        Assert.That(child.NamespaceUri.Length, Is.Zero);
        Assert.Throws<InvalidOperationException>(() => _ = new XmlElementReader(U("<a/>")).FirstChild);
    }

    [Test]
    public void ReadsTypicalMessage()
    {
        var bytes = U("<message to='juliet@example.com/balcony' from='romeo@example.net/orchard' type='chat' id='ktx72v49' xml:lang='en'>"
            + "<body>Art thou not Romeo, and a Montague?</body><thread>e0ffe42b28561960c6b12b944a092794b9683a38</thread></message>");
        var reader = new XmlElementReader(bytes, ClientStream);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(reader.NameIs("message"u8, XmppNamespaces.Client));
            Assert.That(reader.GetAttribute("to"u8), Is.EqualTo("juliet@example.com/balcony"));
            Assert.That(reader.AttributeEquals("type"u8, "chat"u8));
            Assert.That(reader.GetAttribute("id"u8), Is.EqualTo("ktx72v49"));
            Assert.That(reader.GetAttribute("xml:lang"u8), Is.EqualTo("en"));
            Assert.That(reader.TryResolvePrefix("xml"u8, out var xmlNs) && xmlNs.SequenceEqual("http://www.w3.org/XML/1998/namespace"u8));
            Assert.That(reader.TryGetChild("body"u8, XmppNamespaces.Client, out var body));
            Assert.That(body.GetText(), Is.EqualTo("Art thou not Romeo, and a Montague?"));
            Assert.That(reader.TryGetChild("thread"u8, XmppNamespaces.Client, out var thread));
            Assert.That(thread.GetText(), Has.Length.EqualTo(40));
        }
    }

    [Test]
    public void SpanApisDoNotAllocate()
    {
        var bytes = U("<message to='juliet@example.com' type='chat' id='a&amp;b'><body xmlns='jabber:client'>hi &amp; bye<![CDATA[!]]></body></message>");
        var buffer = new byte[256];
        var scope = ClientStream;
        long Run()
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < 100; i++)
            {
                var reader = new XmlElementReader(bytes, scope);
                _ = reader.TryGetAttribute("to"u8, out _);
                _ = reader.AttributeEquals("type"u8, "chat"u8);
                _ = reader.AttributeEquals("id"u8, "a&b");
                _ = reader.TryCopyAttribute("id"u8, buffer, out _);
                _ = reader.NameIs("message"u8, XmppNamespaces.Client);
                foreach (var attribute in reader.Attributes)
                    _ = attribute.ValueEquals("x"u8);
                if (reader.TryGetFirstChild(out var body))
                {
                    _ = body.NameIs("body"u8, XmppNamespaces.Client);
                    _ = body.TryCopyText(buffer, out _);
                }
            }
            return GC.GetAllocatedBytesForCurrentThread() - before;
        }
        Run();
        Assert.That(Run(), Is.Zero);
    }

    [Test]
    public void UnescapesTheOpenfire48RawTextRoute()
    {
        // Spec 6.2: Openfire >= 4.8 sends SASL success as escaped text inside the route.
        var route = new XmlElementReader(U("<route from=\"example.com\" to=\"cm1\" streamid=\"cm1-7f3a9c2b\">&lt;success xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"&gt;dj1ybkFPaVV0c2c=&lt;/success&gt;</route>"));
        Assert.That(route.TryGetFirstChild(out _), Is.False);
        var body = new ArrayBufferWriter<byte>();
        route.WriteText(body);
        Assert.That(S(body.WrittenSpan), Is.EqualTo("<success xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\">dj1ybkFPaVV0c2c=</success>"));
        var success = new XmlElementReader(body.WrittenSpan);
        Assert.That(success.NameIs("success"u8, XmppNamespaces.Sasl), Is.True);
        Assert.That(success.GetText(), Is.EqualTo("dj1ybkFPaVV0c2c="));
    }

    [Test]
    public void ScopeFromStreamHeader()
    {
        var header = U("<stream:stream xmlns='jabber:connectionmanager' xmlns:stream='http://etherx.jabber.org/streams' xmlns:p='a&amp;b' to='cm1/link-1' version='1.0'>");
        var scope = XmlNamespaceScope.FromStartTag(header);
        Assert.That(scope.DefaultNamespace, Is.EqualTo(XmppNamespaces.ConnectionManagerStream));
        Assert.That(scope.TryResolve("stream"u8, out var stream) && stream.SequenceEqual(U(XmppNamespaces.Stream)));
        Assert.That(scope.TryResolve("p"u8, out var p) && p.SequenceEqual("a&b"u8));
        Assert.That(scope.TryResolve("q"u8, out _), Is.False);

        var layered = XmlNamespaceScope.FromStartTag(U("<x xmlns:q='z'>"), scope);
        Assert.That(layered.DefaultNamespace, Is.EqualTo(XmppNamespaces.ConnectionManagerStream));
        Assert.That(layered.TryResolve("q"u8, out _) && layered.TryResolve("stream"u8, out _));

        var error = new XmlElementReader(U("<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"), scope);
        Assert.That(error.NameIs("error"u8, XmppNamespaces.Stream));
        Assert.Throws<FormatException>(() => XmlNamespaceScope.FromStartTag(U("no tag")));
    }

    [Test]
    public void ScopeCreateAndDefault()
    {
        XmlNamespaceScope none = default;
        Assert.That(none.DefaultNamespace, Is.Null);
        Assert.That(none.TryResolve(""u8, out _), Is.False);
        Assert.That(none.TryResolve("xml"u8, out _), Is.True);
        var scope = XmlNamespaceScope.Create("", [new("p", "one"), new("p", "two")]);
        Assert.That(scope.DefaultNamespace, Is.Null);
        Assert.That(scope.TryResolve("p"u8, out var p) && p.SequenceEqual("two"u8), "the later declaration wins");
        Assert.That(S(new XmlElementReader(U("<a/>"), scope).NamespaceUri), Is.Empty);
    }

    private static IEnumerable<string> NotOneElement()
    {
        yield return "";
        yield return "   ";
        yield return "text";
        yield return "<";
        yield return "<a";
        yield return "<a>";
        yield return "<a></b>";
        yield return "<a></ab>";
        yield return "<a x='1>";
        yield return "<a/>junk";
        yield return "<a/><b/>";
        yield return "<a>x</a>y";
        yield return "</a>";
        yield return "<!-- c -->";
        yield return "<?pi?>";
        yield return "<:a/>";
        yield return "<a:/>";
    }

    [TestCaseSource(nameof(NotOneElement))]
    public void RejectsWhatIsNotOneElement(string xml)
    {
        var bytes = U(xml);
        Assert.That(XmlElementReader.TryCreate(bytes, default, out _), Is.False);
        Assert.Throws<FormatException>(() => _ = new XmlElementReader(bytes));
    }

    [TestCase("<a><b></a>")]
    [TestCase("<a><b><c></c></a>")]
    [TestCase("<a></x></a>")]
    [TestCase("<a><!DOCTYPE x></a>")]
    [TestCase("<a><![CDATA[x</a>")]
    [TestCase("<a><!-- x</a>")]
    [TestCase("<a><b x='></a>")]
    public void BrokenContentIsAFormatExceptionWhenWalked(string xml)
    {
        var bytes = U(xml);
        Assert.Throws<FormatException>(() => Walk(new XmlElementReader(bytes)));
    }

    /// <summary>Every prefix and every single-byte corruption of a stanza: either rejected cleanly or walkable.</summary>
    [Test]
    public void GarbageNeverCrashesOrHangs()
    {
        var stanza = U("<iq xmlns='jabber:client' type='set' id='a&amp;1'><x:q xmlns:x='u' a=\"'>\"><item jid='a@b'>t&#x41;<![CDATA[c]]></item><!--c--><y/></x:q></iq>");
        var bytesTried = "<>/='\"&;!?[]- x:"u8.ToArray();
        var outcomes = 0;
        for (var length = 0; length <= stanza.Length; length++)
            outcomes += TryWalk(stanza.AsSpan(0, length));
        for (var i = 0; i < stanza.Length; i++)
        {
            var copy = (byte[])stanza.Clone();
            foreach (var b in bytesTried)
            {
                copy[i] = b;
                outcomes += TryWalk(copy);
            }
        }
        Assert.That(outcomes, Is.GreaterThan(0), "some corruptions still read as an element");
    }

    private static int TryWalk(ReadOnlySpan<byte> data)
    {
        if (!XmlElementReader.TryCreate(data, ClientStream, out var reader))
            return 0;
        try
        {
            Walk(reader);
            return 1;
        }
        catch (FormatException)
        {
            return 0;
        }
    }

    private static void Walk(XmlElementReader reader)
    {
        _ = reader.NamespaceUri;
        _ = reader.LocalName;
        foreach (var attribute in reader.Attributes)
        {
            _ = attribute.LocalName;
            _ = attribute.ValueEquals("x");
        }
        _ = reader.GetText();
        foreach (var child in reader.Children)
            Walk(child);
    }
}
