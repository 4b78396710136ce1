using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.InteropServices;
using System.Text;
using ConnMgr.Protocol.Xml;
using NUnit.Framework;
using static ConnMgr.Tests.Protocol.Scanner.ScanHarness;

namespace ConnMgr.Tests.Protocol.Scanner;

[TestFixture]
public sealed class ScannerBehaviourTests
{
    /// <summary>A stanza of exactly <paramref name="size"/> bytes with nesting, attributes, references, CDATA and multi-byte text.</summary>
    private static byte[] BigStanza(int size)
    {
        const string open = "<message to='juliet@example.com' type='chat' id='big'><body>";
        const string close = "</body></message>";
        const string chunk = "<span class='x' data-n='&quot;1&quot;'>caf\u00E9 &amp; \u65E5\u672C \U0001F600 &#x263A;<![CDATA[<raw> ]] ]]]></span>\n";
        var builder = new StringBuilder(open);
        var budget = size - Encoding.UTF8.GetByteCount(open) - Encoding.UTF8.GetByteCount(close);
        var chunkBytes = Encoding.UTF8.GetByteCount(chunk);
        for (; budget >= chunkBytes; budget -= chunkBytes)
            builder.Append(chunk);
        builder.Append('x', budget).Append(close);
        var bytes = Utf8(builder.ToString());
        Assert.That(bytes, Has.Length.EqualTo(size));
        return bytes;
    }

    [Test]
    public void A256KiBStanzaFedOneBytePerReadIsScannedOnce()
    {
        var header = Utf8(Header);
        var stanza = BigStanza(XmlScannerOptions.Client.MaxElementBytes);
        var input = Bytes(header, stanza);
        // A real pipe (4 KiB segments), never paused, read after every single byte written.
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 0, resumeWriterThreshold: 0, useSynchronizationContext: false));
        var scanner = new XmppStreamScanner(XmlScannerOptions.Client);
        var frames = new List<(XmlFrameKind Kind, byte[] Bytes)>();
        var calls = 0;
        foreach (var b in input)
        {
            pipe.Writer.GetSpan(1)[0] = b;
            pipe.Writer.Advance(1);
            var flush = pipe.Writer.FlushAsync();
            Assert.That(flush.IsCompletedSuccessfully, Is.True);
            Assert.That(pipe.Reader.TryRead(out var result), Is.True);
            var buffer = result.Buffer;
            SequencePosition consumed = buffer.Start, examined = buffer.End;
            while (true)
            {
                calls++;
                var status = scanner.Scan(buffer, out var c, out var e, out var frame);
                if (status == ScanStatus.Frame)
                {
                    frames.Add((frame.Kind, frame.Bytes.ToArray()));
                    buffer = buffer.Slice(c);
                    consumed = examined = c;
                    continue;
                }
                Assert.That(status, Is.EqualTo(ScanStatus.NeedMoreData), scanner.ErrorText);
                consumed = c;
                examined = e;
                break;
            }
            pipe.Reader.AdvanceTo(consumed, examined);
        }

        Assert.That(frames.Select(f => f.Kind), Is.EqualTo(new[] { XmlFrameKind.StreamHeader, XmlFrameKind.Element }));
        Assert.That(frames[1].Bytes, Is.EqualTo(stanza));
        Assert.That(calls, Is.EqualTo(input.Length + 2), "one call per read, plus one after each frame");
        // Each byte goes through the state machine exactly once: total work is n, not n^2 / 2.
        Assert.That(scanner.BytesExamined, Is.EqualTo(input.Length));
        Assert.That(scanner.BytesExamined, Is.LessThanOrEqualTo(2L * input.Length));
    }

    private static byte[] StanzaMix(int count)
    {
        string[] stanzas =
        [
            "<message to='romeo@example.net/orchard' from='juliet@example.com/balcony' type='chat' id='m{0}'><body>Wherefore art thou, Romeo? &lt;3 &amp; more</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
            "<presence from='juliet@example.com/balcony' id='p{0}'><show>away</show><status>\u0412 \u043F\u0443\u0442\u0438 \u2014 \u65C5\u884C\u4E2D \U0001F6EB</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://psi-im.org' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence>",
            "<iq type='result' id='r{0}' to='juliet@example.com/balcony'><query xmlns='jabber:iq:roster' ver='ver7'><item jid='romeo@example.net' name='Romeo' subscription='both'><group>Friends</group></item><item jid='nurse@example.com' subscription='to'/></query></iq>",
            "<iq type='get' id='d{0}' to='example.com'><query xmlns='http://jabber.org/protocol/disco#info' node='x'/></iq>",
            "<message xmlns:x='jabber:x:oob' type='normal' id='o{0}'><x:x><x:url>https://example.com/a?b=1&amp;c=2</x:url></x:x><body><![CDATA[<not markup>]]></body></message>",
        ];
        var builder = new StringBuilder();
        for (var i = 0; i < count; i++)
            builder.Append(string.Format(stanzas[i % stanzas.Length], i)).Append(i % 7 == 0 ? "\n" : "");
        return Utf8(builder.ToString());
    }

    private static int ScanAll(XmppStreamScanner scanner, ReadOnlySequence<byte> buffer)
    {
        var frames = 0;
        while (scanner.Scan(buffer, out var consumed, out _, out _) == ScanStatus.Frame)
        {
            frames++;
            buffer = buffer.Slice(consumed);
        }
        return frames;
    }

    [TestCase(false, TestName = "ScanningAllocatesNothingPerStanza_SingleSegment")]
    [TestCase(true, TestName = "ScanningAllocatesNothingPerStanza_4KiBSegments")]
    public void ScanningAllocatesNothingPerStanza(bool segmented)
    {
        var stanzas = StanzaMix(500);
        var sequence = segmented ? SplitEvery(stanzas, 4096) : new ReadOnlySequence<byte>(stanzas);
        for (var warmup = 0; warmup < 3; warmup++)
            ScanAll(new XmppStreamScanner(new XmlScannerOptions { ExpectStreamHeader = false }), sequence);

        var scanner = new XmppStreamScanner(new XmlScannerOptions { ExpectStreamHeader = false });
        var before = GC.GetAllocatedBytesForCurrentThread();
        var frames = ScanAll(scanner, sequence);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.That(scanner.ErrorCondition, Is.EqualTo(StreamErrorCondition.None), scanner.ErrorText);
        Assert.That(frames, Is.GreaterThanOrEqualTo(500));
        Assert.That(allocated, Is.Zero);
    }

    private static ReadOnlySequence<byte> SplitEvery(byte[] data, int size)
    {
        var cuts = new List<int>();
        for (var at = size; at < data.Length; at += size)
            cuts.Add(at);
        return Support.SequenceFactory.SplitAt(data, cuts.ToArray());
    }

    [Test]
    public void AScannerIsSmall()
    {
        // Idle connections are the common case (design target: about 6 KiB per idle connection in all).
        var options = XmlScannerOptions.Client;
        _ = new XmppStreamScanner(options);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var scanner = new XmppStreamScanner(options);
        var size = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.That(size, Is.LessThanOrEqualTo(128));
        GC.KeepAlive(scanner);
    }

    [Test]
    public void FramesAreSlicesOfTheCallersBuffer()
    {
        var input = Utf8(Header + "<message><body>hi</body></message>");
        var scanner = new XmppStreamScanner(XmlScannerOptions.Client);
        var buffer = new ReadOnlySequence<byte>(input);
        Assert.That(scanner.Scan(buffer, out var consumed, out _, out _), Is.EqualTo(ScanStatus.Frame));
        Assert.That(scanner.Scan(buffer.Slice(consumed), out _, out _, out var frame), Is.EqualTo(ScanStatus.Frame));
        Assert.That(MemoryMarshal.TryGetArray(frame.Bytes.First, out var segment), Is.True);
        Assert.That(segment.Array, Is.SameAs(input));
        Assert.That(segment.Offset, Is.EqualTo(Utf8(Header).Length));
    }

    [Test]
    public void HeadersOfTwoStreamsShareTheirCommonStrings()
    {
        // Every idle stream keeps its header: what all streams repeat is kept once, whoever sent it, and
        // however it was written (a character reference, another quote, split across segments).
        var options = new XmlScannerOptions { SharedHeaderValues = ["example.com"] };
        const string First = "<?xml version='1.0'?><stream:stream to='example.com' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='one'>";
        const string Second = "<stream:stream xmlns:stream=\"http://etherx.jabber.org/streams\" xmlns=\"jabber:client\" to=\"exa&#x6D;ple.com\" version=\"1.0\" xml:lang=\"en\" from=\"juliet@example.com\">";
        var one = HeaderOf(new XmppStreamScanner(options), new ReadOnlySequence<byte>(Utf8(First)));
        var two = HeaderOf(new XmppStreamScanner(options), SplitEvery(Utf8(Second), 7));

        Assert.That(two.To, Is.EqualTo("example.com").And.SameAs(one.To));
        Assert.That(two.Version, Is.SameAs(one.Version));
        Assert.That(two.Lang, Is.SameAs(one.Lang));
        Assert.That(two.Prefix, Is.EqualTo("stream").And.SameAs(one.Prefix));
        Assert.That(two.DefaultNamespace, Is.EqualTo("jabber:client").And.SameAs(one.DefaultNamespace));
        var names = one.Attributes.Select(a => a.Key).ToArray();
        Assert.That(two.Attributes.Select(a => a.Key).Where(names.Contains), Has.All.Matches<string>(name => ReferenceEquals(name, names.Single(n => n == name))));
        Assert.That(two.NamespaceDeclarations.Single(d => d.Key == "stream").Value, Is.SameAs(one.NamespaceDeclarations.Single(d => d.Key == "stream").Value));

        // Values no table holds are still read, each stream its own.
        Assert.That(one.Id, Is.EqualTo("one"));
        Assert.That(two.From, Is.EqualTo("juliet@example.com"));
        var three = HeaderOf(new XmppStreamScanner(options), new ReadOnlySequence<byte>(Utf8(Second)));
        Assert.That(three.From, Is.EqualTo(two.From).And.Not.SameAs(two.From));

        static StreamHeader HeaderOf(XmppStreamScanner scanner, ReadOnlySequence<byte> buffer)
        {
            Assert.That(scanner.Scan(buffer, out _, out _, out var frame), Is.EqualTo(ScanStatus.Frame), scanner.ErrorText);
            Assert.That(frame.Kind, Is.EqualTo(XmlFrameKind.StreamHeader));
            return scanner.Header!;
        }
    }

    [Test]
    public void RestartExpectsANewHeader()
    {
        var scanner = new XmppStreamScanner(XmlScannerOptions.Client);
        var buffer = new ReadOnlySequence<byte>(Utf8(Header + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"));
        Assert.That(ScanAll(scanner, buffer), Is.EqualTo(2));
        Assert.That(scanner.Header, Is.Not.Null);

        scanner.Restart();
        Assert.That(scanner.Header, Is.Null);
        Assert.That(scanner.Scan(new ReadOnlySequence<byte>(Utf8("<message/>")), out _, out _, out _), Is.EqualTo(ScanStatus.Error));
        Assert.That(scanner.ErrorCondition, Is.EqualTo(StreamErrorCondition.InvalidNamespace));
    }

    [Test]
    public void RestartAllowsANewXmlDeclarationAndAPrefixDeclaredOnlyOnTheNewHeader()
    {
        var scanner = new XmppStreamScanner(XmlScannerOptions.Client);
        Assert.That(ScanAll(scanner, new ReadOnlySequence<byte>(Utf8(Header))), Is.EqualTo(1));
        scanner.Restart();
        var second = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xmlns:p='urn:p'><p:x/>";
        Assert.That(ScanAll(scanner, new ReadOnlySequence<byte>(Utf8(second))), Is.EqualTo(2));
        Assert.That(scanner.Header!.HadXmlDeclaration, Is.True);
        Assert.That(scanner.ErrorCondition, Is.EqualTo(StreamErrorCondition.None));
    }

    [Test]
    public void PrefixesOfAnEarlierHeaderAreForgottenOnRestart()
    {
        var scanner = new XmppStreamScanner(XmlScannerOptions.Client);
        var first = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xmlns:p='urn:p'>";
        Assert.That(ScanAll(scanner, new ReadOnlySequence<byte>(Utf8(first))), Is.EqualTo(1));
        scanner.Restart();
        Assert.That(ScanAll(scanner, new ReadOnlySequence<byte>(Utf8(Header + "<p:x/>"))), Is.EqualTo(1));
        Assert.That(scanner.ErrorCondition, Is.EqualTo(StreamErrorCondition.BadNamespacePrefix));
    }

    [Test]
    public void RestartDoesNotClearAnError()
    {
        var scanner = new XmppStreamScanner(XmlScannerOptions.Client);
        Assert.That(scanner.Scan(new ReadOnlySequence<byte>(Utf8("<!-- x -->")), out _, out _, out _), Is.EqualTo(ScanStatus.Error));
        scanner.Restart();
        Assert.That(scanner.Scan(new ReadOnlySequence<byte>(Utf8(Header)), out _, out _, out _), Is.EqualTo(ScanStatus.Error));
        Assert.That(scanner.ErrorCondition, Is.EqualTo(StreamErrorCondition.RestrictedXml));
    }

    [Test]
    public void RestartInTheMiddleOfAnElementReturnsItsScratch()
    {
        var scanner = new XmppStreamScanner(XmlScannerOptions.Client);
        var buffer = new ReadOnlySequence<byte>(Utf8(Header + "<message><body>"));
        Assert.That(scanner.Scan(buffer, out var consumed, out _, out _), Is.EqualTo(ScanStatus.Frame));
        Assert.That(scanner.Scan(buffer.Slice(consumed), out _, out _, out _), Is.EqualTo(ScanStatus.NeedMoreData));
        Assert.That(scanner.HoldsScratch, Is.True);
        scanner.Restart();
        Assert.That(scanner.HoldsScratch, Is.False);
    }

    [Test]
    public void IdleScannerHoldsNoScratch()
    {
        var scanner = new XmppStreamScanner(XmlScannerOptions.Client);
        Assert.That(ScanAll(scanner, new ReadOnlySequence<byte>(Utf8(Header + "<message xmlns:a='urn:a'><a:b c='d'/></message>"))), Is.EqualTo(2));
        Assert.That(scanner.HoldsScratch, Is.False);
    }

    [Test]
    public void ABufferThatLostBytesIsAProgrammingError()
    {
        var scanner = new XmppStreamScanner(XmlScannerOptions.Client);
        var buffer = new ReadOnlySequence<byte>(Utf8(Header[..40]));
        Assert.That(scanner.Scan(buffer, out _, out _, out _), Is.EqualTo(ScanStatus.NeedMoreData));
        Assert.That(() => scanner.Scan(buffer.Slice(0, 10), out _, out _, out _), Throws.ArgumentException);
    }

    [Test]
    public void CallingAgainWithoutNewDataStillNeedsMore()
    {
        var scanner = new XmppStreamScanner(XmlScannerOptions.Client);
        var buffer = new ReadOnlySequence<byte>(Utf8(Header[..40]));
        Assert.That(scanner.Scan(buffer, out _, out _, out _), Is.EqualTo(ScanStatus.NeedMoreData));
        Assert.That(scanner.Scan(buffer, out var consumed, out var examined, out _), Is.EqualTo(ScanStatus.NeedMoreData));
        Assert.That(consumed, Is.EqualTo(buffer.Start));
        Assert.That(examined, Is.EqualTo(buffer.End));
        Assert.That(scanner.BytesExamined, Is.EqualTo(40));
    }
}
