using ConnMgr.Protocol.Xml.Scanning;

namespace ConnMgr.Protocol.Xml;

/// <summary>
/// Limits and expectations of one <see cref="XmppStreamScanner"/>. Every limit bounds what the scanner may
/// examine before it gives up, so that a peer can never make the connection buffer more than the limit
/// (each is answered with a <c>policy-violation</c> stream error whose text names the limit).
/// </summary>
public sealed class XmlScannerOptions
{
    /// <summary>
    /// Largest top-level element (stanza), in bytes, from its <c>&lt;</c> to its last <c>&gt;</c>.
    /// Default 256 KiB: RFC 6120 13.12 lets a server limit stanza size; Prosody's
    /// <c>c2s_stanza_size_limit</c> is 256 KiB. Also bounds a stream's closing tag and a run of whitespace
    /// reported as one frame.
    /// </summary>
    public int MaxElementBytes { get; init; } = 256 * 1024;

    /// <summary>
    /// Deepest nesting inside one top-level element, counting the top-level element as 1. Default 48:
    /// the deepest real payloads (XHTML-IM bodies, PubSub items, MAM results wrapped in forwarded messages)
    /// stay well under 20 levels; 48 leaves room and still stops nesting bombs early.
    /// </summary>
    public int MaxDepth { get; init; } = 48;

    /// <summary>
    /// Most attributes (namespace declarations included) on one start tag. Default 64: stanzas carry a
    /// handful; the limit keeps the quadratic duplicate-attribute check bounded (64 * 63 / 2 comparisons).
    /// </summary>
    public int MaxAttributes { get; init; } = 64;

    /// <summary>Longest qualified name (element, attribute or entity name), in bytes. Default 256.</summary>
    public int MaxNameLength { get; init; } = 256;

    /// <summary>
    /// Largest stream prolog, in bytes: byte order mark, XML declaration, whitespace and the stream
    /// header's start tag. Default 8 KiB; real headers are 150 to 400 bytes.
    /// </summary>
    public int MaxHeaderBytes { get; init; } = 8 * 1024;

    /// <summary>
    /// The default namespace the stream header must declare (RFC 6120 4.8.2): <c>jabber:client</c> for
    /// client streams, <c>jabber:connectionmanager</c> on the upstream link (spec section 3). Without a
    /// stream header it is the namespace top-level elements are taken to be in.
    /// </summary>
    public string ContentNamespace { get; init; } = XmppNamespaces.Client;

    /// <summary>
    /// <c>true</c> (default): the input is an XMPP stream that opens with a stream header and may close
    /// with its end tag. <c>false</c>: the input is a sequence of top-level elements with no stream header
    /// (WebSocket messages, BOSH bodies, raw-text routes); a top-level end tag is then an error.
    /// </summary>
    public bool ExpectStreamHeader { get; init; } = true;

    /// <summary>
    /// Stream header values every stream of this kind is likely to carry, the served domain above all: the
    /// <see cref="StreamHeader"/> of each stream takes these very strings rather than copies, and an idle
    /// connection keeps its header. Attribute names, the namespaces and the version are shared without it.
    /// </summary>
    public IReadOnlyList<string> SharedHeaderValues { get; init; } = [];

    private HeaderStrings? _headerStrings;

    // Built once per options object (a benign race may build it twice, from the same strings).
    internal HeaderStrings HeaderStrings => _headerStrings ??= new HeaderStrings(SharedHeaderValues);

    /// <summary>Client-to-server streams: the defaults above.</summary>
    public static XmlScannerOptions Client { get; } = new();

    /// <summary>
    /// The link to the core server: content namespace <c>jabber:connectionmanager</c>, elements up to
    /// 1 MiB (Openfire's own <c>xmpp.parser.buffer.size</c>, spec section 2), and 8 more levels of depth
    /// than a client gets, for the <c>route</c> envelope around a client stanza.
    /// </summary>
    public static XmlScannerOptions UpstreamLink { get; } = new()
    {
        ContentNamespace = XmppNamespaces.ConnectionManagerStream,
        MaxElementBytes = 1024 * 1024,
        MaxDepth = 56,
    };

    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxElementBytes, 16, nameof(MaxElementBytes));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxDepth, 1, nameof(MaxDepth));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxAttributes, 1, nameof(MaxAttributes));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxNameLength, 8, nameof(MaxNameLength));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxHeaderBytes, 64, nameof(MaxHeaderBytes));
        // Scratch offsets are ints: keep the per-element scratch well inside int range.
        ArgumentOutOfRangeException.ThrowIfGreaterThan(MaxDepth, 1 << 16, nameof(MaxDepth));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(MaxAttributes, 1 << 16, nameof(MaxAttributes));
        ArgumentException.ThrowIfNullOrEmpty(ContentNamespace, nameof(ContentNamespace));
        ArgumentNullException.ThrowIfNull(SharedHeaderValues, nameof(SharedHeaderValues));
    }
}
