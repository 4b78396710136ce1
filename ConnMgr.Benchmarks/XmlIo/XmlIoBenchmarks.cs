using System.Buffers;
using BenchmarkDotNet.Attributes;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Xml;

namespace ConnMgr.Benchmarks.XmlIo;

/// <summary>What the edge does with every client stanza: read the addressing and the payload's name.</summary>
[MemoryDiagnoser]
public class XmlReadBenchmarks
{
    private static readonly XmlNamespaceScope ClientStream = XmlNamespaceScope.Create(
        XmppNamespaces.Client, [new KeyValuePair<string, string>("stream", XmppNamespaces.Stream)]);

    private readonly byte[] _message =
        "<message to='juliet@example.com/balcony' type='chat' id='ktx72v49' xml:lang='en'><body>Art thou not Romeo, and a Montague?</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>"u8.ToArray();

    private readonly byte[] _route =
        "<route streamid='cm1-7f3a9c2b' from='example.com' to='cm1'><iq type='result' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>juliet@example.com/balcony</jid></bind></iq></route>"u8.ToArray();

    private readonly byte[] _text = new byte[256];

    [Benchmark(Baseline = true)]
    public int AddressingAndFirstChildName()
    {
        var reader = new XmlElementReader(_message, ClientStream);
        reader.TryGetAttribute("to"u8, out var to);
        reader.TryGetAttribute("type"u8, out var type);
        reader.TryGetAttribute("id"u8, out var id);
        reader.TryGetFirstChild(out var child);
        return to.Length + type.Length + id.Length + child.LocalName.Length;
    }

    [Benchmark]
    public bool ValidateToJid()
    {
        var reader = new XmlElementReader(_message, ClientStream);
        Span<byte> to = stackalloc byte[256];
        return reader.TryCopyAttribute("to"u8, to, out var written) && Jid.IsValid(to[..written]);
    }

    [Benchmark]
    public bool MatchByNameAndNamespace()
    {
        var reader = new XmlElementReader(_message, ClientStream);
        return reader.NameIs("message"u8, XmppNamespaces.Client)
            && reader.AttributeEquals("type"u8, "chat"u8)
            && reader.TryGetChild("active"u8, "http://jabber.org/protocol/chatstates"u8, out _);
    }

    /// <summary>The link's view of a route: envelope attributes, then the nested bind result's JID text.</summary>
    [Benchmark]
    public int RouteToNestedText()
    {
        var route = new XmlElementReader(_route);
        route.TryGetAttribute("streamid"u8, out var streamId);
        if (!route.TryGetFirstChild(out var iq) || !iq.TryGetChild("bind"u8, XmppNamespaces.Bind, out var bind)
            || !bind.TryGetFirstChild(out var jid) || !jid.TryCopyText(_text, out var written))
        {
            return -1;
        }
        return streamId.Length + written;
    }
}

/// <summary>What every stream and every relayed stanza costs to write.</summary>
[MemoryDiagnoser]
public class XmlWriteBenchmarks
{
    private readonly ArrayBufferWriter<byte> _output = new(4096);

    private readonly byte[] _stanza =
        "<message to='juliet@example.com/balcony' type='chat' id='ktx72v49'><body>Art thou not Romeo, and a Montague?</body></message>"u8.ToArray();

    private readonly byte[] _iq = "<iq to='example.com' id='v1' type='get'><query xmlns='jabber:iq:version'/></iq>"u8.ToArray();

    private const string StreamId = "cm1-7f3a9c2b";

    [Benchmark]
    public int StreamHeader()
    {
        _output.ResetWrittenCount();
        XmppElements.WriteStreamHeader(_output, "example.com", "juliet@example.com", StreamId, lang: "en");
        return _output.WrittenCount;
    }

    /// <summary>A client stanza wrapped for the link (spec 6.1).</summary>
    [Benchmark(Baseline = true)]
    public int RoutedStanza()
    {
        _output.ResetWrittenCount();
        var writer = new XmlBufferWriter(_output);
        writer.StartElement("route"u8);
        writer.Attribute("streamid"u8, StreamId);
        writer.Raw(_stanza);
        writer.EndElement();
        return _output.WrittenCount;
    }

    [Benchmark]
    public int StreamErrorWithText()
    {
        _output.ResetWrittenCount();
        XmppElements.WriteStreamError(_output, StreamErrorCondition.PolicyViolation, "Stanza too large", includeStreamNamespaceDeclaration: true);
        return _output.WrittenCount;
    }

    [Benchmark]
    public int ErrorReply()
    {
        _output.ResetWrittenCount();
        XmppElements.TryWriteErrorReply(_output, new XmlElementReader(_iq), StanzaErrorCondition.ServiceUnavailable);
        return _output.WrittenCount;
    }
}
