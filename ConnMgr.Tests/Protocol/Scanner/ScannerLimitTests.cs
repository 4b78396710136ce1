using ConnMgr.Protocol.Xml;
using NUnit.Framework;
using static ConnMgr.Tests.Protocol.Scanner.ScanHarness;

namespace ConnMgr.Tests.Protocol.Scanner;

/// <summary>Each limit of <see cref="XmlScannerOptions"/> answers with policy-violation naming the limit, and not one byte earlier.</summary>
[TestFixture]
public sealed class ScannerLimitTests
{
    private static XmppStreamScanner ScanToError(byte[] input, XmlScannerOptions options, out ScanHarness.Outcome outcome)
    {
        outcome = ScanAllWays(input, options);
        var scanner = new XmppStreamScanner(options);
        RunSameInput(scanner, input);
        return scanner;
    }

    private static void RunSameInput(XmppStreamScanner scanner, byte[] input)
    {
        var buffer = new System.Buffers.ReadOnlySequence<byte>(input);
        while (scanner.Scan(buffer, out var consumed, out _, out _) == ScanStatus.Frame)
            buffer = buffer.Slice(consumed);
    }

    [Test]
    public void ElementAtTheByteLimitPassesOneMoreByteFails()
    {
        var stanza = "<message><body>" + new string('x', 100) + "</body></message>";
        var exact = new XmlScannerOptions { MaxElementBytes = Utf8(stanza).Length };
        Assert.That(ScanAllWays(Utf8(Header + stanza), exact).Frames[^1], Is.EqualTo(Element(stanza)));

        var tight = new XmlScannerOptions { MaxElementBytes = Utf8(stanza).Length - 1 };
        var scanner = ScanToError(Utf8(Header + stanza), tight, out var outcome);
        Assert.That(outcome.End, Is.EqualTo("Error(PolicyViolation)"));
        Assert.That(scanner.ErrorText, Is.EqualTo($"element exceeds {Utf8(stanza).Length - 1} bytes (MaxElementBytes)"));
    }

    [Test]
    public void ElementLimitIsEnforcedBeforeTheElementEnds()
    {
        // The peer never finishes the element: the scanner must give up once it has seen more than the limit.
        var options = new XmlScannerOptions { MaxElementBytes = 64 };
        var outcome = ScanAllWays(Utf8(Header + "<message><body>" + new string('x', 100)), options);
        Assert.That(outcome.End, Is.EqualTo("Error(PolicyViolation)"));
    }

    [Test]
    public void DefaultElementLimitIs256KiB()
    {
        Assert.That(XmlScannerOptions.Client.MaxElementBytes, Is.EqualTo(262144));
        var stanza = "<message><body>" + new string('x', 262144) + "</body></message>";
        var scanner = new XmppStreamScanner(XmlScannerOptions.Client);
        RunSameInput(scanner, Utf8(Header + stanza));
        Assert.That(scanner.ErrorCondition, Is.EqualTo(StreamErrorCondition.PolicyViolation));
        Assert.That(scanner.ErrorText, Is.EqualTo("element exceeds 262144 bytes (MaxElementBytes)"));
    }

    [Test]
    public void NestingDepth()
    {
        var options = new XmlScannerOptions { MaxDepth = 4 };
        var ok = "<a><b><c><d/></c></b></a>";
        Assert.That(ScanAllWays(Utf8(Header + ok), options).Frames[^1], Is.EqualTo(Element(ok)));
        var scanner = ScanToError(Utf8(Header + "<a><b><c><d><e/></d></c></b></a>"), options, out var outcome);
        Assert.That(outcome.End, Is.EqualTo("Error(PolicyViolation)"));
        Assert.That(scanner.ErrorText, Does.Contain("MaxDepth"));
    }

    [Test]
    public void AttributesPerElement()
    {
        // The header has 4 attributes; the limit applies to it too.
        var options = new XmlScannerOptions { MaxAttributes = 4 };
        Assert.That(ScanAllWays(Utf8(Header + "<m a='1' b='2' c='3' d='4'><n d='1' e='2' f='3' g='4'/></m>"), options).End, Is.EqualTo("NeedMoreData(0)"));
        var scanner = ScanToError(Utf8(Header + "<m a='1' b='2' c='3' d='4' e='5'/>"), options, out var outcome);
        Assert.That(outcome.End, Is.EqualTo("Error(PolicyViolation)"));
        Assert.That(scanner.ErrorText, Does.Contain("MaxAttributes"));
    }

    [Test]
    public void NamespaceDeclarationsCountAsAttributes()
    {
        var options = new XmlScannerOptions { MaxAttributes = 4 };
        var outcome = ScanAllWays(Utf8(Header + "<m xmlns='urn:a' xmlns:b='urn:b' xmlns:c='urn:c' d='1' e='2'/>"), options);
        Assert.That(outcome.End, Is.EqualTo("Error(PolicyViolation)"));
    }

    [TestCase("<{0}/>", TestName = "NameLength_Element")]
    [TestCase("<m {0}='1'/>", TestName = "NameLength_Attribute")]
    [TestCase("<m><n></{0}></n></m>", TestName = "NameLength_EndTag")]
    [TestCase("<m>&{0};</m>", TestName = "NameLength_EntityReference")]
    public void NameLength(string template)
    {
        var options = new XmlScannerOptions { MaxNameLength = 16 };
        var ok = string.Format(template, new string('n', 16));
        Assert.That(ScanAllWays(Utf8(Header + ok), options).End, Is.Not.EqualTo("Error(PolicyViolation)"));
        var scanner = ScanToError(Utf8(Header + string.Format(template, new string('n', 17))), options, out var outcome);
        Assert.That(outcome.End, Is.EqualTo("Error(PolicyViolation)"));
        Assert.That(scanner.ErrorText, Does.Contain("MaxNameLength"));
    }

    [Test]
    public void LongNameIsRejectedBeforeItEnds()
    {
        var options = new XmlScannerOptions { MaxNameLength = 16 };
        Assert.That(ScanAllWays(Utf8(Header + "<m" + new string('n', 40)), options).End, Is.EqualTo("Error(PolicyViolation)"));
    }

    [Test]
    public void HeaderBytes()
    {
        var header = Utf8(Header);
        var exact = new XmlScannerOptions { MaxHeaderBytes = header.Length };
        Assert.That(ScanAllWays(header, exact).Frames, Has.Count.EqualTo(1));
        var scanner = ScanToError(header, new XmlScannerOptions { MaxHeaderBytes = header.Length - 1 }, out var outcome);
        Assert.That(outcome.End, Is.EqualTo("Error(PolicyViolation)"));
        Assert.That(scanner.ErrorText, Does.Contain("MaxHeaderBytes"));
    }

    [Test]
    public void EndlessWhitespaceBeforeTheHeaderIsBounded()
    {
        var options = new XmlScannerOptions { MaxHeaderBytes = 64 };
        Assert.That(ScanAllWays(Utf8(new string(' ', 100)), options).End, Is.EqualTo("Error(PolicyViolation)"));
    }

    [Test]
    public void LongWhitespaceRunsBetweenStanzasAreReportedInPieces()
    {
        var options = new XmlScannerOptions { MaxElementBytes = 64 };
        var outcome = ScanAllWays(Utf8(Header + new string(' ', 200) + "<a/>"), options);
        Assert.That(outcome.Frames[1], Is.EqualTo(Whitespace(new string(' ', 200))));
        Assert.That(outcome.End, Is.EqualTo("NeedMoreData(0)"));
    }

    [Test]
    public void UpstreamLinkDefaults()
    {
        var upstream = XmlScannerOptions.UpstreamLink;
        Assert.That(upstream.MaxElementBytes, Is.EqualTo(1024 * 1024));
        Assert.That(upstream.ContentNamespace, Is.EqualTo("jabber:connectionmanager"));
        Assert.That(upstream.ExpectStreamHeader, Is.True);
        Assert.That(XmlScannerOptions.Client.ContentNamespace, Is.EqualTo("jabber:client"));
    }

    [Test]
    public void InvalidOptionsAreRejected()
    {
        Assert.That(() => new XmppStreamScanner(new XmlScannerOptions { MaxDepth = 0 }), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("MaxDepth"));
        Assert.That(() => new XmppStreamScanner(new XmlScannerOptions { MaxElementBytes = -1 }), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("MaxElementBytes"));
        Assert.That(() => new XmppStreamScanner(new XmlScannerOptions { ContentNamespace = "" }), Throws.ArgumentException.With.Message.Contains("ContentNamespace"));
    }
}
