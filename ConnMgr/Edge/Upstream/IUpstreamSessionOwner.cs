using ConnMgr.Protocol.Xml;

namespace ConnMgr.Edge.Upstream;

/// <summary>What a routed element is, so the client stream can act on SASL results (spec 6.2).</summary>
internal enum DeliveryKind : byte
{
    Stanza,
    SaslChallenge,
    SaslSuccess,
    SaslFailure,
}

/// <summary>
/// The edge's client session, as seen by the upstream pool. Every method is called from a
/// link's read loop: it must return quickly and never block or await a slow client, or the
/// whole link (and every other client on it) stalls. The pool calls one owner from one thread
/// at a time, but not always the same thread: the server sends replies on any link (spec 8.2).
/// Exceptions are caught, logged and end the upstream session.
/// </summary>
internal interface IUpstreamSessionOwner
{
    /// <summary>The server accepted the create (spec 5.2). Always called before the first <see cref="Deliver"/>.</summary>
    void OnSessionCreated();

    /// <summary>
    /// The server refused the create, e.g. <c>not-allowed</c> when the client's IP is blocked
    /// (spec 5.2). The session is already unregistered; close the client.
    /// </summary>
    void OnSessionRefused(StanzaErrorCondition condition);

    /// <summary>
    /// One complete element for the client, in bytes it can write as they are (no
    /// <c>jabber:connectionmanager</c> namespace). The span is only valid during the call: copy
    /// it. Enforce the per-client output cap here (cut the client with a stream error); never wait.
    /// </summary>
    void Deliver(ReadOnlySpan<byte> stanza, DeliveryKind kind);

    /// <summary>
    /// The server sent a stream error for this client (either route encoding, or inside its
    /// close IQ). Write it and close the client: stream errors are fatal (spec 0.1 point 1, 5.4).
    /// The upstream session is already closed.
    /// </summary>
    void OnStreamError(StreamErrorCondition condition, string? text);

    /// <summary>
    /// The server ended the session: its close IQ, or <c>item-not-found</c> for our stream ID
    /// (spec 0.1 point 1, 6.1.3). Close the client; the upstream session is already closed.
    /// </summary>
    void OnClosedByServer();

    /// <summary>No link to the server is left (spec 8.4); give the client a stream error and close it.</summary>
    void OnUpstreamLost();
}
