using System.Xml.Linq;
using NUnit.Framework;

namespace ConnMgr.Tests.OpenfireDouble;

/// <summary>The double's own frame splitter and serialiser: it must not invent failures the edge would be blamed for.</summary>
[TestFixture]
public sealed class XmlFrameSplitterTests
{
    private const string Stream =
        "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='cm1/l'> "
        + "<route streamid='a' note='x > y' more=\"/>\"><message><body>1 &lt; 2 <![CDATA[<not/>]]><!-- <c> --></body></message></route>"
        + "<iq type='result' id='r'/>\n\t"
        + "<a><?pi x?><b/></a></stream:stream>";

    private static readonly (FrameKind, string)[] s_expected =
    [
        (FrameKind.Header, "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='cm1/l'>"),
        (FrameKind.Whitespace, " "),
        (FrameKind.Element, "<route streamid='a' note='x > y' more=\"/>\"><message><body>1 &lt; 2 <![CDATA[<not/>]]><!-- <c> --></body></message></route>"),
        (FrameKind.Element, "<iq type='result' id='r'/>"),
        (FrameKind.Whitespace, "\n\t"),
        (FrameKind.Element, "<a><?pi x?><b/></a>"),
        (FrameKind.StreamEnd, "</stream:stream>"),
    ];

    [Test]
    public void Splits_the_same_way_at_every_split_point()
    {
        for (int split = 0; split <= Stream.Length; split++)
        {
            var splitter = new XmlFrameSplitter(1000);
            splitter.Append(Stream.AsSpan(0, split));
            splitter.Append(Stream.AsSpan(split));

            Assert.That(Drain(splitter), Is.EqualTo(Merge(s_expected, split)), $"split at {split}");
        }
    }

    [Test]
    public void Splits_the_same_way_one_character_at_a_time()
    {
        var splitter = new XmlFrameSplitter(1000);
        foreach (char c in Stream)
        {
            splitter.Append([c]);
        }

        Assert.That(Drain(splitter).Where(f => f.Item1 != FrameKind.Whitespace), Is.EqualTo(s_expected.Where(f => f.Item1 != FrameKind.Whitespace)));
    }

    [TestCase("<a>\u0000</a>", TestName = "Splitter rejects NUL")]
    [TestCase("<a><b></a>", TestName = "Splitter rejects a mismatched end tag")]
    [TestCase("<!DOCTYPE a>", TestName = "Splitter rejects a DTD")]
    [TestCase("<a>0123456789abcdef</a>", TestName = "Splitter rejects an element over the limit")]
    public void Rejects(string input)
    {
        var splitter = new XmlFrameSplitter(16);
        splitter.Append("<stream:stream>");

        Assert.That(() => splitter.Append(input), Throws.InstanceOf<XmlFrameException>());
    }

    [Test]
    public void Serialises_like_dom4j()
    {
        var element = new XElement("x", new XAttribute("a", "1 /> \" &"), new XElement("empty"), "t /> & <");

        Assert.That(DoubleWire.Xml(element), Is.EqualTo("<x a=\"1 /&gt; &quot; &amp;\"><empty/>t /&gt; &amp; &lt;</x>"));
    }

    private static List<(FrameKind, string)> Drain(XmlFrameSplitter splitter)
    {
        List<(FrameKind, string)> frames = [];
        while (splitter.TryRead(out XmlFrame frame))
        {
            frames.Add((frame.Kind, frame.Text));
        }

        return frames;
    }

    /// <summary>Whitespace is reported per Append call, so a split inside a whitespace run yields two pieces.</summary>
    private static List<(FrameKind, string)> Merge((FrameKind, string)[] expected, int split)
    {
        List<(FrameKind, string)> frames = [];
        int position = Stream.IndexOf("<stream:stream", StringComparison.Ordinal);
        foreach ((FrameKind kind, string text) in expected)
        {
            int at = Stream.IndexOf(text, position, StringComparison.Ordinal);
            if (kind == FrameKind.Whitespace && split > at && split < at + text.Length)
            {
                frames.Add((kind, text[..(split - at)]));
                frames.Add((kind, text[(split - at)..]));
            }
            else
            {
                frames.Add((kind, text));
            }

            position = at + text.Length;
        }

        return frames;
    }
}
