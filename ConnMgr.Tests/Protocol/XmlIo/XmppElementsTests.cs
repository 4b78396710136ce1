using System.Buffers;
using System.Text;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Xml;
using NUnit.Framework;

namespace ConnMgr.Tests.Protocol.XmlIo;

public class XmppElementsTests
{
    private static readonly XmlNamespaceScope ClientStream = XmlNamespaceScope.Create(
        XmppNamespaces.Client, [new KeyValuePair<string, string>("stream", XmppNamespaces.Stream)]);

    private static string S(ReadOnlySpan<byte> s) => Encoding.UTF8.GetString(s);

    private static byte[] U(string s) => Encoding.UTF8.GetBytes(s);

    [Test]
    public void ClientStreamHeader()
    {
        var output = new ArrayBufferWriter<byte>();
        XmppElements.WriteStreamHeader(output, from: "example.com", to: "juliet@example.com", id: "++TR84Sm6A3hnt3Q065SnAbbk3Y=", lang: "en");
        Assert.That(S(output.WrittenSpan), Is.EqualTo(
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='example.com' "
            + "to='juliet@example.com' id='++TR84Sm6A3hnt3Q065SnAbbk3Y=' version='1.0' xml:lang='en'>"));
    }

    [Test]
    public void LinkStreamHeaderWithDeclaration()
    {
        // Spec 3.2: the CM's header on the link, in jabber:connectionmanager, to the link JID.
        var output = new ArrayBufferWriter<byte>();
        XmppElements.WriteStreamHeader(output, from: null, to: "cm1/link-1", id: null,
            contentNamespace: XmppNamespaces.ConnectionManagerStream, includeXmlDeclaration: true);
        Assert.That(S(output.WrittenSpan), Is.EqualTo(
            "<?xml version='1.0' encoding='UTF-8'?><stream:stream xmlns='jabber:connectionmanager' "
            + "xmlns:stream='http://etherx.jabber.org/streams' to='cm1/link-1' version='1.0'>"));
        var header = output.WrittenSpan[output.WrittenSpan.IndexOf("<stream:stream"u8)..];
        Assert.That(header.StartsWith("<stream:stream"u8), "Openfire matches the literal prefix (spec 2)");
        Assert.That(XmlNamespaceScope.FromStartTag(header).DefaultNamespace, Is.EqualTo(XmppNamespaces.ConnectionManagerStream));
    }

    [Test]
    public void StreamHeaderEscapesValuesAndOmitsVersionOnRequest()
    {
        var output = new ArrayBufferWriter<byte>();
        XmppElements.WriteStreamHeader(output, from: "a'b", to: null, id: "<id>", version: null);
        Assert.That(S(output.WrittenSpan), Is.EqualTo(
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='a&apos;b' id='&lt;id>'>"));
    }

    [Test]
    public void StreamEnd()
    {
        var output = new ArrayBufferWriter<byte>();
        XmppElements.WriteStreamEnd(output);
        Assert.That(S(output.WrittenSpan), Is.EqualTo("</stream:stream>"));
    }

    [Test]
    public void StreamErrorOnAClientStream()
    {
        var output = new ArrayBufferWriter<byte>();
        XmppElements.WriteStreamError(output, StreamErrorCondition.NotWellFormed);
        Assert.That(S(output.WrittenSpan), Is.EqualTo(
            "<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"));
    }

    [Test]
    public void StreamErrorWithTextAndDeclaration()
    {
        // Spec 0.1 point 10: Openfire declares the stream prefix on the error element itself.
        var output = new ArrayBufferWriter<byte>();
        XmppElements.WriteStreamError(output, StreamErrorCondition.PolicyViolation, "Stanza larger than 262144 bytes & <more>", includeStreamNamespaceDeclaration: true);
        Assert.That(S(output.WrittenSpan), Is.EqualTo(
            "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
            + "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Stanza larger than 262144 bytes &amp; &lt;more&gt;</text></stream:error>"));
        var error = new XmlElementReader(output.WrittenSpan);
        Assert.That(error.NameIs("error"u8, XmppNamespaces.Stream));
        Assert.That(error.TryGetChild("text"u8, XmppNamespaces.Streams, out var text));
        Assert.That(text.GetText(), Is.EqualTo("Stanza larger than 262144 bytes & <more>"));
    }

    private static IEnumerable<StreamErrorCondition> StreamConditions()
        => Enum.GetValues<StreamErrorCondition>().Where(c => c != StreamErrorCondition.None);

    [TestCaseSource(nameof(StreamConditions))]
    public void EveryStreamErrorConditionReadsBack(StreamErrorCondition condition)
    {
        var output = new ArrayBufferWriter<byte>();
        XmppElements.WriteStreamError(output, condition);
        var error = new XmlElementReader(output.WrittenSpan, ClientStream);
        Assert.That(error.NameIs("error"u8, XmppNamespaces.Stream));
        var child = error.FirstChild;
        Assert.That(child.NamespaceIs(XmppNamespaces.Streams));
        Assert.That(StreamErrorConditions.TryParse(S(child.LocalName), out var parsed) && parsed == condition);
    }

    [Test]
    public void StreamErrorNeedsACondition()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => XmppElements.WriteStreamError(new ArrayBufferWriter<byte>(), StreamErrorCondition.None));
    }

    [Test]
    public void StanzaErrorWithDefaultsAndLegacyCode()
    {
        var output = new ArrayBufferWriter<byte>();
        XmppElements.WriteStanzaError(output, StanzaErrorCondition.ServiceUnavailable, includeLegacyCode: true);
        Assert.That(S(output.WrittenSpan), Is.EqualTo(
            "<error type='cancel' code='503'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"));
    }

    [Test]
    public void StanzaErrorWithTypeTextAndBy()
    {
        var output = new ArrayBufferWriter<byte>();
        XmppElements.WriteStanzaError(output, StanzaErrorCondition.JidMalformed, StanzaErrorType.Cancel, "bad 'to'", by: "example.com");
        Assert.That(S(output.WrittenSpan), Is.EqualTo(
            "<error type='cancel' by='example.com'><jid-malformed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
            + "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>bad 'to'</text></error>"));
    }

    private static IEnumerable<StanzaErrorCondition> StanzaConditions() => Enum.GetValues<StanzaErrorCondition>();

    [TestCaseSource(nameof(StanzaConditions))]
    public void EveryStanzaErrorConditionReadsBack(StanzaErrorCondition condition)
    {
        var output = new ArrayBufferWriter<byte>();
        XmppElements.WriteStanzaError(output, condition, includeLegacyCode: true);
        var error = new XmlElementReader(output.WrittenSpan, ClientStream);
        Assert.That(error.NameIs("error"u8, XmppNamespaces.Client));
        Assert.That(error.GetAttribute("type"u8), Is.EqualTo(condition.DefaultType().ToAttributeValue()));
        Assert.That(error.GetAttribute("code"u8), Is.EqualTo(condition.LegacyCode().ToString(System.Globalization.CultureInfo.InvariantCulture)));
        var child = error.FirstChild;
        Assert.That(child.NamespaceIs(XmppNamespaces.Stanzas));
        Assert.That(StanzaErrorConditions.TryParse(S(child.LocalName), out var parsed) && parsed == condition);
    }

    [Test]
    public void ErrorReplySwapsAddressesAndKeepsId()
    {
        var stanza = U("<iq from='juliet@example.com/balcony' to='example.com' id='a&amp;b' type='get'><query xmlns='jabber:iq:version'/></iq>");
        var output = new ArrayBufferWriter<byte>();
        Assert.That(XmppElements.TryWriteErrorReply(output, new XmlElementReader(stanza, ClientStream), StanzaErrorCondition.ServiceUnavailable), Is.True);
        Assert.That(S(output.WrittenSpan), Is.EqualTo(
            "<iq from='example.com' to='juliet@example.com/balcony' id='a&amp;b' type='error'>"
            + "<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"));
    }

    [Test]
    public void ErrorReplyWithOriginalContentAndDeclarations()
    {
        var stanza = U("<message xmlns='jabber:client' to=\"romeo@example.net\" id=\"it's\" type='chat'><body>hi</body></message>");
        var output = new ArrayBufferWriter<byte>();
        XmppElements.TryWriteErrorReply(output, new XmlElementReader(stanza), StanzaErrorCondition.RecipientUnavailable,
            text: "offline", includeOriginalContent: true, includeLegacyCode: true);
        Assert.That(S(output.WrittenSpan), Is.EqualTo(
            "<message xmlns='jabber:client' from='romeo@example.net' id=\"it's\" type='error'><body>hi</body>"
            + "<error type='wait' code='404'><recipient-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
            + "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>offline</text></error></message>"));
        var reply = new XmlElementReader(output.WrittenSpan);
        Assert.That(reply.GetAttribute("id"u8), Is.EqualTo("it's"));
        Assert.That(reply.HasAttribute("to"u8), Is.False);
    }

    [Test]
    public void NeverAnswersAnErrorWithAnError()
    {
        var stanza = U("<message type='error' id='x'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
        var output = new ArrayBufferWriter<byte>();
        Assert.That(XmppElements.TryWriteErrorReply(output, new XmlElementReader(stanza), StanzaErrorCondition.BadRequest), Is.False);
        Assert.That(output.WrittenCount, Is.Zero);
    }

    [Test]
    public void HelpersDoNotAllocate()
    {
        var output = new ArrayBufferWriter<byte>(4096);
        var stanza = U("<iq from='juliet@example.com/balcony' to='example.com' id='v1' type='get'><query xmlns='jabber:iq:version'/></iq>");
        long Run()
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < 50; i++)
            {
                output.ResetWrittenCount();
                XmppElements.WriteStreamHeader(output, "example.com", "juliet@example.com", "abc", lang: "en");
                XmppElements.WriteStreamError(output, StreamErrorCondition.Conflict, "Replaced by new connection", true);
                XmppElements.WriteStanzaError(output, StanzaErrorCondition.ItemNotFound);
                XmppElements.TryWriteErrorReply(output, new XmlElementReader(stanza), StanzaErrorCondition.FeatureNotImplemented, includeOriginalContent: true);
                XmppElements.WriteStreamEnd(output);
            }
            return GC.GetAllocatedBytesForCurrentThread() - before;
        }
        Run();
        Assert.That(Run(), Is.Zero);
    }
}
