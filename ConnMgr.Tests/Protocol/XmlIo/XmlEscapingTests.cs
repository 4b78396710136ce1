using System.Buffers;
using System.Text;
using ConnMgr.Protocol.Xml;
using NUnit.Framework;

namespace ConnMgr.Tests.Protocol.XmlIo;

public class XmlEscapingTests
{
    private static string S(ReadOnlySpan<byte> s) => Encoding.UTF8.GetString(s);

    private static IEnumerable<TestCaseData> TextCases()
    {
        yield return new TestCaseData("plain", "plain").SetName("{m}(plain)");
        yield return new TestCaseData("", "").SetName("{m}(empty)");
        yield return new TestCaseData("a&b<c>d", "a&amp;b&lt;c&gt;d").SetName("{m}(markup characters)");
        yield return new TestCaseData("\"quoted\" 'apos'", "\"quoted\" 'apos'").SetName("{m}(quotes stay in text)");
        yield return new TestCaseData("tab\tlf\ncr\r", "tab\tlf\ncr&#xD;").SetName("{m}(whitespace, CR referenced)");
        yield return new TestCaseData("]]>", "]]&gt;").SetName("{m}(CDATA end)");
        yield return new TestCaseData("nul\0bell\a", "nul\uFFFDbell\uFFFD").SetName("{m}(C0 controls replaced)");
        yield return new TestCaseData("x\uFFFEy\uFFFFz", "x\uFFFDy\uFFFDz").SetName("{m}(non-characters replaced)");
        yield return new TestCaseData("\U0001F600 é 日本 \uFE0F \uFFFD", "\U0001F600 é 日本 \uFE0F \uFFFD").SetName("{m}(non-ASCII kept)");
        yield return new TestCaseData("a\uD800b", "a\uFFFDb").SetName("{m}(lone high surrogate replaced)");
        yield return new TestCaseData("a\uDC00", "a\uFFFD").SetName("{m}(lone low surrogate replaced)");
        yield return new TestCaseData("\u0085\u007F", "\u0085\u007F").SetName("{m}(C1 and DEL are XML characters)");
    }

    private static IEnumerable<TestCaseData> AttributeCases()
    {
        yield return new TestCaseData("plain", "plain").SetName("{m}(plain)");
        yield return new TestCaseData("&<>\"'", "&amp;&lt;>&quot;&apos;").SetName("{m}(special characters)");
        yield return new TestCaseData("a\tb\nc\rd", "a&#x9;b&#xA;c&#xD;d").SetName("{m}(whitespace referenced)");
        yield return new TestCaseData("x\u0001y", "x\uFFFDy").SetName("{m}(control replaced)");
        yield return new TestCaseData("romeo@example.net/orchard", "romeo@example.net/orchard").SetName("{m}(JID)");
    }

    [TestCaseSource(nameof(TextCases))]
    public void EscapesText(string input, string expected)
    {
        Assert.That(XmlEscaping.EscapeText(input), Is.EqualTo(expected));
        var fromUtf8 = new ArrayBufferWriter<byte>();
        XmlEscaping.EscapeText(Encoding.UTF8.GetBytes(input), fromUtf8);
        // Encoding a lone surrogate already yields U+FFFD, so the UTF-8 path sees the same text.
        Assert.That(S(fromUtf8.WrittenSpan), Is.EqualTo(expected));
        var span = new byte[expected.Length * 3 + 8];
        Assert.That(XmlEscaping.TryEscapeText(input, span, out var written), Is.True);
        Assert.That(S(span.AsSpan(0, written)), Is.EqualTo(expected));
        Assert.That(XmlEscaping.TryEscapeText(Encoding.UTF8.GetBytes(input), span, out written), Is.True);
        Assert.That(S(span.AsSpan(0, written)), Is.EqualTo(expected));
    }

    [TestCaseSource(nameof(AttributeCases))]
    public void EscapesAttributes(string input, string expected)
    {
        Assert.That(XmlEscaping.EscapeAttribute(input), Is.EqualTo(expected));
        var fromUtf8 = new ArrayBufferWriter<byte>();
        XmlEscaping.EscapeAttribute(Encoding.UTF8.GetBytes(input), fromUtf8);
        Assert.That(S(fromUtf8.WrittenSpan), Is.EqualTo(expected));
        var span = new byte[expected.Length * 3 + 8];
        Assert.That(XmlEscaping.TryEscapeAttribute(input, span, out var written), Is.True);
        Assert.That(S(span.AsSpan(0, written)), Is.EqualTo(expected));
        Assert.That(XmlEscaping.TryEscapeAttribute(Encoding.UTF8.GetBytes(input), span, out written), Is.True);
        Assert.That(S(span.AsSpan(0, written)), Is.EqualTo(expected));
    }

    [TestCase(new byte[] { 0x61, 0xFF, 0x62 }, "a\uFFFDb")]
    [TestCase(new byte[] { 0xC3 }, "\uFFFD")]
    [TestCase(new byte[] { 0xED, 0xA0, 0x80, 0x26 }, "\uFFFD\uFFFD\uFFFD&amp;")]
    [TestCase(new byte[] { 0xEF, 0xBF, 0xBE, 0x3C }, "\uFFFD&lt;")]
    [TestCase(new byte[] { 0xE2, 0x82, 0x3C }, "\uFFFD&lt;")]
    public void InvalidUtf8BecomesReplacementCharacters(byte[] input, string expected)
    {
        var output = new ArrayBufferWriter<byte>();
        XmlEscaping.EscapeText(input, output);
        Assert.That(S(output.WrittenSpan), Is.EqualTo(expected));
    }

    [Test]
    public void TryEscapeFailsWhenTheDestinationIsTooShort()
    {
        Assert.That(XmlEscaping.TryEscapeText("a&b", new byte[6], out _), Is.False);
        Assert.That(XmlEscaping.TryEscapeText("a&b", new byte[7], out var written), Is.True);
        Assert.That(written, Is.EqualTo(7));
        Assert.That(XmlEscaping.TryEscapeAttribute("'"u8, new byte[5], out _), Is.False);
        Assert.That(XmlEscaping.TryEscapeText("日本", new byte[5], out _), Is.False);
    }

    /// <summary>An output that hands out exactly the requested size, so every chunk boundary is exercised.</summary>
    private sealed class StingyWriter : IBufferWriter<byte>
    {
        private readonly ArrayBufferWriter<byte> _inner = new();
        private byte[] _current = [];

        public int Calls { get; private set; }
        public ReadOnlySpan<byte> Written => _inner.WrittenSpan;

        public void Advance(int count) => _inner.Write(_current.AsSpan(0, count));

        public Memory<byte> GetMemory(int sizeHint = 0) => _current = new byte[Math.Max(sizeHint, 1)];

        public Span<byte> GetSpan(int sizeHint = 0)
        {
            Calls++;
            return GetMemory(sizeHint).Span;
        }
    }

    [Test]
    public void LongValuesAreWrittenInBoundedChunksWithoutSplittingCharacters()
    {
        var random = new Random(7622);
        var alphabet = new[] { "a", "&", "<", ">", "\"", "'", "\r", "\n", "\t", "é", "日", "\U0001F600", "\u0001", "\uFFFF" };
        for (var round = 0; round < 20; round++)
        {
            var text = new StringBuilder();
            var length = random.Next(1, 12000);
            while (text.Length < length)
                text.Append(alphabet[random.Next(alphabet.Length)]);
            var input = text.ToString();
            foreach (var attribute in new[] { false, true })
            {
                var expected = attribute ? XmlEscaping.EscapeAttribute(input) : XmlEscaping.EscapeText(input);
                var fromString = new StingyWriter();
                var fromUtf8 = new StingyWriter();
                var utf8 = Encoding.UTF8.GetBytes(input);
                if (attribute)
                {
                    XmlEscaping.EscapeAttribute(input, fromString);
                    XmlEscaping.EscapeAttribute(utf8, fromUtf8);
                }
                else
                {
                    XmlEscaping.EscapeText(input, fromString);
                    XmlEscaping.EscapeText(utf8, fromUtf8);
                }
                Assert.That(S(fromString.Written), Is.EqualTo(expected));
                Assert.That(S(fromUtf8.Written), Is.EqualTo(expected));

                var unescaped = new StingyWriter();
                XmlEscaping.Unescape(fromUtf8.Written, unescaped);
                var roundTrip = input.Replace("\u0001", "\uFFFD").Replace("\uFFFF", "\uFFFD");
                if (attribute)
                    Assert.That(XmlEscaping.UnescapeAttributeToString(fromUtf8.Written), Is.EqualTo(roundTrip));
                else
                    Assert.That(S(unescaped.Written), Is.EqualTo(roundTrip));
            }
        }
    }

    private static IEnumerable<TestCaseData> UnescapeCases()
    {
        yield return new TestCaseData("plain", "plain").SetName("{m}(plain)");
        yield return new TestCaseData("&lt;&gt;&amp;&quot;&apos;", "<>&\"'").SetName("{m}(entities)");
        yield return new TestCaseData("&#65;&#x41;", "AA").SetName("{m}(decimal and hex)");
        yield return new TestCaseData("&#x0000041;&#00065;", "AA").SetName("{m}(leading zeros)");
        yield return new TestCaseData("&#x10FFFF;&#x1F600;&#xe9;", "\U0010FFFF\U0001F600é").SetName("{m}(astral and lowercase hex)");
        yield return new TestCaseData("&#9;&#10;&#13;", "\t\n\r").SetName("{m}(whitespace references kept)");
        yield return new TestCaseData("a\r\nb\rc", "a\nb\nc").SetName("{m}(line ends normalized)");
    }

    [TestCaseSource(nameof(UnescapeCases))]
    public void Unescapes(string input, string expected)
    {
        var bytes = Encoding.UTF8.GetBytes(input);
        Assert.That(XmlEscaping.UnescapeToString(bytes), Is.EqualTo(expected));
        var output = new ArrayBufferWriter<byte>();
        XmlEscaping.Unescape(bytes, output);
        Assert.That(S(output.WrittenSpan), Is.EqualTo(expected));
        var span = new byte[bytes.Length];
        Assert.That(XmlEscaping.TryUnescape(bytes, span, out var written), Is.True);
        Assert.That(S(span.AsSpan(0, written)), Is.EqualTo(expected));
    }

    [TestCase("&")]
    [TestCase("a & b")]
    [TestCase("&;")]
    [TestCase("&amp")]
    [TestCase("&#;")]
    [TestCase("&#x;")]
    [TestCase("&#0;")]
    [TestCase("&#x1F;")]
    [TestCase("&#xD800;")]
    [TestCase("&#xFFFE;")]
    [TestCase("&#x110000;")]
    [TestCase("&#99999999999999999999;")]
    [TestCase("&#12a;")]
    [TestCase("&nbsp;")]
    [TestCase("&LT;")]
    [TestCase("&#X41;")]
    public void RejectsMalformedReferences(string input)
    {
        var bytes = Encoding.UTF8.GetBytes(input);
        Assert.Throws<FormatException>(() => XmlEscaping.UnescapeToString(bytes));
        Assert.Throws<FormatException>(() => XmlEscaping.Unescape(bytes, new ArrayBufferWriter<byte>()));
        Assert.Throws<FormatException>(() => XmlEscaping.TryUnescape(bytes, new byte[64], out _));
    }

    [Test]
    public void TryUnescapeFailsWhenTheDestinationIsTooShort()
    {
        Assert.That(XmlEscaping.TryUnescape("&#x1F600;"u8, new byte[3], out _), Is.False);
        Assert.That(XmlEscaping.TryUnescape("abc&amp;"u8, new byte[3], out _), Is.False);
        Assert.That(XmlEscaping.TryUnescape("ab\r\n"u8, new byte[2], out _), Is.False);
        Assert.That(XmlEscaping.TryUnescape("abc&amp;"u8, new byte[4], out var written), Is.True);
        Assert.That(written, Is.EqualTo(4));
    }

    [Test]
    public void UnescapesTheSpec62RouteBodyInSmallChunks()
    {
        var body = "&lt;success xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"&gt;dj1ybkFPaVV0c2c=&lt;/success&gt;"u8;
        var output = new StingyWriter();
        XmlEscaping.Unescape(body, output);
        Assert.That(S(output.Written), Is.EqualTo("<success xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\">dj1ybkFPaVV0c2c=</success>"));
    }

    [Test]
    public void EscapingSpansDoesNotAllocate()
    {
        var output = new ArrayBufferWriter<byte>(4096);
        var destination = new byte[256];
        var utf8 = "a&b<c>\"d'\r\n é \U0001F600"u8.ToArray();
        const string Text = "a&b<c>\"d'\r\n é \U0001F600";
        long Run()
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < 100; i++)
            {
                output.ResetWrittenCount();
                XmlEscaping.EscapeText(utf8, output);
                XmlEscaping.EscapeAttribute(Text, output);
                XmlEscaping.TryEscapeAttribute(utf8, destination, out _);
                XmlEscaping.Unescape("&lt;x&gt;&#x1F600;"u8, output);
                XmlEscaping.TryUnescape("&amp;&apos;"u8, destination, out _);
            }
            return GC.GetAllocatedBytesForCurrentThread() - before;
        }
        Run();
        Assert.That(Run(), Is.Zero);
    }
}
