using System.Text;

namespace ConnMgr.Tests.OpenfireDouble;

internal enum FrameKind
{
    /// <summary>A <c>&lt;stream:stream …&gt;</c> start tag (the literal prefix Openfire requires, spec 2).</summary>
    Header,

    /// <summary>A complete top-level element.</summary>
    Element,

    /// <summary>The exact text <c>&lt;/stream:stream&gt;</c>.</summary>
    StreamEnd,

    /// <summary>Whitespace between elements (heartbeats, spec 8.3).</summary>
    Whitespace,
}

internal readonly record struct XmlFrame(FrameKind Kind, string Text);

/// <summary>Input that Openfire's splitter rejects; the link is closed (spec 2).</summary>
internal sealed class XmlFrameException(string message) : Exception(message);

/// <summary>
/// Splits a link's character stream into top-level frames the way Openfire's <c>XMLLightweightParser</c>
/// does (spec 2): counts element depth, recognises the stream header and end by their literal text,
/// enforces the element size limit and rejects characters below U+0020 other than TAB, LF and CR.
/// Well-formedness inside a frame is left to the XML parser that reads the frame. Resumable: state is
/// kept between <see cref="Append"/> calls, so a large element is never rescanned. Test code: it favours
/// plain reading over speed.
/// </summary>
internal sealed class XmlFrameSplitter(int maxFrameChars)
{
    private enum State { Between, Lt, StartTagName, StartTag, Content, EndTagName, Bang, Comment, CData, ProcessingInstruction }

    private readonly StringBuilder _frame = new();
    private readonly StringBuilder _name = new();
    private readonly StringBuilder _whitespace = new();
    private readonly Queue<XmlFrame> _ready = new();
    private readonly Stack<string> _open = new();
    private State _state = State.Between;
    private int _depth;
    private char _quote;
    private char _lastTagChar;
    private bool _headerSeen;

    public void Append(ReadOnlySpan<char> chars)
    {
        foreach (char c in chars)
        {
            Feed(c);
        }

        FlushWhitespace();
    }

    public bool TryRead(out XmlFrame frame) => _ready.TryDequeue(out frame);

    /// <summary>Forgets everything; used after STARTTLS, when a new stream begins.</summary>
    public void Reset()
    {
        _frame.Clear();
        _name.Clear();
        _whitespace.Clear();
        _ready.Clear();
        _open.Clear();
        _state = State.Between;
        _depth = 0;
        _quote = '\0';
        _headerSeen = false;
    }

    private void Feed(char c)
    {
        if (c < 0x20 && c is not ('\t' or '\n' or '\r'))
        {
            throw new XmlFrameException($"illegal character U+{(int)c:X4}");
        }

        if (_state == State.Between)
        {
            if (c is ' ' or '\t' or '\n' or '\r')
            {
                _whitespace.Append(c);
            }
            else if (c == '<')
            {
                FlushWhitespace();
                _frame.Append(c);
                _state = State.Lt;
            }
            else if (_headerSeen)
            {
                throw new XmlFrameException("text outside any element");
            }

            // Before the header anything that is not markup is ignored (spec 3.2).
            return;
        }

        _frame.Append(c);
        if (_frame.Length > maxFrameChars)
        {
            throw new XmlFrameException($"element larger than {maxFrameChars} characters");
        }

        switch (_state)
        {
            case State.Lt:
                _name.Clear();
                if (c == '/')
                {
                    _state = State.EndTagName;
                }
                else if (c == '!')
                {
                    _state = State.Bang;
                }
                else if (c == '?')
                {
                    _state = State.ProcessingInstruction;
                }
                else
                {
                    _name.Append(c);
                    _state = State.StartTagName;
                }

                break;

            case State.StartTagName:
                if (c is ' ' or '\t' or '\n' or '\r' or '/' or '>')
                {
                    _state = State.StartTag;
                    _quote = '\0';
                    _lastTagChar = '\0';
                    StartTagChar(c);
                }
                else
                {
                    _name.Append(c);
                }

                break;

            case State.StartTag:
                StartTagChar(c);
                break;

            case State.Content:
                if (c == '<')
                {
                    _state = State.Lt;
                }

                break;

            case State.EndTagName:
                if (c != '>')
                {
                    _name.Append(c);
                    break;
                }

                if (_depth == 0)
                {
                    // Only the exact text counts as the end of the stream (spec 2, isEndOfStream).
                    if (_name.ToString() != "stream:stream")
                    {
                        throw new XmlFrameException($"unbalanced end tag </{_name}>");
                    }

                    Emit(FrameKind.StreamEnd);
                    break;
                }

                // A mismatched end tag can never become well-formed: fail now rather than wait for more input.
                if (_open.Pop() != _name.ToString())
                {
                    throw new XmlFrameException($"end tag </{_name}> does not match its start tag");
                }

                _depth--;
                if (_depth == 0)
                {
                    Emit(FrameKind.Element);
                }
                else
                {
                    _state = State.Content;
                }

                break;

            case State.Bang:
                _name.Append(c);
                string bang = _name.ToString();
                if (bang == "--")
                {
                    _state = State.Comment;
                }
                else if (bang == "[CDATA[")
                {
                    if (_depth == 0)
                    {
                        throw new XmlFrameException("CDATA outside any element");
                    }

                    _state = State.CData;
                }
                else if (!"--".StartsWith(bang, StringComparison.Ordinal) && !"[CDATA[".StartsWith(bang, StringComparison.Ordinal))
                {
                    throw new XmlFrameException("document type declarations are not allowed");
                }

                break;

            case State.Comment:
                if (EndsWith("-->"))
                {
                    AfterMarkupInsideOrBetween();
                }

                break;

            case State.CData:
                if (EndsWith("]]>"))
                {
                    _state = State.Content;
                }

                break;

            case State.ProcessingInstruction:
                if (EndsWith("?>"))
                {
                    AfterMarkupInsideOrBetween();
                }

                break;
        }
    }

    private void StartTagChar(char c)
    {
        if (_quote != '\0')
        {
            if (c == _quote)
            {
                _quote = '\0';
            }

            return;
        }

        if (c is '"' or '\'')
        {
            _quote = c;
        }
        else if (c == '>')
        {
            bool selfClosing = _lastTagChar == '/';
            if (_depth == 0 && !selfClosing && _name.ToString() == "stream:stream")
            {
                _headerSeen = true;
                Emit(FrameKind.Header);
            }
            else if (selfClosing)
            {
                if (_depth == 0)
                {
                    Emit(FrameKind.Element);
                }
                else
                {
                    _state = State.Content;
                }
            }
            else
            {
                _open.Push(_name.ToString());
                _depth++;
                _state = State.Content;
            }

            return;
        }

        if (c is not (' ' or '\t' or '\n' or '\r'))
        {
            _lastTagChar = c;
        }
    }

    /// <summary>A comment or processing instruction ended: inside an element it is content; between elements (the XML declaration) it is dropped.</summary>
    private void AfterMarkupInsideOrBetween()
    {
        if (_depth > 0)
        {
            _state = State.Content;
            return;
        }

        _frame.Clear();
        _state = State.Between;
    }

    private bool EndsWith(string tail)
    {
        if (_frame.Length < tail.Length)
        {
            return false;
        }

        for (int i = 0; i < tail.Length; i++)
        {
            if (_frame[_frame.Length - tail.Length + i] != tail[i])
            {
                return false;
            }
        }

        return true;
    }

    private void Emit(FrameKind kind)
    {
        _ready.Enqueue(new XmlFrame(kind, _frame.ToString()));
        _frame.Clear();
        _state = State.Between;
    }

    private void FlushWhitespace()
    {
        if (_whitespace.Length == 0)
        {
            return;
        }

        _ready.Enqueue(new XmlFrame(FrameKind.Whitespace, _whitespace.ToString()));
        _whitespace.Clear();
    }
}
