using System.Buffers;
using System.Buffers.Text;
using System.Text;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Sasl;
using ConnMgr.Protocol.Xml;

namespace ConnMgr.Benchmarks.Load;

/// <summary>
/// What every generated client writes, prepared once per run as UTF-8: the stream header, STARTTLS, the bind
/// and session IQs, presence, the stream end, and the pieces of a chat message, which
/// <see cref="WriteChat"/> assembles straight into the client's output without allocating.
/// </summary>
internal sealed class ClientStanzas
{
    /// <summary>Longest decimal long (19 digits) plus a sign.</summary>
    private const int MaxLongDigits = 20;

    private readonly byte[] _userPrefix;
    private readonly byte[] _userSuffix;
    private readonly byte[] _messageHead;
    private readonly byte[] _messageMiddle;
    private readonly byte[] _filler;
    private readonly int _bodySize;

    public ClientStanzas(LoadOptions options)
    {
        Header = Build(w => XmppElements.WriteStreamHeader(w, from: null, to: options.Domain, id: null, version: "1.0", lang: "en", includeXmlDeclaration: true));
        StartTls = Encoding.UTF8.GetBytes($"<starttls xmlns='{XmppNamespaces.Tls}'/>");
        Bind = Build(w =>
        {
            var writer = new XmlBufferWriter(w);
            writer.StartElement("iq"u8);
            writer.Attribute("type"u8, "set");
            writer.Attribute("id"u8, "bind1");
            writer.StartElement("bind"u8, XmppNamespaces.Bind);
            writer.StartElement("resource"u8);
            writer.Text(options.Resource);
            writer.EndAll();
        });
        Session = Encoding.UTF8.GetBytes($"<iq type='set' id='sess1'><session xmlns='{XmppNamespaces.Session}'/></iq>");
        Presence = "<presence/>"u8.ToArray();
        StreamEnd = "</stream:stream>"u8.ToArray();
        Mechanism = Encoding.UTF8.GetBytes(options.MechanismName);

        var percent = options.UserPattern.IndexOf("%d", StringComparison.Ordinal);
        _userPrefix = Encoding.UTF8.GetBytes(XmlEscaping.EscapeAttribute(options.UserPattern[..percent]));
        _userSuffix = Encoding.UTF8.GetBytes(XmlEscaping.EscapeAttribute(options.UserPattern[(percent + 2)..]));
        _messageHead = "<message type='chat' to='"u8.ToArray();
        _messageMiddle = Encoding.UTF8.GetBytes($"@{XmlEscaping.EscapeAttribute(options.Domain)}'><body>");
        _bodySize = options.BodySize;
        // Filler after the timestamp: plain ASCII words, so every byte is one character and needs no escaping.
        var filler = new StringBuilder();
        while (filler.Length < options.BodySize)
            filler.Append("the quick brown fox jumps over the lazy dog ");
        _filler = Encoding.ASCII.GetBytes(filler.ToString(0, options.BodySize));
    }

    public byte[] Header { get; }
    public byte[] StartTls { get; }
    public byte[] Bind { get; }
    public byte[] Session { get; }
    public byte[] Presence { get; }
    public byte[] StreamEnd { get; }
    public byte[] Mechanism { get; }

    /// <summary>
    /// Writes <c>&lt;message type='chat' to='USER@DOMAIN'&gt;&lt;body&gt;TIMESTAMP filler&lt;/body&gt;&lt;/message&gt;</c>:
    /// the body starts with the sender's <see cref="System.Diagnostics.Stopwatch"/> timestamp (CLOCK_MONOTONIC,
    /// the same in every process of the box), padded to the body size. Returns the bytes written.
    /// </summary>
    public int WriteChat(IBufferWriter<byte> output, int toNumber, long timestamp)
    {
        var tail = "</body></message>"u8;
        var max = _messageHead.Length + _userPrefix.Length + MaxLongDigits + _userSuffix.Length + _messageMiddle.Length + _bodySize + tail.Length;
        var span = output.GetSpan(max);
        var n = Copy(span, 0, _messageHead);
        n = Copy(span, n, _userPrefix);
        Utf8Formatter.TryFormat(toNumber, span[n..], out var written);
        n += written;
        n = Copy(span, n, _userSuffix);
        n = Copy(span, n, _messageMiddle);
        var bodyStart = n;
        Utf8Formatter.TryFormat(timestamp, span[n..], out written);
        n += written;
        span[n++] = (byte)' ';
        n = Copy(span, n, _filler.AsSpan(0, Math.Max(0, _bodySize - (n - bodyStart))));
        n = Copy(span, n, tail);
        output.Advance(n);
        return n;

        static int Copy(Span<byte> span, int at, ReadOnlySpan<byte> bytes)
        {
            bytes.CopyTo(span[at..]);
            return at + bytes.Length;
        }
    }

    /// <summary>The sender's timestamp at the start of a chat body, or false if the body is not ours.</summary>
    public static bool TryReadTimestamp(ReadOnlySpan<byte> bodyText, out long timestamp)
        => Utf8Parser.TryParse(bodyText, out timestamp, out var consumed) && consumed < bodyText.Length && bodyText[consumed] == (byte)' ';

    /// <summary><c>&lt;auth mechanism='M'&gt;base64&lt;/auth&gt;</c> (RFC 6120 6.4.2), or a <c>&lt;response/&gt;</c>.</summary>
    public static void WriteSasl(IBufferWriter<byte> output, ReadOnlySpan<byte> name, ReadOnlySpan<byte> mechanism, ReadOnlySpan<byte> data)
    {
        var writer = new XmlBufferWriter(output);
        writer.StartElement(name, XmppNamespaces.Sasl);
        if (!mechanism.IsEmpty)
            writer.Attribute("mechanism"u8, mechanism);
        writer.CloseStartTag();
        SaslBase64.Encode(data, output);
        writer.EndElement();
    }

    private static byte[] Build(Action<ArrayBufferWriter<byte>> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        write(buffer);
        return buffer.WrittenSpan.ToArray();
    }
}
