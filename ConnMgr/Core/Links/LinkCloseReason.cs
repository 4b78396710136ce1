namespace ConnMgr.Core.Links;

/// <summary>Why a link ended; the first reason recorded wins and becomes the log line.</summary>
internal enum LinkCloseReason
{
    None,

    /// <summary>The CM closed the TCP connection or sent <c>&lt;/stream:stream&gt;</c>.</summary>
    PeerClosed,

    /// <summary>The CM sent a <c>&lt;stream:error&gt;</c> (spec 8.5).</summary>
    PeerStreamError,

    /// <summary>Bad XML or a framing limit (the scanner's condition went to the CM).</summary>
    InvalidXml,

    /// <summary>A stream header check of spec 3.3 failed.</summary>
    HeaderRefused,

    /// <summary>Wrong handshake digest (spec 3.6), or none within <see cref="CoreServerOptions.HandshakeTimeout"/>.</summary>
    HandshakeFailed,

    /// <summary>An element the link protocol does not allow (spec 2).</summary>
    ProtocolViolation,

    /// <summary>Nothing read for <see cref="CoreServerOptions.LinkIdleTimeout"/> (spec 8.3).</summary>
    IdleTimeout,

    /// <summary>Output over <see cref="CoreServerOptions.MaxLinkOutputBytes"/>, or stalled past the write timeout.</summary>
    OutputOverflow,

    /// <summary>A socket error.</summary>
    TransportError,

    /// <summary>The core is stopping (spec 8.5: <c>system-shutdown</c>).</summary>
    ServerShutdown,
}
