using System.Buffers;
using System.Text;
using ConnMgr.Benchmarks.Load;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Xml;
using NUnit.Framework;

namespace ConnMgr.Tests.Load;

public sealed class ClientStanzasTests
{
    private static LoadOptions Options(params string[] args) => LoadOptions.Parse(args, out _)!;

    [TestCase(150)]
    [TestCase(24)]
    [TestCase(1000)]
    public void ChatMessageCarriesTheTimestampAndABodyOfTheConfiguredSize(int bodySize)
    {
        var stanzas = new ClientStanzas(Options("--body", bodySize.ToString(), "--users", "u%d", "--domain", "example.test"));
        var output = new ArrayBufferWriter<byte>();
        var written = stanzas.WriteChat(output, 1234, 987_654_321_012);
        Assert.That(written, Is.EqualTo(output.WrittenCount));

        var message = new XmlElementReader(output.WrittenSpan, XmlNamespaceScope.Create(XmppNamespaces.Client));
        Assert.That(message.NameIs("message"u8, XmppNamespaces.Client), Is.True);
        Assert.That(message.GetAttribute("to"u8), Is.EqualTo("u1234@example.test"));
        Assert.That(message.GetAttribute("type"u8), Is.EqualTo("chat"));
        Assert.That(message.TryGetChild("body"u8, XmppNamespaces.Client, out var body), Is.True);
        Assert.That(body.GetText(), Has.Length.EqualTo(bodySize));
        Assert.That(ClientStanzas.TryReadTimestamp(body.InnerRaw, out var timestamp), Is.True);
        Assert.That(timestamp, Is.EqualTo(987_654_321_012));
    }

    [Test]
    public void ChatMessagePassesTheStreamScanner()
    {
        var stanzas = new ClientStanzas(Options());
        var output = new ArrayBufferWriter<byte>();
        output.Write(stanzas.Header);
        stanzas.WriteChat(output, 1, 42);
        var scanner = new XmppStreamScanner(XmlScannerOptions.Client);
        var buffer = new ReadOnlySequence<byte>(output.WrittenMemory);
        Assert.That(scanner.Scan(buffer, out var consumed, out _, out var header), Is.EqualTo(ScanStatus.Frame));
        Assert.That(header.Header!.To, Is.EqualTo("localhost"));
        Assert.That(scanner.Scan(buffer.Slice(consumed), out _, out _, out var frame), Is.EqualTo(ScanStatus.Frame));
        Assert.That(frame.Kind, Is.EqualTo(XmlFrameKind.Element));
    }

    [TestCase("123 abc", true, 123L)]
    [TestCase("123", false, 0L)]
    [TestCase("hello 123", false, 0L)]
    [TestCase("", false, 0L)]
    public void TimestampIsOnlyReadFromOurBodies(string body, bool expected, long value)
    {
        Assert.That(ClientStanzas.TryReadTimestamp(Encoding.UTF8.GetBytes(body), out var timestamp), Is.EqualTo(expected));
        if (expected)
            Assert.That(timestamp, Is.EqualTo(value));
    }

    [Test]
    public void SaslElementsCarryBase64()
    {
        var output = new ArrayBufferWriter<byte>();
        ClientStanzas.WriteSasl(output, "auth"u8, "SCRAM-SHA-1"u8, "n,,n=user,r=abc"u8);
        Assert.That(Encoding.UTF8.GetString(output.WrittenSpan),
            Is.EqualTo("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj11c2VyLHI9YWJj</auth>"));
        output.Clear();
        ClientStanzas.WriteSasl(output, "response"u8, default, []);
        Assert.That(Encoding.UTF8.GetString(output.WrittenSpan), Is.EqualTo("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>=</response>"));
    }
}
