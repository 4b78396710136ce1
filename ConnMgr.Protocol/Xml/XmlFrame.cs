using System.Buffers;

namespace ConnMgr.Protocol.Xml;

/// <summary>What one call to <see cref="XmppStreamScanner.Scan"/> found.</summary>
public enum ScanStatus : byte
{
    /// <summary>The buffer ends inside a frame; read more and call again.</summary>
    NeedMoreData,
    /// <summary>A complete frame was found; handle it and continue after it.</summary>
    Frame,
    /// <summary>The stream is broken; close it with the scanner's error condition.</summary>
    Error,
}

public enum XmlFrameKind : byte
{
    /// <summary>The prolog and the stream header's start tag; <see cref="XmlFrame.Header"/> is set.</summary>
    StreamHeader,
    /// <summary>One complete, validated top-level element (a stanza or a stream-level element).</summary>
    Element,
    /// <summary>Whitespace between top-level elements (a keepalive); possibly only part of a longer run.</summary>
    Whitespace,
    /// <summary>The stream's closing tag, e.g. <c>&lt;/stream:stream&gt;</c>.</summary>
    StreamEnd,
}

/// <summary>One frame of an XMPP stream: a slice of the caller's buffer, valid until the caller advances past it.</summary>
public readonly struct XmlFrame
{
    internal XmlFrame(XmlFrameKind kind, ReadOnlySequence<byte> bytes, StreamHeader? header)
    {
        Kind = kind;
        Bytes = bytes;
        Header = header;
    }

    public XmlFrameKind Kind { get; }

    /// <summary>The exact bytes of the frame, not copied.</summary>
    public ReadOnlySequence<byte> Bytes { get; }

    /// <summary>The parsed header, for <see cref="XmlFrameKind.StreamHeader"/> frames.</summary>
    public StreamHeader? Header { get; }
}
