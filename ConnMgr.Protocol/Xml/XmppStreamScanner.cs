using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Unicode;
using ConnMgr.Protocol.Xml.Scanning;

namespace ConnMgr.Protocol.Xml;

/// <summary>
/// Splits one XMPP stream into frames (stream header, top-level elements, whitespace, stream end) and
/// checks that every byte is XML that RFC 6120 section 11 allows, without building strings or a DOM:
/// a relayed stanza is forwarded as the very bytes the client sent.
/// </summary>
/// <remarks>
/// <para>
/// Incremental: the caller passes all unconsumed bytes; the scanner remembers how many bytes of the
/// unfinished frame it has already scanned (<c>_scanned</c>) and the state of a byte-resumable state
/// machine, so every byte is examined once however the data is split into reads and segments (twice at
/// most where the fast path, <see cref="FastMarkup"/>, hands an unfinished tag over to the state machine).
/// Offsets of names and attribute values inside the unfinished frame stay valid across calls because the
/// caller never consumes an unfinished frame.
/// </para>
/// <para>
/// Memory: the scanner holds a few fields (about 100 bytes). Inside an element it rents one <c>int[]</c>
/// from <see cref="ArrayPool{T}"/> for the open-tag stack, the attributes of the current start tag and the
/// in-scope prefix declarations. It keeps the array for the next element of the same read and returns it
/// whenever it runs out of input between elements (the caller is then about to wait for data), on an error
/// and on <see cref="Restart"/>: an idle stream holds no buffer.
/// </para>
/// <para>
/// Frames: whitespace between top-level elements is reported as soon as it arrives, so one run may come as
/// several frames. The prolog (byte order mark, XML declaration, whitespace) belongs to the header frame.
/// After the stream's end tag only whitespace may follow.
/// </para>
/// <para>Error conditions (RFC 6120 4.9.3), chosen as Prosody and ejabberd answer the same input:</para>
/// <list type="bullet">
/// <item><c>not-well-formed</c>: anything XML 1.0 or Namespaces in XML 1.0 forbids, including malformed
/// UTF-8 (XML 1.0 4.3.3 makes an encoding error fatal; RFC 6120 4.9.3.22 would also allow
/// <c>unsupported-encoding</c>), non-XML characters, character references to them, <c>]]&gt;</c> in text,
/// text or a stray end tag at the top level, misuse of the reserved <c>xml</c>/<c>xmlns</c> prefixes or
/// namespaces, <c>xmlns:p=""</c>, and any data after the stream's end tag other than whitespace.
/// <c>invalid-xml</c> is not used for syntax, only for a self-closing stream header, which is well-formed
/// XML but not a stream.</item>
/// <item><c>restricted-xml</c> (RFC 6120 11.1): comments, processing instructions other than the XML
/// declaration, DTD and other markup declarations (<c>&lt;!DOCTYPE</c>, <c>&lt;!ENTITY</c>...), and
/// references to entities other than the five predefined ones. They are rejected as soon as they are
/// recognised, before the rest of their syntax is read.</item>
/// <item><c>bad-namespace-prefix</c>: a prefix on an element or attribute that is not declared on it, on an
/// ancestor inside the top-level element, or on the stream header (also the reserved <c>xmlns</c> prefix
/// on an element, and an undeclared prefix on the stream element itself).</item>
/// <item><c>invalid-namespace</c>: a first element that is not <c>stream</c> in
/// <c>http://etherx.jabber.org/streams</c>, or a header whose default namespace is missing or not
/// <see cref="XmlScannerOptions.ContentNamespace"/> (RFC 6120 4.8.1, 4.8.2).</item>
/// <item><c>unsupported-encoding</c>: an XML declaration naming an encoding other than UTF-8 (RFC 6120 11.6).</item>
/// <item><c>policy-violation</c>: a limit of <see cref="XmlScannerOptions"/> was exceeded; the text names it.</item>
/// </list>
/// </remarks>
public sealed partial class XmppStreamScanner
{
    private const int NeedMore = -1;
    private const int Failed = -2;
    private const int Continue = 0;
    private const int FrameDone = 1;

    // Records in the rented scratch array. Tags: name offset, name length, colon position in the name (-1 if
    // none). Attributes: name offset, name length, colon, value offset, value length, and a signature of the
    // name (length, first and last byte) that spares most byte comparisons in the duplicate check. Prefix
    // declarations: prefix offset, prefix length, value offset, value length, depth of the declaring element.
    private const int TagFields = 3;
    private const int AttrFields = 6;
    private const int NsFields = 5;
    private const int InitialNsCapacity = 8;

    private const string MalformedUtf8 = "malformed UTF-8";
    private const string NotXmlCharacter = "character not allowed in XML";
    private const string DuplicateAttribute = "duplicate attribute";

    private static ReadOnlySpan<byte> XmlNamespaceUtf8 => "http://www.w3.org/XML/1998/namespace"u8;
    private static ReadOnlySpan<byte> XmlnsNamespaceUtf8 => "http://www.w3.org/2000/xmlns/"u8;
    private static ReadOnlySpan<byte> W3cPrefixUtf8 => "http://www.w3.org/"u8;
    private static ReadOnlySpan<byte> StreamNamespaceUtf8 => "http://etherx.jabber.org/streams"u8;
    private static ReadOnlySpan<byte> CdataOpening => "CDATA["u8;
    private static ReadOnlySpan<byte> XmlTarget => "xml"u8;

    private readonly XmlScannerOptions _options;
    private StreamHeader? _header;
    private string? _errorText;
    private int[]? _scratch;
    private long _bytesExamined;
    private int _scanned;     // bytes of the unfinished frame already scanned
    private int _tokenStart;  // frame offset of the current name (or of '<' of an XML declaration)
    private int _colon;       // frame offset of the current name's colon, -1 if none
    private int _aux;         // character reference value, or position in a literal being matched
    private int _pendingUtf8; // bytes of a UTF-8 sequence split across spans: count << 24 | bytes
    private int _depth;       // open elements in the current frame
    private int _attrCount;   // attributes of the current start tag
    private int _nsCount;     // prefix declarations in scope inside the current frame
    private State _state;
    private State _refReturn; // state to resume after a reference
    private Phase _phase;
    private StreamErrorCondition _error;
    private byte _quote;
    private bool _hadXmlDeclaration;

    public XmppStreamScanner(XmlScannerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        Reset();
    }

    /// <summary>The error the stream must be closed with, once <see cref="Scan"/> has returned <see cref="ScanStatus.Error"/>.</summary>
    public StreamErrorCondition ErrorCondition => _error;

    /// <summary>Why, in words fit for the stream error's <c>&lt;text/&gt;</c> (never contains peer data).</summary>
    public string? ErrorText => _errorText;

    /// <summary>The current stream's header, once seen (cleared by <see cref="Restart"/>).</summary>
    public StreamHeader? Header => _header;

    /// <summary>Bytes fed through the state machine since construction: a test hook proving each byte is scanned once.</summary>
    internal long BytesExamined => _bytesExamined;

    /// <summary>Whether per-element scratch is currently rented (for tests of the idle footprint).</summary>
    internal bool HoldsScratch => _scratch is not null;

    /// <summary>
    /// Starts a new stream after STARTTLS or SASL success (RFC 6120 5.4.3.3, 6.4.6): a new prolog and
    /// header are expected next. An error is kept: stream errors are unrecoverable (RFC 6120 4.9.1.1), the
    /// stream is being closed, and a restart must not revive it.
    /// </summary>
    public void Restart()
    {
        if (_error != StreamErrorCondition.None)
            return;
        Reset();
    }

    private void Reset()
    {
        ReleaseScratch();
        _header = null;
        _scanned = 0;
        _depth = 0;
        _attrCount = 0;
        _nsCount = 0;
        _pendingUtf8 = 0;
        _hadXmlDeclaration = false;
        if (_options.ExpectStreamHeader)
        {
            _phase = Phase.Prolog;
            _state = State.DocStart;
        }
        else
        {
            _phase = Phase.Stream;
            _state = State.FrameStart;
        }
    }

    /// <summary>
    /// Looks for the next frame in <paramref name="buffer"/>, which must start at the unfinished frame
    /// (the previous <paramref name="consumed"/>) and contain at least the bytes passed before.
    /// </summary>
    /// <returns>
    /// <see cref="ScanStatus.Frame"/>: <paramref name="frame"/> is set and <paramref name="consumed"/> =
    /// <paramref name="examined"/> = the position after it. <see cref="ScanStatus.NeedMoreData"/>:
    /// <paramref name="consumed"/> is the buffer's start and <paramref name="examined"/> its end.
    /// <see cref="ScanStatus.Error"/>: see <see cref="ErrorCondition"/>; every later call returns it again.
    /// </returns>
    public ScanStatus Scan(in ReadOnlySequence<byte> buffer, out SequencePosition consumed, out SequencePosition examined, out XmlFrame frame)
    {
        // Each out parameter is written once, on return: a reference stored through one takes a checked write
        // barrier, and setting them early and again at the end cost a frame seven of them.
        if (_error != StreamErrorCondition.None)
            return Unconsumed(buffer, out consumed, out examined, out frame, ScanStatus.Error);

        var length = buffer.Length;
        if (length < _scanned)
            throw new ArgumentException("The buffer must start at the unfinished frame and keep every byte passed before.", nameof(buffer));

        var limit = _phase == Phase.Prolog ? _options.MaxHeaderBytes : _options.MaxElementBytes;
        var available = (int)Math.Min(length, limit);
        var end = NeedMore;
        XmlFrameKind kind = default;
        if (available > _scanned)
        {
            scoped Input input = default;
            input.Frame = ref buffer;
            input.First = buffer.FirstSpan;
            if (input.First.Length >= available)
            {
                input.Span = input.First[_scanned..available];
                input.Base = _scanned;
                end = Run(ref input, out kind);
            }
            else
            {
                end = RunSegments(ref input, available, out kind);
            }
        }

        if (end == Failed)
        {
            _bytesExamined += available - _scanned;
            ReleaseScratch();
            return Unconsumed(buffer, out consumed, out examined, out frame, ScanStatus.Error);
        }
        if (end == NeedMore)
        {
            _bytesExamined += available - _scanned;
            _scanned = available;
            if (_state == State.WhitespaceRun)
            {
                // Report whitespace as soon as it arrives: it is a keepalive, the caller wants to see it now.
                _state = State.FrameStart;
                end = available;
                kind = XmlFrameKind.Whitespace;
            }
            else if (length > limit)
            {
                FailLimit();
                return Unconsumed(buffer, out consumed, out examined, out frame, ScanStatus.Error);
            }
            else
            {
                // The caller is about to wait for data: unless an element is open, hold no scratch while idle.
                if (_depth == 0 && _attrCount == 0 && _state is not (>= State.StartTagName and <= State.EndTagSpace))
                    ReleaseScratch();
                return Unconsumed(buffer, out consumed, out examined, out frame, ScanStatus.NeedMoreData);
            }
        }
        else
        {
            _bytesExamined += end - _scanned;
        }

        _scanned = 0;
        var bytes = buffer.Slice(0, end);
        // Both from a local: copying consumed into examined re-read its 4-byte offset with an 8-byte load, which
        // waited for the store before it (store forwarding fails) on every frame.
        var after = bytes.End;
        consumed = after;
        examined = after;
        frame = new XmlFrame(kind, bytes, kind == XmlFrameKind.StreamHeader ? _header : null);
        return ScanStatus.Frame;
    }

    private static ScanStatus Unconsumed(in ReadOnlySequence<byte> buffer, out SequencePosition consumed, out SequencePosition examined, out XmlFrame frame, ScanStatus status)
    {
        consumed = buffer.Start;
        examined = buffer.End;
        frame = default;
        return status;
    }

    /// <summary>Runs the state machine over each segment holding bytes <c>[_scanned, available)</c>.</summary>
    private int RunSegments(ref Input input, int available, out XmlFrameKind kind)
    {
        kind = default;
        // Scan comes here only when the first segment ends before `available`. Its span is at hand: a frame
        // that ends in it (most of them) is scanned without walking the sequence.
        var first = input.First;
        if (_scanned < first.Length)
        {
            input.Span = first[_scanned..];
            input.Base = _scanned;
            var end = Run(ref input, out kind);
            if (end != NeedMore)
                return end;
        }
        var position = input.Frame.Start;
        input.Frame.TryGet(ref position, out _);
        var offset = first.Length;
        while (input.Frame.TryGet(ref position, out var segment))
        {
            var span = segment.Span;
            if (span.IsEmpty)
                continue;
            if (offset + span.Length <= _scanned)
            {
                offset += span.Length;
                continue;
            }
            var from = Math.Max(_scanned - offset, 0);
            var to = Math.Min(span.Length, available - offset);
            input.Span = span[from..to];
            input.Base = offset + from;
            var end = Run(ref input, out kind);
            offset += span.Length;
            if (end != NeedMore || offset >= available)
                return end;
        }
        return NeedMore;
    }

    private void FailLimit()
    {
        if (_phase == Phase.Prolog)
            Fail(StreamErrorCondition.PolicyViolation, $"stream header exceeds {_options.MaxHeaderBytes} bytes (MaxHeaderBytes)");
        else
            Fail(StreamErrorCondition.PolicyViolation, $"element exceeds {_options.MaxElementBytes} bytes (MaxElementBytes)");
        ReleaseScratch();
    }

    /// <summary>
    /// Runs the state machine over <c>input.Span</c>. Returns the frame's length if a frame ends in this
    /// span, <see cref="NeedMore"/> if the span was consumed, or <see cref="Failed"/>.
    /// </summary>
    /// <remarks>
    /// Each case handles the byte <c>b = span[i]</c> in state <c>_state</c>. Common transitions jump straight
    /// to the next case with <c>goto case</c> when the next byte is in the span, rather than going round the
    /// loop's switch: that indirect jump was the largest single cost on a stanza mix.
    /// </remarks>
    private int Run(ref Input input, out XmlFrameKind kind)
    {
        kind = default;
        var span = input.Span;
        var i = 0;
        if (_pendingUtf8 != 0)
        {
            i = ResumeCodePoint(ref input);
            if (i < 0)
                return i;
        }

        while (i < span.Length)
        {
            var b = span[i];
            switch (_state)
            {
                case State.Text:
                {
                    var k = XmlChars.IndexOfSpecial(span, i, (byte)'<', (byte)'&', (byte)']');
                    if (k < 0)
                    {
                        i = span.Length;
                        continue;
                    }
                    i = k;
                    b = span[i];
                    if (b == (byte)'<')
                    {
                        var r = FastMarkup(ref input, ref i, out kind);
                        if (r != Handover)
                            return r;
                        continue;
                    }
                    if (b == (byte)'&')
                    {
                        _refReturn = State.Text;
                        _state = State.RefStart;
                        i++;
                        continue;
                    }
                    if (b >= 0x80)
                    {
                        i = SkipUtf8Run(span, i, XmlChars.TextSpecialSet);
                        if (i < 0)
                            return Failed;
                        continue;
                    }
                    if (b == (byte)']')
                    {
                        _state = State.TextBracket;
                        i++;
                        continue;
                    }
                    if (!XmlChars.IsSpace(b))
                        return Fail(StreamErrorCondition.NotWellFormed, NotXmlCharacter);
                    if (++i == span.Length)
                        continue;
                    b = span[i];
                    goto case State.Text;
                }

                case State.TextBracket:
                    if (b == (byte)']')
                    {
                        _state = State.TextBrackets;
                        i++;
                    }
                    else
                    {
                        _state = State.Text;
                    }
                    continue;

                case State.TextBrackets:
                    if (b == (byte)'>')
                        return Fail(StreamErrorCondition.NotWellFormed, "']]>' is not allowed in text");
                    if (b == (byte)']')
                        i++;
                    else
                        _state = State.Text;
                    continue;

                case State.Lt:
                {
                    var pos = input.Base + i;
                    if (b == (byte)'/')
                    {
                        if (_phase == Phase.Prolog || (_depth == 0 && !_options.ExpectStreamHeader))
                            return Fail(StreamErrorCondition.NotWellFormed, "end tag without an open element");
                        _tokenStart = pos + 1;
                        _colon = -1;
                        _state = State.EndTagName;
                        if (++i == span.Length)
                            continue;
                        b = span[i];
                        goto case State.EndTagName;
                    }
                    if (b == (byte)'!')
                    {
                        _state = State.Bang;
                        i++;
                        continue;
                    }
                    if (b == (byte)'?')
                    {
                        if (_phase == Phase.Prolog && _aux == 1)
                        {
                            _aux = 0;
                            _state = State.XmlDeclTarget;
                            i++;
                            continue;
                        }
                        return Fail(StreamErrorCondition.RestrictedXml, "processing instructions are not allowed (RFC 6120 11.1)");
                    }
                    if (_phase != Phase.Prolog && _depth >= _options.MaxDepth)
                        return FailDepth();
                    _scratch ??= ArrayPool<int>.Shared.Rent(NsBase + InitialNsCapacity * NsFields);
                    _tokenStart = pos;
                    _colon = -1;
                    _attrCount = 0;
                    _state = State.StartTagName;
                    goto case State.StartTagName; // the name's first byte is checked by the name scanner
                }

                case State.StartTagName:
                {
                    var end = input.Base + i == _tokenStart ? AsciiNameEnd(span, i) : -1;
                    end = end >= 0 && CheckNameLength(input.Base + end) ? end : ScanName(ref input, i, allowColon: true);
                    if (end < 0)
                    {
                        if (end == Failed)
                            return Failed;
                        i = span.Length;
                        continue;
                    }
                    i = end;
                    if (!RecordTagName(ref input, input.Base + i))
                        return Failed;
                    b = span[i];
                    if (XmlChars.IsSpace(b))
                    {
                        _state = State.InTag;
                        goto case State.InTag;
                    }
                    if (b == (byte)'>')
                        goto case State.StartTagClose;
                    if (b != (byte)'/')
                        return Fail(StreamErrorCondition.NotWellFormed, "malformed start tag");
                    _state = State.EmptyTagSlash;
                    if (++i == span.Length)
                        continue;
                    b = span[i];
                    goto case State.EmptyTagSlash;
                }

                case State.InTag:
                    if (XmlChars.IsSpace(b))
                    {
                        var after = TakePlainAttributes(ref input, i);
                        if (after > i)
                        {
                            i = after;
                            _state = State.AfterAttrValue;
                            if (i == span.Length)
                                continue;
                            b = span[i];
                            goto case State.AfterAttrValue;
                        }
                        i = SkipSpaces(span, i + 1);
                        if (i == span.Length)
                            continue;
                        b = span[i];
                    }
                    if (b == (byte)'>')
                        goto case State.StartTagClose;
                    if (b == (byte)'/')
                    {
                        _state = State.EmptyTagSlash;
                        if (++i == span.Length)
                            continue;
                        b = span[i];
                        goto case State.EmptyTagSlash;
                    }
                    if (_attrCount >= _options.MaxAttributes)
                        return FailAttributeCount();
                    _tokenStart = input.Base + i;
                    _colon = -1;
                    _state = State.AttrName;
                    goto case State.AttrName;

                case State.AfterAttrValue:
                    if (XmlChars.IsSpace(b))
                    {
                        _state = State.InTag;
                        goto case State.InTag;
                    }
                    if (b == (byte)'>')
                        goto case State.StartTagClose;
                    if (b != (byte)'/')
                        return Fail(StreamErrorCondition.NotWellFormed, "attributes must be separated by whitespace");
                    _state = State.EmptyTagSlash;
                    if (++i == span.Length)
                        continue;
                    b = span[i];
                    goto case State.EmptyTagSlash;

                case State.StartTagClose: // never stored: reached by goto when span[i] is the '>' of a start tag
                {
                    var r = EndStartTag(ref input, empty: false, out kind);
                    if (r != Continue)
                        return r == Failed ? Failed : input.Base + i + 1;
                    if (++i == span.Length)
                        continue;
                    b = span[i];
                    goto case State.Text;
                }

                case State.EmptyTagSlash:
                {
                    if (b != (byte)'>')
                        return Fail(StreamErrorCondition.NotWellFormed, "'/' must be followed by '>' in a start tag");
                    var r = EndStartTag(ref input, empty: true, out kind);
                    if (r != Continue)
                        return r == Failed ? Failed : input.Base + i + 1;
                    if (++i == span.Length)
                        continue;
                    b = span[i];
                    goto case State.Text;
                }

                case State.AttrName:
                {
                    var end = input.Base + i == _tokenStart ? AsciiNameEnd(span, i) : -1;
                    end = end >= 0 && CheckNameLength(input.Base + end) ? end : ScanName(ref input, i, allowColon: true);
                    if (end < 0)
                    {
                        if (end == Failed)
                            return Failed;
                        i = span.Length;
                        continue;
                    }
                    RecordAttributeName(ref input, input.Base + end, input.Base + i == _tokenStart ? span[i] : -1, end > 0 ? span[end - 1] : -1);
                    i = end;
                    b = span[i];
                    if (b == (byte)'=' && i + 1 < span.Length && span[i + 1] is (byte)'"' or (byte)'\'')
                    {
                        // name='value' without spaces, the common form: straight to the value.
                        i++;
                        b = span[i];
                        goto case State.AttrValueStart;
                    }
                    _state = State.AttrEq;
                    goto case State.AttrEq;
                }

                case State.AttrEq:
                    if (XmlChars.IsSpace(b))
                    {
                        i = SkipSpaces(span, i + 1);
                        if (i == span.Length)
                            continue;
                        b = span[i];
                    }
                    if (b != (byte)'=')
                        return Fail(StreamErrorCondition.NotWellFormed, "an attribute name must be followed by '='");
                    _state = State.AttrValueStart;
                    if (++i == span.Length)
                        continue;
                    b = span[i];
                    goto case State.AttrValueStart;

                case State.AttrValueStart:
                    if (XmlChars.IsSpace(b))
                    {
                        i = SkipSpaces(span, i + 1);
                        if (i == span.Length)
                            continue;
                        b = span[i];
                    }
                    if (b is not ((byte)'"' or (byte)'\''))
                        return Fail(StreamErrorCondition.NotWellFormed, "attribute values must be quoted");
                    _quote = b;
                    _scratch![AttrBase + (_attrCount - 1) * AttrFields + 3] = input.Base + i + 1;
                    _state = State.AttrValue;
                    if (++i == span.Length)
                        continue;
                    b = span[i];
                    goto case State.AttrValue;

                case State.AttrValue:
                {
                    var doubleQuoted = _quote == (byte)'"';
                    var k = XmlChars.IndexOfSpecial(span, i, _quote, (byte)'<', (byte)'&');
                    if (k < 0)
                    {
                        i = span.Length;
                        continue;
                    }
                    i = k;
                    b = span[i];
                    if (b == _quote)
                    {
                        var record = AttrBase + (_attrCount - 1) * AttrFields;
                        var s = _scratch!;
                        s[record + 4] = input.Base + i - s[record + 3];
                        _state = State.AfterAttrValue;
                        if (++i == span.Length)
                            continue;
                        b = span[i];
                        goto case State.AfterAttrValue;
                    }
                    if (b == (byte)'&')
                    {
                        _refReturn = State.AttrValue;
                        _state = State.RefStart;
                        i++;
                        continue;
                    }
                    if (b >= 0x80)
                    {
                        i = SkipUtf8Run(span, i, doubleQuoted ? XmlChars.DoubleQuotedSpecialSet : XmlChars.SingleQuotedSpecialSet);
                        if (i < 0)
                            return Failed;
                        continue;
                    }
                    if (b == (byte)'<')
                        return Fail(StreamErrorCondition.NotWellFormed, "'<' is not allowed in an attribute value");
                    if (!XmlChars.IsSpace(b))
                        return Fail(StreamErrorCondition.NotWellFormed, NotXmlCharacter);
                    if (++i == span.Length)
                        continue;
                    b = span[i];
                    goto case State.AttrValue;
                }

                case State.EndTagName:
                {
                    if (input.Base + i == _tokenStart && _depth > 0)
                    {
                        // Fast path: the end tag repeats the open element's (already validated) name.
                        var open = (_depth - 1) * TagFields;
                        var openLength = _scratch![open + 1];
                        if (i + openLength < span.Length
                            && TryGetContiguous(ref input, _scratch[open], openLength, out var openName)
                            && span.Slice(i, openLength).SequenceEqual(openName)
                            && (span[i + openLength] == (byte)'>' || XmlChars.IsSpace(span[i + openLength])))
                        {
                            i += openLength;
                            _state = State.EndTagSpace;
                            b = span[i];
                            goto case State.EndTagSpace;
                        }
                    }
                    var end = ScanName(ref input, i, allowColon: true);
                    if (end < 0)
                    {
                        if (end == Failed)
                            return Failed;
                        i = span.Length;
                        continue;
                    }
                    i = end;
                    if (!MatchEndTag(ref input, input.Base + i))
                        return Failed;
                    _state = State.EndTagSpace;
                    b = span[i];
                    goto case State.EndTagSpace;
                }

                case State.EndTagSpace:
                    if (XmlChars.IsSpace(b))
                    {
                        i = SkipSpaces(span, i + 1);
                        if (i == span.Length)
                            continue;
                        b = span[i];
                    }
                    if (b != (byte)'>')
                        return Fail(StreamErrorCondition.NotWellFormed, "malformed end tag");
                    if (EndEndTag(out kind) != Continue)
                        return input.Base + i + 1;
                    if (++i == span.Length)
                        continue;
                    b = span[i];
                    goto case State.Text;

                case State.RefStart:
                    if (b == (byte)'#')
                    {
                        _state = State.CharRefStart;
                        i++;
                        continue;
                    }
                    _tokenStart = input.Base + i;
                    _colon = -1;
                    _state = State.EntityName;
                    goto case State.EntityName;

                case State.EntityName:
                {
                    var end = ScanName(ref input, i, allowColon: false);
                    if (end < 0)
                    {
                        if (end == Failed)
                            return Failed;
                        i = span.Length;
                        continue;
                    }
                    i = end;
                    if (span[i] != (byte)';')
                        return Fail(StreamErrorCondition.NotWellFormed, "malformed entity reference");
                    if (!IsPredefinedEntity(ref input, input.Base + i))
                        return Fail(StreamErrorCondition.RestrictedXml, "only the five predefined entities may be referenced (RFC 6120 11.1)");
                    _state = _refReturn;
                    i++;
                    continue;
                }

                case State.CharRefStart:
                    if (b == (byte)'x')
                    {
                        _state = State.HexRefStart;
                    }
                    else if (char.IsAsciiDigit((char)b))
                    {
                        _aux = b - '0';
                        _state = State.DecimalRef;
                    }
                    else
                    {
                        return Fail(StreamErrorCondition.NotWellFormed, "malformed character reference");
                    }
                    i++;
                    continue;

                case State.DecimalRef:
                    if (char.IsAsciiDigit((char)b))
                    {
                        _aux = Math.Min(_aux * 10 + (b - '0'), 0x110000); // saturate above U+10FFFF
                    }
                    else if (b == (byte)';')
                    {
                        if (!XmlChars.IsChar(_aux))
                            return Fail(StreamErrorCondition.NotWellFormed, "character reference to a character not allowed in XML");
                        _state = _refReturn;
                    }
                    else
                    {
                        return Fail(StreamErrorCondition.NotWellFormed, "malformed character reference");
                    }
                    i++;
                    continue;

                case State.HexRefStart:
                    if (!char.IsAsciiHexDigit((char)b))
                        return Fail(StreamErrorCondition.NotWellFormed, "malformed character reference");
                    _aux = XmlAttributeValue.HexValue(b);
                    _state = State.HexRef;
                    i++;
                    continue;

                case State.HexRef:
                    if (char.IsAsciiHexDigit((char)b))
                    {
                        _aux = Math.Min(_aux * 16 + XmlAttributeValue.HexValue(b), 0x110000);
                    }
                    else if (b == (byte)';')
                    {
                        if (!XmlChars.IsChar(_aux))
                            return Fail(StreamErrorCondition.NotWellFormed, "character reference to a character not allowed in XML");
                        _state = _refReturn;
                    }
                    else
                    {
                        return Fail(StreamErrorCondition.NotWellFormed, "malformed character reference");
                    }
                    i++;
                    continue;

                case State.Bang:
                    if (b == (byte)'-')
                    {
                        _state = State.BangDash;
                    }
                    else if (b == (byte)'[' && _phase == Phase.Stream && _depth > 0)
                    {
                        _aux = 0;
                        _state = State.CdataOpen;
                    }
                    else if (char.IsAsciiLetterUpper((char)b))
                    {
                        // DOCTYPE, ENTITY, ELEMENT, ATTLIST, NOTATION: all DTD markup.
                        return Fail(StreamErrorCondition.RestrictedXml, "DTDs and markup declarations are not allowed (RFC 6120 11.1)");
                    }
                    else
                    {
                        return Fail(StreamErrorCondition.NotWellFormed, "malformed markup after '<!'");
                    }
                    i++;
                    continue;

                case State.BangDash:
                    if (b == (byte)'-')
                        return Fail(StreamErrorCondition.RestrictedXml, "comments are not allowed (RFC 6120 11.1)");
                    return Fail(StreamErrorCondition.NotWellFormed, "malformed markup after '<!-'");

                case State.CdataOpen:
                    if (b != CdataOpening[_aux])
                        return Fail(StreamErrorCondition.NotWellFormed, "malformed CDATA section");
                    if (++_aux == CdataOpening.Length)
                        _state = State.Cdata;
                    i++;
                    continue;

                case State.Cdata:
                {
                    var k = XmlChars.IndexOfSpecial(span, i, (byte)']', (byte)']', (byte)']');
                    if (k < 0)
                    {
                        i = span.Length;
                        continue;
                    }
                    i = k;
                    b = span[i];
                    if (b == (byte)']')
                    {
                        _state = State.CdataBracket;
                        i++;
                        continue;
                    }
                    if (b >= 0x80)
                    {
                        i = SkipUtf8Run(span, i, XmlChars.CdataSpecialSet);
                        if (i < 0)
                            return Failed;
                        continue;
                    }
                    if (!XmlChars.IsSpace(b))
                        return Fail(StreamErrorCondition.NotWellFormed, NotXmlCharacter);
                    if (++i == span.Length)
                        continue;
                    b = span[i];
                    goto case State.Cdata;
                }

                case State.CdataBracket:
                    if (b == (byte)']')
                    {
                        _state = State.CdataBrackets;
                        i++;
                    }
                    else
                    {
                        _state = State.Cdata;
                    }
                    continue;

                case State.CdataBrackets:
                    if (b == (byte)'>')
                    {
                        _state = State.Text;
                        i++;
                    }
                    else if (b == (byte)']')
                    {
                        i++;
                    }
                    else
                    {
                        _state = State.Cdata;
                    }
                    continue;

                case State.FrameStart:
                {
                    if (XmlChars.IsSpace(b))
                    {
                        _state = State.WhitespaceRun;
                        goto case State.WhitespaceRun;
                    }
                    if (_phase == Phase.Ended)
                        return Fail(StreamErrorCondition.NotWellFormed, "data after the end of the stream");
                    if (b != (byte)'<')
                        return Fail(StreamErrorCondition.NotWellFormed, "text outside a top-level element");
                    var r = FastMarkup(ref input, ref i, out kind);
                    if (r != Handover)
                        return r;
                    continue;
                }

                case State.WhitespaceRun:
                    i = SkipSpaces(span, i);
                    if (i == span.Length)
                        continue;
                    _state = State.FrameStart;
                    kind = XmlFrameKind.Whitespace;
                    return input.Base + i;

                case State.DocStart:
                    if (b == 0xEF)
                    {
                        _state = State.Bom1;
                        i++;
                        continue;
                    }
                    goto case State.DocStartAfterBom;

                case State.DocStartAfterBom:
                    if (b == (byte)'<')
                    {
                        _aux = 1; // an XML declaration may follow
                        _tokenStart = input.Base + i;
                        _state = State.Lt;
                    }
                    else if (XmlChars.IsSpace(b))
                    {
                        _state = State.Prolog;
                    }
                    else
                    {
                        return Fail(StreamErrorCondition.NotWellFormed, "a stream must start with a stream header");
                    }
                    i++;
                    continue;

                case State.Bom1:
                case State.Bom2:
                    // UTF-8 byte order mark EF BB BF (XML 1.0 4.3.3 allows it).
                    if (b != (_state == State.Bom1 ? 0xBB : 0xBF))
                        return Fail(StreamErrorCondition.NotWellFormed, MalformedUtf8);
                    _state = _state == State.Bom1 ? State.Bom2 : State.DocStartAfterBom;
                    i++;
                    continue;

                case State.Prolog:
                    i = SkipSpaces(span, i);
                    if (i == span.Length)
                        continue;
                    if (span[i] != (byte)'<')
                        return Fail(StreamErrorCondition.NotWellFormed, "a stream must start with a stream header");
                    _aux = 0; // an XML declaration is only allowed at the very start
                    _state = State.Lt;
                    i++;
                    continue;

                case State.XmlDeclTarget:
                    if (_aux < XmlTarget.Length ? b != XmlTarget[_aux] : !XmlChars.IsSpace(b))
                        return Fail(StreamErrorCondition.RestrictedXml, "processing instructions are not allowed (RFC 6120 11.1)");
                    if (++_aux > XmlTarget.Length)
                        _state = State.XmlDeclBody;
                    i++;
                    continue;

                case State.XmlDeclBody:
                    if (b == (byte)'?')
                        _state = State.XmlDeclQuestion;
                    else if (b >= 0x80 || (b < 0x20 && !XmlChars.IsSpace(b)))
                        return Fail(StreamErrorCondition.NotWellFormed, "malformed XML declaration");
                    i++;
                    continue;

                case State.XmlDeclQuestion:
                    if (b == (byte)'>')
                    {
                        if (!CheckXmlDeclaration(ref input, input.Base + i - 1))
                            return Failed;
                        _hadXmlDeclaration = true;
                        _state = State.Prolog;
                        i++;
                    }
                    else if (b == (byte)'?')
                    {
                        i++;
                    }
                    else
                    {
                        _state = State.XmlDeclBody;
                    }
                    continue;

                default:
                    throw new InvalidOperationException($"unknown scanner state {_state}");
            }
        }
        return NeedMore;
    }

    /// <summary>
    /// From whitespace at <c>span[i]</c> inside a start tag, takes as many attributes of the plain form
    /// <c> name='value'</c> as the span holds (ASCII name without a colon, no space around '=', a value
    /// without references or bytes outside printable ASCII) and records them. Returns the index after the
    /// last value taken, or <paramref name="i"/> if none: anything else is left to the state machine, which
    /// resumes at an attribute boundary either way.
    /// </summary>
    private int TakePlainAttributes(ref Input input, int i)
    {
        var span = input.Span;
        var s = _scratch!;
        var count = _attrCount;
        var maxCount = _options.MaxAttributes;
        var maxName = _options.MaxNameLength;
        var record = AttrBase + count * AttrFields;
        var taken = i;
        while (count < maxCount)
        {
            var name = SkipSpaces(span, taken);
            if (name == taken || name >= span.Length)
                break;
            var end = AsciiNameEnd(span, name);
            if (end < 0 || end + 1 >= span.Length || span[end] != (byte)'=' || end - name > maxName)
                break;
            var quote = span[end + 1];
            if (quote is not ((byte)'"' or (byte)'\''))
                break;
            var value = end + 2;
            var close = XmlChars.IndexOfSpecial(span, value, quote, (byte)'<', (byte)'&');
            if (close < 0 || span[close] != quote)
                break;
            var length = end - name;
            s[record] = input.Base + name;
            s[record + 1] = length;
            s[record + 2] = -1;
            s[record + 3] = input.Base + value;
            s[record + 4] = close - value;
            s[record + 5] = (length & 0xFFFF) | (span[name] << 16) | (span[end - 1] << 24);
            record += AttrFields;
            count++;
            taken = close + 1;
        }
        _attrCount = count;
        return taken;
    }

    /// <summary>
    /// The end of an ASCII name without a colon starting at <c>span[i]</c>, if it ends inside the span (the
    /// common case); -1 if the general <see cref="ScanName"/> must decide (colon, non-ASCII, span end, or
    /// not a name at all).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int AsciiNameEnd(ReadOnlySpan<byte> span, int i)
    {
        var end = NameCharsEnd(span, i);
        if (end < 0)
            return -1;
        var b = span[end];
        return b == (byte)':' || b >= 0x80 ? -1 : end;
    }

    /// <summary>
    /// The index of the first byte after the run of ASCII name characters that starts at <c>span[i]</c> with a
    /// NameStartChar (that byte may be a colon or non-ASCII: the caller decides); -1 if <c>span[i]</c> cannot
    /// start a name or the run reaches the span's end.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int NameCharsEnd(ReadOnlySpan<byte> span, int i)
        => (XmlChars.Class[span[i]] & XmlChars.NameStart) == 0 ? -1 : XmlChars.IndexOfNonNameChar(span, i + 1);

    private static int SkipSpaces(ReadOnlySpan<byte> span, int i)
    {
        while (i < span.Length && XmlChars.IsSpace(span[i]))
            i++;
        return i;
    }

    /// <summary>
    /// Scans name bytes from <c>span[i]</c> as XML Name (or QName with <paramref name="allowColon"/>).
    /// Returns the index of the byte that ends the name, <see cref="NeedMore"/> if the span ends inside
    /// the name, or <see cref="Failed"/>.
    /// </summary>
    private int ScanName(ref Input input, int i, bool allowColon)
    {
        var span = input.Span;
        var classes = XmlChars.Class;
        while (i < span.Length)
        {
            var b = span[i];
            var pos = input.Base + i;
            var mustStart = pos == _tokenStart || pos == _colon + 1;
            if (b < 0x80)
            {
                if ((classes[b] & (mustStart ? XmlChars.NameStart : XmlChars.NameChar)) == 0)
                {
                    if (mustStart)
                        return Fail(StreamErrorCondition.NotWellFormed, pos == _tokenStart ? "malformed name" : "malformed qualified name");
                    if (b != (byte)':')
                        return CheckNameLength(pos) ? i : Failed;
                    if (!allowColon || _colon >= 0)
                        return Fail(StreamErrorCondition.NotWellFormed, "malformed qualified name");
                    _colon = pos;
                    i++;
                    continue;
                }
                for (i++; i < span.Length; i++)
                {
                    b = span[i];
                    if (b >= 0x80 || (classes[b] & XmlChars.NameChar) == 0)
                        break;
                }
                continue;
            }
            var length = XmlChars.DecodeNonAscii(span[i..], out var codePoint);
            if (length == 0)
            {
                SavePending(span[i..]);
                i = span.Length;
                break;
            }
            if (length < 0)
                return Fail(StreamErrorCondition.NotWellFormed, MalformedUtf8);
            if (!(mustStart ? XmlChars.IsNameStartNonAscii(codePoint) : XmlChars.IsNameCharNonAscii(codePoint)))
                return Fail(StreamErrorCondition.NotWellFormed, "character not allowed in a name");
            i += length;
        }
        return CheckNameLength(input.Base + i) ? NeedMore : Failed;
    }

    private bool CheckNameLength(int end) => end - _tokenStart <= _options.MaxNameLength || FailNameLength();

    /// <summary>
    /// At a byte >= 0x80 in text, an attribute value or a CDATA section: validates the run up to the next
    /// special ASCII byte in bulk and returns the index after it (or <see cref="Failed"/>). A sequence cut
    /// by the end of the span is kept in <c>_pendingUtf8</c> and finished by <see cref="ResumeCodePoint"/>.
    /// </summary>
    private int SkipUtf8Run(ReadOnlySpan<byte> span, int i, SearchValues<byte> special)
    {
        var rest = span[i..];
        var end = rest.IndexOfAny(special);
        var run = end < 0 ? rest : rest[..end];
        var tail = end < 0 ? XmlChars.IncompleteTailLength(run) : 0;
        var body = run[..^tail];
        if (!Utf8.IsValid(body))
            return Fail(StreamErrorCondition.NotWellFormed, MalformedUtf8);
        if (XmlChars.ContainsNonCharacterFffx(body))
            return Fail(StreamErrorCondition.NotWellFormed, NotXmlCharacter);
        if (tail > 0)
        {
            var partial = run[^tail..];
            if (XmlChars.DecodeNonAscii(partial, out _) != 0)
                return Fail(StreamErrorCondition.NotWellFormed, MalformedUtf8);
            SavePending(partial);
        }
        return i + run.Length;
    }

    private void SavePending(ReadOnlySpan<byte> partial)
    {
        var packed = partial.Length << 24;
        for (var k = 0; k < partial.Length; k++)
            packed |= partial[k] << (8 * k);
        _pendingUtf8 = packed;
    }

    /// <summary>
    /// Finishes a UTF-8 sequence begun in an earlier span with the first bytes of this one, and checks the
    /// character in the current state. Returns the index after it, <see cref="NeedMore"/> or <see cref="Failed"/>.
    /// </summary>
    private int ResumeCodePoint(ref Input input)
    {
        var span = input.Span;
        var have = _pendingUtf8 >>> 24;
        Span<byte> sequence = stackalloc byte[4];
        for (var k = 0; k < have; k++)
            sequence[k] = (byte)(_pendingUtf8 >> (8 * k));
        var take = Math.Min(4 - have, span.Length);
        span[..take].CopyTo(sequence[have..]);
        var length = XmlChars.DecodeNonAscii(sequence[..(have + take)], out var codePoint);
        if (length < 0)
            return Fail(StreamErrorCondition.NotWellFormed, MalformedUtf8);
        if (length == 0)
        {
            SavePending(sequence[..(have + take)]);
            return NeedMore;
        }
        _pendingUtf8 = 0;
        var charStart = input.Base - have;
        bool accepted;
        switch (_state)
        {
            case State.StartTagName:
            case State.AttrName:
            case State.EndTagName:
            case State.EntityName:
                accepted = charStart == _tokenStart || charStart == _colon + 1
                    ? XmlChars.IsNameStartNonAscii(codePoint)
                    : XmlChars.IsNameCharNonAscii(codePoint);
                break;
            default: // text, attribute value, CDATA
                accepted = XmlChars.IsCharNonAscii(codePoint);
                break;
        }
        if (!accepted)
            return Fail(StreamErrorCondition.NotWellFormed, NotXmlCharacter);
        return length - have;
    }

    // ---- Tags ----

    private int AttrBase => _options.MaxDepth * TagFields;
    private int NsBase => AttrBase + _options.MaxAttributes * AttrFields;

    /// <summary>Records the element name that ends at <paramref name="end"/>; checks the stream header's local name early.</summary>
    private bool RecordTagName(ref Input input, int end)
    {
        var slot = (_phase == Phase.Prolog ? 0 : _depth) * TagFields;
        var s = _scratch!;
        s[slot] = _tokenStart;
        s[slot + 1] = end - _tokenStart;
        s[slot + 2] = _colon < 0 ? -1 : _colon - _tokenStart;
        return _phase != Phase.Prolog || CheckStreamLocalName(ref input, end);
    }

    /// <summary>
    /// Records the attribute name that ends at <paramref name="end"/>. <paramref name="first"/> and
    /// <paramref name="last"/> are its first and last bytes when the caller has them at hand, else -1.
    /// </summary>
    private void RecordAttributeName(ref Input input, int end, int first, int last)
    {
        var record = AttrBase + _attrCount * AttrFields;
        var s = _scratch!;
        var length = end - _tokenStart;
        if (first < 0)
            first = ByteAt(ref input, _tokenStart);
        if (last < 0)
            last = ByteAt(ref input, end - 1);
        s[record] = _tokenStart;
        s[record + 1] = length;
        s[record + 2] = _colon < 0 ? -1 : _colon - _tokenStart;
        s[record + 5] = (length & 0xFFFF) | (first << 16) | (last << 24);
        _attrCount++;
    }

    private bool CheckStreamLocalName(ref Input input, int end)
    {
        var localStart = _colon < 0 ? _tokenStart : _colon + 1;
        return RangeIs(ref input, localStart, end - localStart, "stream"u8)
            || Reject(StreamErrorCondition.InvalidNamespace, "the stream must open with a <stream:stream> header (RFC 6120 4.7)");
    }

    /// <summary>At the '&gt;' of a start tag: checks attributes and namespaces, then opens the element or ends the frame.</summary>
    private int EndStartTag(ref Input input, bool empty, out XmlFrameKind kind)
    {
        kind = default;
        var depth = _phase == Phase.Prolog ? 0 : _depth + 1;
        if ((_attrCount > 0 || _colon >= 0 || _phase == Phase.Prolog) && !CheckAttributes(ref input, depth))
            return Failed;
        if (_phase == Phase.Prolog)
        {
            if (!CompleteHeader(ref input, empty))
                return Failed;
            kind = XmlFrameKind.StreamHeader;
            return FrameDone;
        }
        _attrCount = 0;
        if (!empty)
        {
            _depth = depth;
            _state = State.Text;
            return Continue;
        }
        if (_nsCount > 0)
            PopNamespaces(depth);
        if (_depth > 0)
        {
            _state = State.Text;
            return Continue;
        }
        EndFrame();
        kind = XmlFrameKind.Element;
        return FrameDone;
    }

    /// <summary>At the '&gt;' of an end tag already matched by <see cref="MatchEndTag"/>.</summary>
    private int EndEndTag(out XmlFrameKind kind)
    {
        kind = default;
        if (_depth == 0)
        {
            _phase = Phase.Ended;
            EndFrame();
            kind = XmlFrameKind.StreamEnd;
            return FrameDone;
        }
        if (_nsCount > 0)
            PopNamespaces(_depth);
        if (--_depth > 0)
        {
            _state = State.Text;
            return Continue;
        }
        EndFrame();
        kind = XmlFrameKind.Element;
        return FrameDone;
    }

    /// <summary>
    /// Between frames. The scratch array stays rented for the next element of the same read; it is released
    /// when the scanner runs out of input between elements (see <see cref="Scan"/>).
    /// </summary>
    private void EndFrame()
    {
        _depth = 0;
        _attrCount = 0;
        _nsCount = 0;
        _state = State.FrameStart;
    }

    /// <summary>
    /// Checks the end tag's name (ending at <paramref name="end"/>) against the open element, or at the top
    /// level against the stream header: a stanza can neither close its parent nor end the stream.
    /// </summary>
    private bool MatchEndTag(ref Input input, int end)
    {
        var length = end - _tokenStart;
        if (_depth == 0)
        {
            return (_header is not null && RangeIs(ref input, _tokenStart, length, _header.QualifiedNameUtf8))
                || Reject(StreamErrorCondition.NotWellFormed, "end tag without an open element");
        }
        var s = _scratch!;
        var open = (_depth - 1) * TagFields;
        return (s[open + 1] == length && RangesEqual(ref input, s[open], _tokenStart, length))
            || Reject(StreamErrorCondition.NotWellFormed, "end tag does not match the open element");
    }

    private bool IsPredefinedEntity(ref Input input, int end)
    {
        var length = end - _tokenStart;
        if (length is < 2 or > 4)
            return false;
        if (TryGetContiguous(ref input, _tokenStart, length, out var name))
            return XmlAttributeValue.PredefinedEntity(name) != 0;
        Span<byte> copy = stackalloc byte[4];
        input.Frame.Slice(_tokenStart, length).CopyTo(copy);
        return XmlAttributeValue.PredefinedEntity(copy[..length]) != 0;
    }

    /// <summary>
    /// Namespaces in XML 1.0 checks for one start tag: unique attributes (by qualified and by expanded
    /// name), legal prefix declarations (section 3, "Reserved Prefixes and Namespace Names", "No Prefix
    /// Undeclaring"), and a declaration in scope for every prefix used ("Prefix Declared").
    /// <paramref name="namesUnique"/>: the caller has already found no two qualified names equal.
    /// </summary>
    private bool CheckAttributes(ref Input input, int depth, bool namesUnique = false)
    {
        var count = _attrCount;
        var s = _scratch!;
        var tag = (_phase == Phase.Prolog ? 0 : _depth) * TagFields;
        if (count == 0)
            return s[tag + 2] < 0 || CheckElementPrefix(ref input, tag);

        var attrBase = AttrBase;
        for (var a = namesUnique ? count : 1; a < count; a++)
        {
            var ra = attrBase + a * AttrFields;
            for (var c = 0; c < a; c++)
            {
                var rc = attrBase + c * AttrFields;
                if (s[ra + 5] == s[rc + 5] && s[ra + 1] == s[rc + 1] && RangesEqual(ref input, s[ra], s[rc], s[ra + 1]))
                    return Reject(StreamErrorCondition.NotWellFormed, DuplicateAttribute);
            }
        }

        var prefixedAttributes = 0;
        for (var a = 0; a < count; a++)
        {
            var ra = attrBase + a * AttrFields;
            var colon = s[ra + 2];
            if (colon < 0)
            {
                if (s[ra + 1] == 5 && RangeIs(ref input, s[ra], 5, "xmlns"u8) && !CheckDefaultDeclaration(ref input, ra))
                    return false;
            }
            else if (colon == 5 && RangeIs(ref input, s[ra], 5, "xmlns"u8))
            {
                if (!CheckPrefixDeclaration(ref input, ra, depth))
                    return false;
                s = _scratch!; // a declaration may have grown the scratch array
            }
            else
            {
                prefixedAttributes++;
            }
        }

        if (s[tag + 2] >= 0 && !CheckElementPrefix(ref input, tag))
            return false;
        if (prefixedAttributes == 0)
            return true;
        for (var a = 0; a < count; a++)
        {
            var ra = attrBase + a * AttrFields;
            if (s[ra + 2] >= 0 && !IsDeclaration(ref input, ra) && Resolve(ref input, s[ra], s[ra + 2]) == Unbound)
                return Reject(StreamErrorCondition.BadNamespacePrefix, "undeclared namespace prefix on an attribute");
        }
        return prefixedAttributes < 2 || CheckExpandedNames(ref input);
    }

    private bool CheckElementPrefix(ref Input input, int tag)
    {
        var s = _scratch!;
        return Resolve(ref input, s[tag], s[tag + 2]) != Unbound
            || Reject(StreamErrorCondition.BadNamespacePrefix, "undeclared namespace prefix on an element");
    }

    private bool IsDeclaration(ref Input input, int record)
        => _scratch![record + 2] == 5 && RangeIs(ref input, _scratch[record], 5, "xmlns"u8);

    /// <summary><c>xmlns="..."</c>: the default namespace may be anything but the two reserved namespaces.</summary>
    private bool CheckDefaultDeclaration(ref Input input, int record)
    {
        var s = _scratch!;
        // A value shorter than both reserved URIs cannot decode to either: references only shrink a value.
        if (s[record + 4] < XmlnsNamespaceUtf8.Length)
            return true;
        // Nor can one whose first bytes, free of references, differ from the prefix both reserved URIs share.
        if (TryGetContiguous(ref input, s[record + 3], W3cPrefixUtf8.Length, out var head)
            && !head.Contains((byte)'&') && !head.SequenceEqual(W3cPrefixUtf8))
            return true;
        byte[]? rented = null;
        var uri = Value(ref input, s[record + 3], s[record + 4], ref rented);
        var reserved = uri.SequenceEqual(XmlNamespaceUtf8) || uri.SequenceEqual(XmlnsNamespaceUtf8);
        Return(rented);
        return !reserved || Reject(StreamErrorCondition.NotWellFormed, "the xml and xmlns namespaces cannot be the default namespace");
    }

    /// <summary><c>xmlns:p="..."</c>: checks it and pushes it on the declaration stack.</summary>
    private bool CheckPrefixDeclaration(ref Input input, int record, int depth)
    {
        var s = _scratch!;
        var prefixOffset = s[record] + 6;
        var prefixLength = s[record + 1] - 6;
        if (prefixLength == 5 && RangeIs(ref input, prefixOffset, 5, "xmlns"u8))
            return Reject(StreamErrorCondition.NotWellFormed, "the xmlns prefix cannot be declared");
        byte[]? rented = null;
        var uri = Value(ref input, s[record + 3], s[record + 4], ref rented);
        var empty = uri.IsEmpty;
        var isXmlNamespace = uri.SequenceEqual(XmlNamespaceUtf8);
        var isXmlnsNamespace = uri.SequenceEqual(XmlnsNamespaceUtf8);
        Return(rented);
        if (empty)
            return Reject(StreamErrorCondition.NotWellFormed, "a namespace prefix cannot be undeclared");
        if (prefixLength == 3 && RangeIs(ref input, prefixOffset, 3, "xml"u8))
            return isXmlNamespace || Reject(StreamErrorCondition.NotWellFormed, "the xml prefix cannot be bound to another namespace");
        if (isXmlNamespace || isXmlnsNamespace)
            return Reject(StreamErrorCondition.NotWellFormed, "the xml and xmlns namespaces cannot be bound to another prefix");

        var at = NsBase + _nsCount * NsFields;
        if (at + NsFields > s.Length)
        {
            var grown = ArrayPool<int>.Shared.Rent(s.Length * 2);
            s.AsSpan(0, at).CopyTo(grown);
            ArrayPool<int>.Shared.Return(s);
            _scratch = s = grown;
        }
        s[at] = prefixOffset;
        s[at + 1] = prefixLength;
        s[at + 2] = s[record + 3];
        s[at + 3] = s[record + 4];
        s[at + 4] = depth;
        _nsCount++;
        return true;
    }

    private void PopNamespaces(int depth)
    {
        while (_nsCount > 0 && _scratch![NsBase + (_nsCount - 1) * NsFields + 4] >= depth)
            _nsCount--;
    }

    private const int Unbound = -1;
    private const int BoundToXml = -2;
    private const int BoundOnHeader = -3;

    /// <summary>
    /// Finds the declaration of the prefix at <paramref name="offset"/>: its index on the declaration stack,
    /// <see cref="BoundOnHeader"/>, <see cref="BoundToXml"/> (the predefined <c>xml</c>) or <see cref="Unbound"/>.
    /// </summary>
    private int Resolve(ref Input input, int offset, int length)
    {
        if (length == 3 && RangeIs(ref input, offset, 3, "xml"u8))
            return BoundToXml;
        var s = _scratch!;
        for (var k = _nsCount - 1; k >= 0; k--)
        {
            var at = NsBase + k * NsFields;
            if (s[at + 1] == length && RangesEqual(ref input, s[at], offset, length))
                return k;
        }
        if (_header is null)
            return Unbound;
        byte[]? rented = null;
        var found = _header.TryGetNamespace(Bytes(ref input, offset, length, ref rented), out _);
        Return(rented);
        return found ? BoundOnHeader : Unbound;
    }

    /// <summary>The namespace URI of a bound prefix (value of <see cref="Resolve"/>).</summary>
    private ReadOnlySpan<byte> NamespaceOf(ref Input input, int offset, int length, int resolved, ref byte[]? rented)
    {
        if (resolved == BoundToXml)
            return XmlNamespaceUtf8;
        if (resolved == BoundOnHeader)
        {
            var prefix = Bytes(ref input, offset, length, ref rented);
            _header!.TryGetNamespace(prefix, out var uri);
            return uri;
        }
        var at = NsBase + resolved * NsFields;
        return Value(ref input, _scratch![at + 2], _scratch[at + 3], ref rented);
    }

    /// <summary>
    /// Namespaces in XML 1.0 section 6.3: no two attributes with the same local name whose prefixes are
    /// bound to the same namespace. Only pairs with equal local names get their namespaces compared.
    /// </summary>
    private bool CheckExpandedNames(ref Input input)
    {
        var s = _scratch!;
        for (var a = 1; a < _attrCount; a++)
        {
            var ra = AttrBase + a * AttrFields;
            if (s[ra + 2] < 0 || IsDeclaration(ref input, ra))
                continue;
            var localA = s[ra] + s[ra + 2] + 1;
            var localLength = s[ra + 1] - s[ra + 2] - 1;
            for (var c = 0; c < a; c++)
            {
                var rc = AttrBase + c * AttrFields;
                if (s[rc + 2] < 0 || s[rc + 1] - s[rc + 2] - 1 != localLength || IsDeclaration(ref input, rc))
                    continue;
                if (!RangesEqual(ref input, localA, s[rc] + s[rc + 2] + 1, localLength))
                    continue;
                byte[]? rentedA = null, rentedC = null;
                var uriA = NamespaceOf(ref input, s[ra], s[ra + 2], Resolve(ref input, s[ra], s[ra + 2]), ref rentedA);
                var uriC = NamespaceOf(ref input, s[rc], s[rc + 2], Resolve(ref input, s[rc], s[rc + 2]), ref rentedC);
                var same = uriA.SequenceEqual(uriC);
                Return(rentedA);
                Return(rentedC);
                if (same)
                    return Reject(StreamErrorCondition.NotWellFormed, "duplicate attribute (same namespace and local name)");
            }
        }
        return true;
    }

    // ---- Prolog ----

    /// <summary>Checks <c>&lt;?xml ...?&gt;</c>, which began at <c>_tokenStart</c> and whose '?' is at <paramref name="question"/>.</summary>
    private bool CheckXmlDeclaration(ref Input input, int question)
    {
        var innerStart = _tokenStart + 2 + XmlTarget.Length;
        byte[]? rented = null;
        var condition = XmlDeclaration.Check(Bytes(ref input, innerStart, question - innerStart, ref rented), out var error);
        Return(rented);
        return condition == StreamErrorCondition.None || Reject(condition, error!);
    }

    /// <summary>Checks the stream header's namespaces (RFC 6120 4.8) and builds <see cref="StreamHeader"/>.</summary>
    private bool CompleteHeader(ref Input input, bool empty)
    {
        if (empty)
            return Reject(StreamErrorCondition.InvalidXml, "the stream header must not be an empty element (RFC 6120 4.2)");

        var s = _scratch!;
        int nameOffset = s[0], nameLength = s[1], colon = s[2];
        byte[]? rented = null;
        string? defaultNamespace = null;
        var attributes = new List<KeyValuePair<string, string>>(_attrCount);
        var declarations = new List<KeyValuePair<string, string>>(2);
        var strings = _options.HeaderStrings;
        for (var a = 0; a < _attrCount; a++)
        {
            var ra = AttrBase + a * AttrFields;
            var value = strings.String(Value(ref input, s[ra + 3], s[ra + 4], ref rented));
            Return(rented);
            rented = null;
            var name = Bytes(ref input, s[ra], s[ra + 1], ref rented);
            if (name.SequenceEqual("xmlns"u8))
            {
                defaultNamespace = value;
                declarations.Add(new(string.Empty, value));
            }
            else if (name.StartsWith("xmlns:"u8))
            {
                declarations.Add(new(strings.String(name[6..]), value));
            }
            else
            {
                attributes.Add(new(strings.String(name), value));
            }
            Return(rented);
            rented = null;
        }

        var prefixes = new byte[_nsCount][];
        var uris = new byte[_nsCount][];
        for (var k = 0; k < _nsCount; k++)
        {
            var at = NsBase + k * NsFields;
            prefixes[k] = strings.Bytes(Bytes(ref input, s[at], s[at + 1], ref rented));
            Return(rented);
            rented = null;
            uris[k] = strings.Bytes(Value(ref input, s[at + 2], s[at + 3], ref rented));
            Return(rented);
            rented = null;
        }

        byte[]? streamNamespace;
        if (colon >= 0)
        {
            // Bound on the header itself (CheckAttributes has rejected an unbound prefix).
            var resolved = Resolve(ref input, nameOffset, colon);
            streamNamespace = resolved >= 0 ? uris[resolved] : null;
        }
        else
        {
            streamNamespace = defaultNamespace is null ? null : Encoding.UTF8.GetBytes(defaultNamespace);
        }
        if (streamNamespace is null || !StreamNamespaceUtf8.SequenceEqual(streamNamespace))
            return Reject(StreamErrorCondition.InvalidNamespace, $"the stream element must be in the {XmppNamespaces.Stream} namespace (RFC 6120 4.8.1)");
        if (defaultNamespace != _options.ContentNamespace)
            return Reject(StreamErrorCondition.InvalidNamespace, $"the stream header must declare the default namespace {_options.ContentNamespace} (RFC 6120 4.8.2)");

        var qualifiedName = strings.Bytes(Bytes(ref input, nameOffset, nameLength, ref rented));
        Return(rented);
        rented = null;
        var prefix = colon < 0 ? string.Empty : strings.String(Bytes(ref input, nameOffset, colon, ref rented));
        Return(rented);
        _header = new StreamHeader(
            prefix,
            defaultNamespace,
            attributes.ToArray(),
            declarations.ToArray(),
            _hadXmlDeclaration,
            qualifiedName,
            prefixes,
            uris);
        _phase = Phase.Stream;
        EndFrame();
        return true;
    }

    // ---- Helpers ----

    private int Fail(StreamErrorCondition condition, string text)
    {
        _error = condition;
        _errorText = text;
        return Failed;
    }

    private bool Reject(StreamErrorCondition condition, string text)
    {
        Fail(condition, text);
        return false;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private int FailDepth()
        => Fail(StreamErrorCondition.PolicyViolation, $"elements nested deeper than {_options.MaxDepth} levels (MaxDepth)");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private int FailAttributeCount()
        => Fail(StreamErrorCondition.PolicyViolation, $"more than {_options.MaxAttributes} attributes on an element (MaxAttributes)");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool FailNameLength()
        => Reject(StreamErrorCondition.PolicyViolation, $"name longer than {_options.MaxNameLength} bytes (MaxNameLength)");

    private void ReleaseScratch()
    {
        if (_scratch is not null)
        {
            ArrayPool<int>.Shared.Return(_scratch);
            _scratch = null;
        }
    }

    /// <summary>
    /// Bytes <c>[offset, offset + length)</c> of the unfinished frame as one span, if they are contiguous in the
    /// first segment or in the span being scanned (always, for a single-segment buffer).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TryGetContiguous(ref Input input, int offset, int length, out ReadOnlySpan<byte> bytes)
    {
        if ((uint)(offset + length) <= (uint)input.First.Length)
        {
            bytes = input.First.Slice(offset, length);
            return true;
        }
        var relative = offset - input.Base;
        if (relative >= 0 && relative + length <= input.Span.Length)
        {
            bytes = input.Span.Slice(relative, length);
            return true;
        }
        bytes = default;
        return false;
    }

    private static int ByteAt(ref Input input, int offset)
    {
        if ((uint)offset < (uint)input.First.Length)
            return input.First[offset];
        var relative = offset - input.Base;
        return (uint)relative < (uint)input.Span.Length ? input.Span[relative] : input.Frame.Slice(offset, 1).FirstSpan[0];
    }

    /// <summary>Bytes <c>[offset, offset + length)</c>: a slice when contiguous, else a copy into a rented array.</summary>
    private static ReadOnlySpan<byte> Bytes(ref Input input, int offset, int length, ref byte[]? rented)
        => TryGetContiguous(ref input, offset, length, out var bytes) ? bytes : CopyOut(ref input, offset, length, ref rented);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ReadOnlySpan<byte> CopyOut(ref Input input, int offset, int length, ref byte[]? rented)
    {
        rented = ArrayPool<byte>.Shared.Rent(length);
        input.Frame.Slice(offset, length).CopyTo(rented);
        return rented.AsSpan(0, length);
    }

    /// <summary>The value of the attribute value at <c>[offset, offset + length)</c>, references and whitespace decoded.</summary>
    private static ReadOnlySpan<byte> Value(ref Input input, int offset, int length, ref byte[]? rented)
    {
        var raw = Bytes(ref input, offset, length, ref rented);
        if (!XmlAttributeValue.NeedsDecoding(raw))
            return raw;
        var decoded = ArrayPool<byte>.Shared.Rent(length);
        var written = XmlAttributeValue.Decode(raw, decoded);
        Return(rented);
        rented = decoded;
        return decoded.AsSpan(0, written);
    }

    private static void Return(byte[]? rented)
    {
        if (rented is not null)
            ArrayPool<byte>.Shared.Return(rented);
    }

    private static bool RangeIs(ref Input input, int offset, int length, ReadOnlySpan<byte> expected)
    {
        if (length != expected.Length)
            return false;
        if (TryGetContiguous(ref input, offset, length, out var bytes))
            return bytes.SequenceEqual(expected);
        byte[]? rented = null;
        var equal = CopyOut(ref input, offset, length, ref rented).SequenceEqual(expected);
        Return(rented);
        return equal;
    }

    private static bool RangesEqual(ref Input input, int offsetA, int offsetB, int length)
    {
        if (TryGetContiguous(ref input, offsetA, length, out var a) && TryGetContiguous(ref input, offsetB, length, out var b))
            return a.SequenceEqual(b);
        byte[]? rentedA = null, rentedB = null;
        var equal = Bytes(ref input, offsetA, length, ref rentedA).SequenceEqual(Bytes(ref input, offsetB, length, ref rentedB));
        Return(rentedA);
        Return(rentedB);
        return equal;
    }

    /// <summary>The span being scanned, where it sits in the unfinished frame, and the whole buffer.</summary>
    /// <remarks>
    /// The buffer is held by reference and Scan fills the struct field by field: a copy of either (an
    /// initializer or constructor builds a temporary and copies it) reads back, in one wide load, bytes just
    /// written by narrower stores, and that load waits for them (store forwarding fails), on every call.
    /// </remarks>
    private ref struct Input
    {
        public ReadOnlySpan<byte> Span;
        public int Base;
        public ref readonly ReadOnlySequence<byte> Frame;
        public ReadOnlySpan<byte> First; // the buffer's first segment: the whole buffer when it is one segment
    }

    private enum Phase : byte
    {
        Prolog,  // before the stream header
        Stream,  // between or inside top-level elements
        Ended,   // after the stream's end tag: only whitespace may follow
    }

    private enum State : byte
    {
        FrameStart, WhitespaceRun,
        DocStart, Bom1, Bom2, DocStartAfterBom, Prolog, XmlDeclTarget, XmlDeclBody, XmlDeclQuestion,
        Lt, Bang, BangDash, CdataOpen, Cdata, CdataBracket, CdataBrackets,
        StartTagName, InTag, AfterAttrValue, StartTagClose, EmptyTagSlash, AttrName, AttrEq, AttrValueStart, AttrValue,
        EndTagName, EndTagSpace,
        Text, TextBracket, TextBrackets,
        RefStart, EntityName, CharRefStart, DecimalRef, HexRefStart, HexRef,
    }
}
